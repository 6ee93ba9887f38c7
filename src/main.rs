//! `ebpf-probe`: parses the command line, runs the plan, prints the error chain and sets the exit status.

mod btf;
mod btfgen;
mod build;
mod check;
mod clean;
mod cli;
mod compat;
mod core;
mod distro;
mod embedded;
mod generate;
mod import;
mod install;
mod invocation;
mod kernel;
mod libbpf;
mod manual;
mod meta;
mod names;
mod nearest;
mod paths;
mod run;
mod scaffold;
mod targets;
mod tool;
mod toolchain;
mod verify;

use clap::Parser;

fn main() {
    // `ebpf-probe compat --json | head` ends quietly, as other Unix tools do, instead of panicking on EPIPE.
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = cli::Cli::parse();
    if let Err(error) = invocation::Request::from_cli(cli).and_then(invocation::run) {
        eprintln!("error: {error}");
        for cause in error.chain().skip(1) {
            eprintln!(
                "\nCaused by:\n  {}",
                cause.to_string().replace('\n', "\n  ")
            );
        }
        std::process::exit(1);
    }
}
