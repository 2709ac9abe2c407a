#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    seedkit::run("seed-size", || seed_size::run(&seed_size::Args::parse()));
}
