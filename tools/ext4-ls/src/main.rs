#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    seedkit::run("ext4-ls", || ext4_ls::run(&ext4_ls::Args::parse()));
}
