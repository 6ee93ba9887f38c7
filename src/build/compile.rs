//! The compile pipeline for one workspace: `*.bpf.c` → clang → llvm-strip → bpftool skeleton, userland `*.c` → cc,
//! link. Each step is skipped when its output is fresh (see `fresh`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::build::fresh;
use crate::kernel::{self, KernelVersion};
use crate::libbpf::Libbpf;
use crate::paths;
use crate::tool::Cmd;
use crate::toolchain::{self, parse_clang_version, Toolchain};

/// Libraries every probe binary links, as the old `var.mk`'s LINK_TARGET.
/// (libbpf itself comes first, from `Libbpf::link_args`.)
pub const DEFAULT_LIBS: [&str; 3] = ["-lelf", "-lz", "-lpthread"];

/// What the build of one workspace shares across probes: tools, `-D` flags, include dirs.
pub struct Compiler {
    /// Every command runs here, and paths in commands are relative to it, so errors read `probes/x/x.bpf.c:3:1`.
    root: PathBuf,
    toolchain: Toolchain,
    defines: Vec<String>,
    bpf_system_includes: Vec<String>,
    /// `$BUILD_OPTS`, appended to both compilers' flags as the old framework did.
    build_opts: Vec<String>,
    /// `-I` for the selected libbpf's headers (empty for the system one), before any system dir.
    libbpf_includes: Vec<String>,
    libbpf_link: Vec<String>,
    verbose: bool,
}

pub struct CompilerSettings<'a> {
    pub libbpf: &'a Libbpf,
    pub root: &'a Path,
    /// The kernel the probes are built for (`$VMLINUX_VER` or `uname -r`): gives the KER_VER_* defines.
    pub kernel_release: &'a str,
    pub debug: bool,
    pub build_opts: &'a [String],
    pub verbose: bool,
}

impl Compiler {
    pub fn new(settings: &CompilerSettings) -> Result<Compiler> {
        let toolchain = Toolchain::find()?;
        let machine = kernel::machine();
        let target_arch = kernel::bpf_target_arch(&machine).with_context(|| {
            format!("no BPF target architecture is known for machine `{machine}` (known: x86_64, aarch64, riscv64, …)")
        })?;
        let version = KernelVersion::parse(settings.kernel_release)?;
        let mut defines = vec![
            format!("-D__TARGET_ARCH_{target_arch}"),
            format!("-DKER_VER_MAJOR={}", version.major),
            format!("-DKER_VER_MINOR={}", version.minor),
            format!("-DKER_VER_PATCH={}", version.patch),
            format!("-DKER_RELEASE=\"{}\"", settings.kernel_release),
        ];
        if let Some(libbpf) = settings.libbpf.version {
            defines.push(format!("-DLIBBPF_VER_MAJOR={}", libbpf.0));
            defines.push(format!("-DLIBBPF_VER_MINOR={}", libbpf.1));
        }
        let clang_version = Cmd::new(&toolchain.clang).arg("--version").run()?;
        if let Some(v) = parse_clang_version(&String::from_utf8_lossy(&clang_version.stdout)) {
            defines.push(format!("-DCLANG_VER_MAJOR={}", v.0));
        }
        if settings.debug {
            defines.push("-DGOPHER_DEBUG".to_string());
        }
        let bpf_system_includes = toolchain::multiarch_include_dir()
            .map(|dir| vec!["-idirafter".to_string(), dir.display().to_string()])
            .unwrap_or_default();
        Ok(Compiler {
            root: settings.root.to_path_buf(),
            toolchain,
            defines,
            bpf_system_includes,
            build_opts: settings.build_opts.to_vec(),
            libbpf_includes: settings
                .libbpf
                .include_dir
                .iter()
                .map(|d| format!("-I{}", d.display()))
                .collect(),
            libbpf_link: settings.libbpf.link_args(),
            verbose: settings.verbose,
        })
    }

    /// `path` as commands should show it: relative to the workspace root when inside it.
    pub fn shown(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.root) {
            Ok(relative) if relative.as_os_str().is_empty() => PathBuf::from("."),
            Ok(relative) => relative.to_path_buf(),
            Err(_) => path.to_path_buf(),
        }
    }

    fn include_flags(&self, include_dirs: &[PathBuf]) -> Vec<String> {
        include_dirs
            .iter()
            .map(|d| format!("-I{}", self.shown(d).display()))
            .collect()
    }

    /// Runs `cmd` unless `output` is fresh; returns whether it ran.
    fn step(
        &self,
        output: &Path,
        cmds: &[Cmd],
        inputs: &[PathBuf],
        depfile: Option<&Path>,
    ) -> Result<bool> {
        let fingerprint: String = cmds.iter().map(|c| format!("{c}\n")).collect();
        let inputs: Vec<PathBuf> = inputs.iter().map(|p| self.root.join(p)).collect();
        let depfile = depfile.map(|d| self.root.join(d));
        if fresh::is_fresh(
            output,
            &fingerprint,
            &inputs,
            depfile.as_deref(),
            &self.root,
        ) {
            return Ok(false);
        }
        fresh::invalidate(output)?;
        for cmd in cmds {
            if self.verbose {
                eprintln!("     Running `{cmd}`");
            }
            let output = cmd.run()?;
            // Warnings of a successful compile are the author's to see, not ours to swallow.
            if !output.stderr.is_empty() {
                eprint!("{}", String::from_utf8_lossy(&output.stderr));
            }
        }
        fresh::record(output, &fingerprint)?;
        Ok(true)
    }

    /// `dir/<stem>.bpf.c` → `out_dir/<stem>.bpf.o` (stripped of DWARF) → `out_dir/<stem>.skel.h` (struct `<stem>_bpf`).
    pub fn bpf_object(
        &self,
        source: &Path,
        out_dir: &Path,
        include_dirs: &[PathBuf],
        extra_flags: &[String],
    ) -> Result<PathBuf> {
        let file_name = source.file_name().unwrap_or_default().to_string_lossy();
        let stem = file_name
            .strip_suffix(".bpf.c")
            .unwrap_or(&file_name)
            .to_string();
        let object = out_dir.join(format!("{stem}.bpf.o"));
        let depfile = out_dir.join(format!("{stem}.bpf.d"));
        let skeleton = out_dir.join(format!("{stem}.skel.h"));
        paths::create_dir_all(out_dir)?;

        let compile = Cmd::new(&self.toolchain.clang)
            .cwd(&self.root)
            .args(["-g", "-O2", "-Wall", "-target", "bpf"])
            .args(&self.defines)
            .args(self.include_flags(include_dirs))
            .args(&self.libbpf_includes)
            .args(&self.bpf_system_includes)
            .args(extra_flags)
            .args(&self.build_opts)
            .arg("-MD")
            .arg("-MF")
            .arg(self.shown(&depfile))
            .arg("-c")
            .arg(self.shown(source))
            .arg("-o")
            .arg(self.shown(&object));
        // DWARF is only for clang's own BTF generation; the stripped object keeps .BTF and loads faster.
        let strip = Cmd::new(&self.toolchain.llvm_strip)
            .cwd(&self.root)
            .arg("-g")
            .arg(self.shown(&object));
        self.step(
            &object,
            &[compile, strip],
            &[self.shown(source)],
            Some(&self.shown(&depfile)),
        )?;

        let gen_skeleton = Cmd::new(&self.toolchain.bpftool)
            .cwd(&self.root)
            .args(["gen", "skeleton"])
            .arg(self.shown(&object))
            .arg("name")
            .arg(format!("{stem}_bpf"));
        let fingerprint = format!("{gen_skeleton}\n");
        if !fresh::is_fresh(
            &skeleton,
            &fingerprint,
            std::slice::from_ref(&object),
            None,
            &self.root,
        ) {
            fresh::invalidate(&skeleton)?;
            if self.verbose {
                eprintln!("     Running `{gen_skeleton}`");
            }
            let output = gen_skeleton.run()?;
            paths::write_atomic(&skeleton, &output.stdout)?;
            fresh::record(&skeleton, &fingerprint)?;
        }
        Ok(skeleton)
    }

    /// Compiles one userland C file to `object`.
    pub fn c_object(
        &self,
        source: &Path,
        object: &Path,
        include_dirs: &[PathBuf],
        extra_flags: &[String],
    ) -> Result<()> {
        if let Some(parent) = object.parent() {
            paths::create_dir_all(parent)?;
        }
        let depfile = object.with_extension("d");
        let compile = Cmd::new(&self.toolchain.cc)
            .cwd(&self.root)
            .args(["-g", "-O2", "-Wall", "-fPIC"])
            .args(&self.defines)
            .args(self.include_flags(include_dirs))
            .args(&self.libbpf_includes)
            .args(extra_flags)
            .args(&self.build_opts)
            .arg("-MD")
            .arg("-MF")
            .arg(self.shown(&depfile))
            .arg("-c")
            .arg(self.shown(source))
            .arg("-o")
            .arg(self.shown(object));
        self.step(
            object,
            &[compile],
            &[self.shown(source)],
            Some(&self.shown(&depfile)),
        )?;
        Ok(())
    }

    /// Links `objects` into `binary`, written beside it and renamed so a running copy is never overwritten in place.
    pub fn link(&self, objects: &[PathBuf], binary: &Path, libs: &[String]) -> Result<bool> {
        if let Some(parent) = binary.parent() {
            paths::create_dir_all(parent)?;
        }
        let temp = paths::temp_sibling(binary);
        let link_to = |output: &Path| {
            Cmd::new(&self.toolchain.cc)
                .cwd(&self.root)
                .args(objects.iter().map(|o| self.shown(o)))
                .arg("-o")
                .arg(self.shown(output))
                .args(libs)
                .args(&self.libbpf_link)
                .args(DEFAULT_LIBS)
        };
        // The fingerprint (and what -v shows) names the final path; the command really run writes a temp file.
        let link = link_to(binary);
        let fingerprint = format!("{link}\n");
        if fresh::is_fresh(binary, &fingerprint, objects, None, &self.root) {
            return Ok(false);
        }
        fresh::invalidate(binary)?;
        let link_to_temp = link_to(&temp);
        if self.verbose {
            eprintln!("     Running `{link}`");
        }
        if let Err(e) = link_to_temp.run() {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        paths::rename(&temp, binary)?;
        fresh::record(binary, &fingerprint)?;
        Ok(true)
    }
}

/// A probe's extra `libs` entries: bare names become `-lname`, flags pass through.
pub fn link_flags(libs: &[String]) -> Vec<String> {
    libs.iter()
        .map(|l| {
            if l.starts_with('-') || l.contains('/') {
                l.clone()
            } else {
                format!("-l{l}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_libs_accept_names_and_flags() {
        let libs = [
            "config".to_string(),
            "-Wl,--as-needed".to_string(),
            "/usr/lib/libx.a".to_string(),
        ];
        assert_eq!(
            link_flags(&libs),
            ["-lconfig", "-Wl,--as-needed", "/usr/lib/libx.a"]
        );
    }
}
