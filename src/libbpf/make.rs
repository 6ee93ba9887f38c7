//! Building libbpf with its own Makefile: a static `libbpf.a` and its headers, installed into a directory laid
//! out as a cache entry (`lib/libbpf.a`, `include/bpf/*.h`, `include/linux/{bpf,bpf_common,btf}.h`).

use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::tool::{self, Cmd, ToolKind};
use crate::toolchain::install_hint;

/// The `make` command that builds the libbpf in `source_root` (holding `src/Makefile`) with `jobs` jobs,
/// objects in `object_dir`, installed into `output_dir`.
pub fn make_command(
    make: &tool::Tool,
    cc: &tool::Tool,
    source_root: &Path,
    object_dir: &Path,
    output_dir: &Path,
    jobs: usize,
) -> Cmd {
    Cmd::new(make)
        .arg("-C")
        .arg(source_root.join("src"))
        .arg(format!("-j{}", jobs.max(1)))
        .arg("BUILD_STATIC_ONLY=1")
        // The C compiler probes are built with (CC honoured), not whatever `cc` make would find.
        .arg(format!("CC={}", cc.program.display()))
        // libbpf's default CFLAGS add -Werror: a newer compiler's new warning must not fail the build.
        .arg("CFLAGS=-g -O2 -Wall -std=gnu89")
        .arg(format!("OBJDIR={}", object_dir.display()))
        .arg(format!("DESTDIR={}", output_dir.display()))
        .args([
            "PREFIX=/",
            "LIBDIR=/lib",
            "INCLUDEDIR=/include",
            "UAPIDIR=/include",
        ])
        // The UAPI headers too: libbpf's headers are written against them, whatever linux-libc-dev ships.
        .args(["install", "install_uapi_headers"])
}

/// Runs the build, with `cross_cc` when it is for another architecture; an error carries make's own output and
/// says what the build needs.
pub fn build_static(
    source_root: &Path,
    object_dir: &Path,
    output_dir: &Path,
    jobs: usize,
    (what, cross_cc): (&str, Option<&tool::Tool>),
) -> Result<()> {
    let make = tool::find(ToolKind::Make)
        .map_err(|e| anyhow!("{e}; building {what} needs make: {}", install_hint("make")))?;
    let cc = match cross_cc {
        Some(cc) => cc.clone(),
        None => tool::find(ToolKind::Cc).map_err(|e| {
            anyhow!(
                "{e}; building {what} needs a C compiler: {}",
                install_hint("cc")
            )
        })?,
    };
    let command = make_command(&make, &cc, source_root, object_dir, output_dir, jobs);
    command.run().with_context(|| {
        format!(
            "building {what} with its Makefile failed; it needs make, a C compiler and the libelf and zlib headers \
             (`ebpf-probe --check` shows what is missing)"
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn the_make_command_builds_static_only_into_the_staging_dirs() {
        let make = tool::Tool {
            program: PathBuf::from("/usr/bin/make"),
        };
        let cc = tool::Tool {
            program: PathBuf::from("/usr/bin/cc"),
        };
        let cmd = make_command(
            &make,
            &cc,
            Path::new("/c/.tmp-k/src/libbpf-1.7.0"),
            Path::new("/c/.tmp-k/obj"),
            Path::new("/c/.tmp-k/out"),
            2,
        );
        assert_eq!(
            cmd.to_string(),
            "/usr/bin/make -C /c/.tmp-k/src/libbpf-1.7.0/src -j2 BUILD_STATIC_ONLY=1 CC=/usr/bin/cc \
             'CFLAGS=-g -O2 -Wall -std=gnu89' OBJDIR=/c/.tmp-k/obj DESTDIR=/c/.tmp-k/out PREFIX=/ LIBDIR=/lib \
             INCLUDEDIR=/include UAPIDIR=/include install install_uapi_headers"
        );
    }
}
