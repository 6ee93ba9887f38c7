//! `ebpf-probe`: parses the command line, runs the plan, prints the error chain and sets the exit status.

mod build;
mod check;
mod check_meta;
mod clean;
mod cli;
mod config;
mod distro;
mod embedded;
mod gen;
mod import;
mod install;
mod kernel;
mod libbpf;
mod meta;
mod paths;
mod run;
mod scaffold;
mod tool;
mod toolchain;
mod workspace;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(error) = config::Plan::from_cli(cli).and_then(config::run) {
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
