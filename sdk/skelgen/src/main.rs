//! `ebpf-probe-skelgen OBJECT OUTPUT`: the Rust skeleton for a BPF object, generated with libbpf-cargo pinned to
//! the libbpf-rs version the probes use. A separate binary so the `ebpf-probe` CLI itself links no C library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [object, output] = args.as_slice() else {
        eprintln!("usage: ebpf-probe-skelgen OBJECT.bpf.o OUTPUT.skel.rs");
        return ExitCode::from(2);
    };
    match libbpf_cargo::SkeletonBuilder::new()
        .obj(object)
        .generate(output)
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!(
                "ebpf-probe-skelgen: cannot generate a Rust skeleton from `{object}`: {error:#}"
            );
            ExitCode::FAILURE
        }
    }
}
