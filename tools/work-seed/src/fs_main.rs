#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let args = work_seed::fs_steps::Args::parse();
    // The script's name begins the error lines; one name for the whole (short) run.
    let prog: &'static str = Box::leak(args.prog.clone().into_boxed_str());
    seedkit::run(prog, || work_seed::fs_steps::run(&args));
}
