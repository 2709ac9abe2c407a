#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    seedkit::run("clonecp", || clonecp::run(&clonecp::Args::parse()));
}
