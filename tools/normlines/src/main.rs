#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    seedkit::run("normlines", || normlines::run(&normlines::Args::parse()));
}
