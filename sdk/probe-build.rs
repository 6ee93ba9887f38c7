//! Points the crate at what `ebpf-probe -b` generated for this probe (Rust skeletons, `meta.rs`) in
//! `.output/<probe>/`, and refuses to build without them: the BPF object is compiled by ebpf-probe, not cargo.

use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let probe = manifest_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let workspace = manifest_dir
        .ancestors()
        .find(|dir| dir.join("ebpf-probe.toml").is_file())
        .unwrap_or_else(|| {
            panic!(
                "{} is not inside an ebpf-probe workspace (no ebpf-probe.toml above it)",
                manifest_dir.display()
            )
        });
    let generated = workspace.join(".output").join(&probe);
    let meta = generated.join("meta.rs");
    let skeletons = skeletons(&generated);
    if !meta.is_file() || skeletons.is_empty() {
        panic!(
            "\n\nthe generated files for probe `{probe}` are missing from {}.\n\
             Build this probe with ebpf-probe, which compiles its .bpf.c and generates them first:\n\n    \
             ebpf-probe -b {probe}\n\n",
            generated.display()
        );
    }
    println!(
        "cargo:rustc-env=EBPF_PROBE_GENERATED={}",
        generated.display()
    );
    println!("cargo:rerun-if-changed={}", meta.display());
    for skeleton in skeletons {
        println!("cargo:rerun-if-changed={}", skeleton.display());
    }
}

fn skeletons(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".skel.rs"))
        .collect()
}
