#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    seedkit::run("work-seed-summary", || {
        work_seed::run(&work_seed::Args::parse())
    });
}
