#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    seedkit::run("ext4-ingest", || {
        seedkit::interrupt::install();
        ext4_ingest::run(&ext4_ingest::Args::parse())
    });
}
