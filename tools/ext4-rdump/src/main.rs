use clap::Parser;

fn main() {
    seedkit::run("ext4-rdump", || ext4_rdump::run(&ext4_rdump::Args::parse()));
}
