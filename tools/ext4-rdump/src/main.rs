#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    seedkit::run("ext4-rdump", || {
        seedkit::interrupt::install();
        ext4_rdump::run(&ext4_rdump::Args::parse())
    });
}
