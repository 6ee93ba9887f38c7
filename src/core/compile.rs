//! The compile steps of one workspace: the precompiled kernel header, `*.bpf.c` → clang → llvm-strip, the
//! bpftool skeleton, userland `*.c` → cc, and the link. Each step is skipped when its output is fresh (see
//! `fresh`), and writes a temp file that is renamed into place only once the step has wholly succeeded.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

use crate::core::fresh;
use crate::core::manifest::BuildConfig;
use crate::core::progress::Console;
use crate::kernel::{self, KernelVersion};
use crate::libbpf::Libbpf;
use crate::tool::Cmd;
use crate::toolchain::{self, tool_identity, Toolchain};

/// Libraries every probe binary links after libbpf, as the old `var.mk`'s LINK_TARGET
/// (libbpf itself comes first, from `Libbpf::link_args`).
pub const DEFAULT_LIBS: [&str; 3] = ["-lelf", "-lz", "-lpthread"];

/// What the build of one workspace shares across probes: tools, `-D` flags, include dirs.
pub struct Compiler {
    /// Every command runs here, and paths in commands are relative to it, so errors read `probes/x/x.bpf.c:3:1`.
    root: PathBuf,
    toolchain: Toolchain,
    /// `which tool is it` lines, part of the fingerprint of every step the tool runs in.
    clang_identity: String,
    strip_identity: String,
    bpftool_identity: String,
    cc_identity: String,
    defines: Vec<String>,
    bpf_system_includes: Vec<String>,
    /// `$BUILD_OPTS`, appended to both compilers' flags as the old framework did.
    build_opts: Vec<String>,
    /// `[build]` of `ebpf-probe.toml`: what every probe of the workspace gets.
    workspace_defines: Vec<String>,
    workspace_bpf_flags: Vec<String>,
    workspace_cflags: Vec<String>,
    workspace_cxxflags: Vec<String>,
    /// `-isystem DIR` pairs for userland compiles.
    system_includes: Vec<String>,
    workspace_libs: Vec<String>,
    /// `-idirafter` the C++ library's dirs for C compiles (`[build] cxx_headers_in_c`).
    c_after_includes: Vec<String>,
    ldflags: Vec<String>,
    /// The C++ compiler, found when the workspace has C++ sources; its absence is an error only for them.
    cxx: Result<crate::tool::Tool, String>,
    cxx_identity: String,
    /// Source and header times, stat'ed once per build.
    source_times: fresh::SourceTimes,
    /// Every compile this build planned (ran or fresh), for `compile_commands.json`.
    compile_commands: std::sync::Mutex<Vec<CompileCommand>>,
    /// `-I` for the selected libbpf's headers (empty for the system one), before any system dir.
    libbpf_includes: Vec<String>,
    libbpf_link: Vec<String>,
    /// The selected libbpf's version (for hints when a program needs a newer one).
    libbpf_version: Option<crate::toolchain::Version>,
    /// The kernel header BPF programs include (`include/vmlinux.h`), when there is one.
    kernel_header: Option<KernelHeader>,
    verbose: bool,
    output: Console,
}

struct KernelHeader {
    /// The file the link resolves to, with its size and time: switching headers changes every BPF fingerprint.
    identity: String,
}

pub struct CompilerSettings<'a> {
    pub libbpf: &'a Libbpf,
    pub root: &'a Path,
    /// Where small caches (clang's version) are kept: the build's output dir.
    pub state_dir: &'a Path,
    /// The kernel the probes are built for (`$VMLINUX_VER` or `uname -r`): gives the KER_VER_* defines.
    pub kernel_release: &'a str,
    /// The selected `include/vmlinux.h`, precompiled once for all BPF programs; `None` when nothing includes it.
    pub kernel_header: Option<&'a Path>,
    pub debug: bool,
    pub build_opts: &'a [String],
    /// `[build]` of `ebpf-probe.toml`.
    pub build: &'a BuildConfig,
    pub verbose: bool,
    pub output: Console,
    /// Another architecture (`-b --arch`); `None`: this machine's.
    pub target: Option<&'a Target>,
}

/// What a build for another architecture compiles with: its BPF target name (`__TARGET_ARCH_<bpf_arch>`) and, when
/// a cross compiler is configured, the C (and C++) compiler of userland and the flags every userland compile and
/// link of it gets (`--sysroot=…`).
#[derive(Debug, Clone)]
pub struct Target {
    pub bpf_arch: String,
    pub cc: Option<crate::tool::Tool>,
    pub cxx: Option<crate::tool::Tool>,
    pub flags: Vec<String>,
}

/// One entry of `compile_commands.json` (clang's JSON compilation database): what compiled `file`, run in
/// `directory`, with the precompiled header left out so any clang-based tool can read it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct CompileCommand {
    pub directory: String,
    pub arguments: Vec<String>,
    pub file: String,
    pub output: String,
}

/// A BPF source's prelude (its first directives and the SDK header they include, which pulls in the kernel
/// header) compiled once by clang (`-x c-header`) and used by every BPF compile with the same prelude and flags:
/// parsing the 2.8 MB kernel header is most of a BPF compile.
pub struct PrecompiledHeader {
    pub path: PathBuf,
    /// The prelude's text, written to `prelude` and compiled from there.
    prelude_text: String,
    prelude: PathBuf,
    /// The SDK header the prelude includes: a change to it retries a header clang failed on.
    included: PathBuf,
    /// The SDK include dirs it is compiled with (every probe's list starts with them).
    include_dirs: Vec<PathBuf>,
    /// The probe-specific clang flags this header was built with (they must match the compiles that use it).
    extra_flags: Vec<String>,
    /// Cleared when clang could not build it: compiles then include the header the plain way.
    usable: AtomicBool,
}

/// One precompiled header to build: see `Compiler::precompile`.
struct Precompile<'a> {
    output: &'a Path,
    /// The header's source, written from `text`.
    header: &'a Path,
    text: &'a str,
    /// What a remembered failure is keyed on besides the fingerprint.
    inputs: &'a [PathBuf],
    fingerprint: &'a str,
    depfile: &'a Path,
    usable: &'a AtomicBool,
    command_to: &'a dyn Fn(&Path) -> Cmd,
    failure_note: &'a str,
}

/// A userland loader's prelude (its simple directives and leading run of guarded system and SDK includes: libbpf's
/// headers, `bpf.h`, …) precompiled once by cc as `<name>.h.gch` beside `<name>.h`, and put first in each loader
/// compile with `-include <name>.h` (cc finds the `.gch` there; the source's own includes then add nothing).
pub struct LoaderHeader {
    pub path: PathBuf,
    header: PathBuf,
    text: String,
    /// The SDK include dirs it is compiled with (every probe's list starts with them).
    include_dirs: Vec<PathBuf>,
    /// The probe's own cflags and defines (the compiles that use it have the same).
    extra_flags: Vec<String>,
    /// Cleared when cc could not build it: loaders are then compiled without it.
    usable: AtomicBool,
}

impl Compiler {
    pub fn new(settings: &CompilerSettings) -> Result<Compiler> {
        let mut toolchain = Toolchain::find()?;
        let machine = kernel::machine();
        let target_arch = match settings.target {
            Some(target) => target.bpf_arch.clone(),
            None => kernel::bpf_target_arch(&machine)
                .with_context(|| {
                    format!("no BPF target architecture is known for machine `{machine}` (known: x86_64, aarch64, riscv64, …)")
                })?
                .to_string(),
        };
        let cross_flags = settings.target.map_or(&[][..], |t| &t.flags[..]);
        if let Some(cc) = settings.target.and_then(|t| t.cc.as_ref()) {
            toolchain.cc = cc.clone();
        }
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
        if let Some(v) = toolchain.clang_version(&settings.state_dir.join(".clang-version"))? {
            defines.push(format!("-DCLANG_VER_MAJOR={}", v.0));
        }
        if settings.debug {
            defines.push("-DGOPHER_DEBUG".to_string());
        }
        let bpf_system_includes = toolchain::multiarch_include_dir()
            .map(|dir| vec!["-idirafter".to_string(), dir.display().to_string()])
            .unwrap_or_default();
        let kernel_header = settings.kernel_header.map(|path| KernelHeader {
            identity: format!("kernel header {}", tool_identity(path)),
        });
        let build = settings.build;
        let cxx = match settings.target {
            Some(target) => target.cxx.clone().ok_or_else(|| {
                "no C++ cross compiler is configured (`[cross.<arch>] cxx` in ebpf-probe.toml, or a g++ beside the \
                 cross gcc)"
                    .to_string()
            }),
            None => crate::tool::find(crate::tool::ToolKind::Cxx).map_err(|e| format!("{e:#}")),
        };
        let cxx_identity = match &cxx {
            Ok(tool) => format!("c++ {}", tool_identity(&tool.program)),
            Err(_) => String::new(),
        };
        Ok(Compiler {
            root: settings.root.to_path_buf(),
            workspace_defines: define_flags(&build.defines),
            workspace_bpf_flags: build.bpf_flags.clone(),
            workspace_cflags: cross_flags.iter().chain(&build.cflags).cloned().collect(),
            workspace_cxxflags: cross_flags.iter().chain(&build.cxxflags).cloned().collect(),
            system_includes: build
                .system_includes
                .iter()
                .flat_map(|dir| ["-isystem".to_string(), dir.clone()])
                .collect(),
            // The C++ library's dirs are found for this machine's compiler, not a cross compiler.
            c_after_includes: if build.cxx_headers_in_c && settings.target.is_none() {
                toolchain::cxx_library_include_dirs()
                    .iter()
                    .flat_map(|d| ["-idirafter".to_string(), d.display().to_string()])
                    .collect()
            } else {
                Vec::new()
            },
            workspace_libs: link_flags(&build.libs),
            ldflags: cross_flags.iter().chain(&build.ldflags).cloned().collect(),
            cxx,
            cxx_identity,
            source_times: Default::default(),
            compile_commands: Default::default(),
            clang_identity: format!("clang {}", tool_identity(&toolchain.clang.program)),
            strip_identity: format!(
                "llvm-strip {}",
                tool_identity(&toolchain.llvm_strip.program)
            ),
            bpftool_identity: format!("bpftool {}", tool_identity(&toolchain.bpftool.program)),
            cc_identity: format!("cc {}", tool_identity(&toolchain.cc.program)),
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
            libbpf_version: settings.libbpf.version,
            kernel_header,
            verbose: settings.verbose,
            output: settings.output.clone(),
        })
    }

    /// A compiler for a small helper the tool builds for itself in `dir` (the attach-kind check, the verifier
    /// loader): no kernel header, no workspace settings, plain output, with the libbpf the build chose.
    pub fn for_helper(dir: &Path, kernel_release: &str, libbpf: &Libbpf) -> Result<Compiler> {
        Compiler::new(&CompilerSettings {
            libbpf,
            root: dir,
            state_dir: dir,
            kernel_release,
            kernel_header: None,
            output: Console::plain(),
            debug: false,
            build_opts: &[],
            build: &BuildConfig::default(),
            verbose: false,
            target: None,
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

    /// Runs `work` unless `output` is fresh for `fingerprint` (see `fresh`); returns whether it ran.
    fn step(
        &self,
        output: &Path,
        fingerprint: &str,
        inputs: &[PathBuf],
        depfile: Option<&Path>,
        work: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<bool> {
        let inputs: Vec<PathBuf> = inputs.iter().map(|p| self.root.join(p)).collect();
        let depfile = depfile.map(|d| self.root.join(d));
        fresh::rebuild_unless_fresh(
            &fresh::Step {
                output,
                fingerprint,
                inputs: &inputs,
                depfile: depfile.as_deref(),
                deps_base: &self.root,
                times: Some(&self.source_times),
            },
            work,
        )
    }

    /// Remembers the compile of `source` into `output` as `cmd` shows it, minus `-include-pch FILE`.
    fn remember_compile(&self, cmd: &Cmd, source: &Path, output: &Path) {
        let mut arguments = Vec::new();
        let mut skip = false;
        for argument in cmd.argv() {
            if skip {
                skip = false;
            } else if argument == "-include-pch" {
                skip = true;
            } else {
                arguments.push(argument);
            }
        }
        if let Ok(mut commands) = self.compile_commands.lock() {
            commands.push(CompileCommand {
                directory: self.root.display().to_string(),
                arguments,
                file: self.shown(source).display().to_string(),
                output: self.shown(output).display().to_string(),
            });
        }
    }

    /// The compiles this build planned, sorted by file.
    pub fn compile_commands(&self) -> Vec<CompileCommand> {
        let mut commands = self
            .compile_commands
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        commands.sort_by(|a, b| (&a.file, &a.output).cmp(&(&b.file, &b.output)));
        commands.dedup();
        commands
    }

    /// Runs one command; a successful compile's warnings are the author's to see, not ours to swallow.
    fn exec(&self, cmd: &Cmd) -> Result<std::process::Output> {
        if self.verbose {
            self.output.println(&format!("     Running `{cmd}`"));
        }
        self.output.ran_command(&cmd.to_string());
        let output = cmd.run()?;
        if !output.stderr.is_empty() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            self.output.println(&stderr);
            self.output.diagnostics(&stderr);
        }
        Ok(output)
    }

    /// The clang flags every BPF compile with `extra_flags` shares, whatever its include dirs.
    pub fn bpf_flags(&self, extra_flags: &[String]) -> Vec<String> {
        let mut flags: Vec<String> = ["-g", "-O2", "-Wall", "-target", "bpf"]
            .map(String::from)
            .to_vec();
        flags.extend(self.defines.iter().cloned());
        flags.extend(self.workspace_defines.iter().cloned());
        flags.extend(self.workspace_bpf_flags.iter().cloned());
        flags.extend(extra_flags.iter().cloned());
        flags.extend(self.build_opts.iter().cloned());
        flags
    }

    /// Whether BPF programs have a kernel header to include (a precompiled header is worth planning).
    pub fn has_kernel_header(&self) -> bool {
        self.kernel_header.is_some()
    }

    /// The precompiled header of `prelude_text` for BPF compiles with `extra_flags`, named after everything that
    /// shapes it (the kernel header the link resolves to, clang, the flags, the prelude, the include dirs).
    pub fn precompiled_header(
        &self,
        pch_dir: &Path,
        extra_flags: &[String],
        (prelude_text, included): (&str, &Path),
        include_dirs: &[PathBuf],
    ) -> PrecompiledHeader {
        let identity = self
            .kernel_header
            .as_ref()
            .map_or("", |header| header.identity.as_str());
        let key = format!(
            "{identity}\n{}\n{}\n{}\n{prelude_text}\n{}",
            self.clang_identity,
            self.bpf_flags(extra_flags).join(" "),
            self.libbpf_includes.join(" "),
            self.include_flags(include_dirs).join(" ")
        );
        let name = format!("prelude-{:016x}", fnv1a(key.as_bytes()));
        PrecompiledHeader {
            path: pch_dir.join(format!("{name}.h.pch")),
            prelude: pch_dir.join(format!("{name}.h")),
            prelude_text: prelude_text.to_string(),
            included: included.to_path_buf(),
            include_dirs: include_dirs.to_vec(),
            extra_flags: extra_flags.to_vec(),
            usable: AtomicBool::new(true),
        }
    }

    /// Builds `pch` unless it is fresh. When clang cannot precompile it, says why in a few lines and leaves the
    /// compiles that would use it to parse their headers the plain way: a slower build is not a failed one.
    pub fn build_precompiled_header(&self, pch: &PrecompiledHeader) -> Result<bool> {
        let depfile = pch.path.with_extension("d");
        let command_to = |output: &Path| {
            Cmd::new(&self.toolchain.clang)
                .cwd(&self.root)
                .args(self.bpf_flags(&pch.extra_flags))
                .args(self.include_flags(&pch.include_dirs))
                .args(&self.libbpf_includes)
                .args(&self.bpf_system_includes)
                .args(["-MD", "-MF"])
                .arg(self.shown(&depfile))
                .arg("-MT")
                .arg(self.shown(&pch.path))
                .args(["-x", "c-header"])
                .arg(self.shown(&pch.prelude))
                .arg("-o")
                .arg(self.shown(output))
        };
        let mut fingerprint = format!("{}\n{}\n", command_to(&pch.path), self.clang_identity);
        if let Some(header) = &self.kernel_header {
            fingerprint.push_str(&header.identity);
            fingerprint.push('\n');
        }
        let header = pch.prelude_text.lines().last().unwrap_or_default();
        self.precompile(Precompile {
            output: &pch.path,
            header: &pch.prelude,
            text: &pch.prelude_text,
            inputs: &[pch.prelude.clone(), pch.included.clone()],
            fingerprint: &fingerprint,
            depfile: &depfile,
            usable: &pch.usable,
            command_to: &command_to,
            failure_note: &format!(
                "clang could not precompile `{header}` for the BPF programs that open with it (they parse it \
                 instead: slower, same result; not tried again until it or the flags change)"
            ),
        })
    }

    /// The precompiled loader prelude `text` for userland C compiles with `extra_flags`, named after everything that
    /// shapes it (cc, the flags, the text, the include dirs).
    pub fn loader_header(
        &self,
        pch_dir: &Path,
        extra_flags: &[String],
        text: &str,
        include_dirs: &[PathBuf],
    ) -> LoaderHeader {
        let key = format!(
            "{}\n{}\n{}\n{}\n{text}\n{}",
            self.cc_identity,
            self.user_compile_flags(&self.c_flags()).join(" "),
            extra_flags.join(" "),
            self.build_opts.join(" "),
            self.include_flags(include_dirs).join(" ")
        );
        let name = format!("loader-{:016x}", fnv1a(key.as_bytes()));
        LoaderHeader {
            path: pch_dir.join(format!("{name}.h.gch")),
            header: pch_dir.join(format!("{name}.h")),
            text: text.to_string(),
            include_dirs: include_dirs.to_vec(),
            extra_flags: extra_flags.to_vec(),
            usable: AtomicBool::new(true),
        }
    }

    /// Builds the loader prelude `pch` unless it is fresh. When cc cannot, says so and the loaders are compiled
    /// without it (a slower build, not a failed one).
    pub fn build_loader_header(&self, pch: &LoaderHeader) -> Result<bool> {
        let depfile = pch.path.with_extension("d");
        let command_to = |output: &Path| {
            Cmd::new(&self.toolchain.cc)
                .cwd(&self.root)
                .args(self.user_compile_flags(&self.c_flags()))
                .args(self.include_flags(&pch.include_dirs))
                .args(&self.libbpf_includes)
                .args(&self.system_includes)
                .args(&self.c_after_includes)
                .args(&pch.extra_flags)
                .args(&self.build_opts)
                .args(["-MD", "-MF"])
                .arg(self.shown(&depfile))
                .arg("-MT")
                .arg(self.shown(&pch.path))
                .args(["-x", "c-header"])
                .arg(self.shown(&pch.header))
                .arg("-o")
                .arg(self.shown(output))
        };
        let fingerprint = format!("{}\n{}\n", command_to(&pch.path), self.cc_identity);
        self.precompile(Precompile {
            output: &pch.path,
            header: &pch.header,
            text: &pch.text,
            inputs: std::slice::from_ref(&pch.header),
            fingerprint: &fingerprint,
            depfile: &depfile,
            usable: &pch.usable,
            command_to: &command_to,
            failure_note: "cc could not precompile the loaders' common headers (they parse them instead: slower, \
                           same result; not tried again until they or the flags change)",
        })
    }

    /// Writes a precompiled header's source (only when it changed, so its time does not make the header stale)
    /// and precompiles it unless fresh. A failure is remembered with its fingerprint, so the compiler is not
    /// started again on exactly the same inputs, and told as a note: the compiles that would use the header parse
    /// their includes instead, a slower build and not a failed one.
    fn precompile(&self, step: Precompile) -> Result<bool> {
        if fresh::failed_before(step.output, step.fingerprint, step.inputs) {
            step.usable.store(false, Ordering::SeqCst);
            return Ok(false);
        }
        let built = (|| {
            if std::fs::read_to_string(step.header).ok().as_deref() != Some(step.text) {
                crate::paths::write_atomic(step.header, step.text.as_bytes())?;
            }
            self.step(
                step.output,
                step.fingerprint,
                &[self.shown(step.header)],
                Some(&self.shown(step.depfile)),
                |temp| self.exec(&(step.command_to)(temp)).map(drop),
            )
        })();
        match built {
            Ok(ran) => {
                fresh::forget_failure(step.output)?;
                Ok(ran)
            }
            Err(e) => {
                step.usable.store(false, Ordering::SeqCst);
                fresh::record_failure(step.output, step.fingerprint)?;
                self.output.println(&format!(
                    "note: {}:\n{}",
                    step.failure_note,
                    indent(&format!("{e:#}"))
                ));
                Ok(false)
            }
        }
    }

    /// `dir/<stem>.bpf.c` → `out_dir/<stem>.bpf.o`, stripped of DWARF (it is only there for clang's BTF; the
    /// stripped object keeps .BTF and loads faster), in one step.
    pub fn bpf_object(
        &self,
        source: &Path,
        object: &Path,
        include_dirs: &[PathBuf],
        extra_flags: &[String],
        pch: Option<&PrecompiledHeader>,
    ) -> Result<bool> {
        self.bpf_compile(source, object, (include_dirs, extra_flags), pch, true)
    }

    /// `dir/<stem>.bpf.c` → `unstripped` with its DWARF, which `strip_objects` then strips into the object: the
    /// build strips many objects with one llvm-strip (it costs 12 ms to start, a third of a BPF compile).
    pub fn bpf_object_unstripped(
        &self,
        source: &Path,
        unstripped: &Path,
        include_dirs: &[PathBuf],
        extra_flags: &[String],
        pch: Option<&PrecompiledHeader>,
    ) -> Result<bool> {
        self.bpf_compile(source, unstripped, (include_dirs, extra_flags), pch, false)
    }

    fn bpf_compile(
        &self,
        source: &Path,
        object: &Path,
        (include_dirs, extra_flags): (&[PathBuf], &[String]),
        pch: Option<&PrecompiledHeader>,
        strip: bool,
    ) -> Result<bool> {
        let pch = pch.filter(|p| p.usable.load(Ordering::SeqCst));
        match (
            self.bpf_object_with(source, object, (include_dirs, extra_flags), pch, strip),
            pch,
        ) {
            (Err(e), Some(pch)) if mentions_precompiled_header(&format!("{e:#}")) => {
                // The rest of this build goes without it, and the next build makes it again.
                pch.usable.store(false, Ordering::SeqCst);
                fresh::forget(&pch.path)?;
                self.output.println(&format!(
                    "note: clang refused the precompiled kernel header for `{}`; compiling it without",
                    self.shown(source).display()
                ));
                self.bpf_object_with(source, object, (include_dirs, extra_flags), None, strip)
            }
            (result, _) => result,
        }
        .map_err(|e| match self.libbpf_too_old_for(&format!("{e:#}")) {
            Some(hint) => e.context(hint),
            None => e,
        })
    }

    /// When clang failed on a name the selected libbpf is too old to declare, what to do about it.
    fn libbpf_too_old_for(&self, error: &str) -> Option<String> {
        let (name, release) = NEWER_LIBBPF_NAMES.iter().find(|(name, _)| {
            [
                format!("undeclared identifier '{name}'"),
                format!("implicit declaration of function '{name}'"),
                format!("unknown type name '{name}'"),
            ]
            .iter()
            .any(|pattern| error.contains(pattern.as_str()))
        })?;
        let have = match self.libbpf_version {
            Some(v) if (v.0, v.1) >= *release => return None,
            Some(v) => format!("libbpf {}.{}", v.0, v.1),
            None => "a libbpf of unknown version".to_string(),
        };
        Some(format!(
            "`{name}` comes with libbpf {}.{}, and this build uses {have}: build with `--libbpf pinned` (libbpf {}) \
             or install a newer libbpf",
            release.0,
            release.1,
            {
                let v = crate::libbpf::pin::embedded().version;
                format!("{}.{}.{}", v.0, v.1, v.2)
            }
        ))
    }

    fn bpf_object_with(
        &self,
        source: &Path,
        object: &Path,
        (include_dirs, extra_flags): (&[PathBuf], &[String]),
        pch: Option<&PrecompiledHeader>,
        strip_too: bool,
    ) -> Result<bool> {
        let depfile = object.with_extension("d");
        let compile_to = |output: &Path| {
            let mut cmd = Cmd::new(&self.toolchain.clang)
                .cwd(&self.root)
                .args(self.bpf_flags(extra_flags))
                .args(self.include_flags(include_dirs))
                .args(&self.libbpf_includes)
                .args(&self.bpf_system_includes);
            if let Some(pch) = pch {
                cmd = cmd.arg("-include-pch").arg(self.shown(&pch.path));
            }
            cmd.args(["-MD", "-MF"])
                .arg(self.shown(&depfile))
                .arg("-MT")
                .arg(self.shown(object))
                .arg("-c")
                .arg(self.shown(source))
                .arg("-o")
                .arg(self.shown(output))
        };
        let strip = |output: &Path| {
            Cmd::new(&self.toolchain.llvm_strip)
                .cwd(&self.root)
                .arg("-g")
                .arg(self.shown(output))
        };
        let mut fingerprint = match strip_too {
            true => format!(
                "{}\n{}\n{}\n{}\n",
                compile_to(object),
                strip(object),
                self.clang_identity,
                self.strip_identity
            ),
            false => format!("{}\n{}\n", compile_to(object), self.clang_identity),
        };
        self.remember_compile(&compile_to(object), source, object);
        let mut inputs = vec![self.shown(source)];
        if let Some(header) = &self.kernel_header {
            fingerprint.push_str(&header.identity);
            fingerprint.push('\n');
        }
        if let Some(pch) = pch {
            inputs.push(self.shown(&pch.path));
        }
        self.step(
            object,
            &fingerprint,
            &inputs,
            Some(&self.shown(&depfile)),
            |temp| {
                self.exec(&compile_to(temp))?;
                if strip_too {
                    self.exec(&strip(temp))?;
                }
                Ok(())
            },
        )
    }

    /// Strips each `(unstripped, object)` pair's DWARF into `object` (`llvm-strip -g`), the stale ones all with
    /// one llvm-strip on copies beside their objects; each result says whether that object was made. When the
    /// shared run fails, each is stripped alone, so an error belongs to its own object.
    pub fn strip_objects(&self, pairs: &[(PathBuf, PathBuf)]) -> Vec<Result<bool>> {
        let fingerprints: Vec<String> = pairs
            .iter()
            .map(|(_, object)| {
                format!(
                    "{}\n{}\n",
                    Cmd::new(&self.toolchain.llvm_strip)
                        .arg("-g")
                        .arg(self.shown(object)),
                    self.strip_identity
                )
            })
            .collect();
        let inputs: Vec<[PathBuf; 1]> = pairs.iter().map(|(full, _)| [full.clone()]).collect();
        let steps: Vec<fresh::Step> = pairs
            .iter()
            .zip(&fingerprints)
            .zip(&inputs)
            .map(|(((_, object), fingerprint), inputs)| fresh::Step {
                output: object,
                fingerprint,
                inputs,
                depfile: None,
                deps_base: &self.root,
                times: Some(&self.source_times),
            })
            .collect();
        let mut results: Vec<Result<bool>> = pairs.iter().map(|_| Ok(false)).collect();
        let mut stale = Vec::new();
        for (index, step) in steps.iter().enumerate() {
            if fresh::is_step_fresh(step) {
                continue;
            }
            let copied = fresh::begin(step).and_then(|temp| {
                self.copy_into(&pairs[index].0, &temp)?;
                Ok(temp)
            });
            match copied {
                Ok(temp) => stale.push((index, temp)),
                Err(e) => results[index] = Err(e),
            }
        }
        if stale.is_empty() {
            return results;
        }
        let strip = |temps: &[&Path]| {
            Cmd::new(&self.toolchain.llvm_strip)
                .cwd(&self.root)
                .arg("-g")
                .args(temps.iter().map(|t| self.shown(t)))
        };
        let temps: Vec<&Path> = stale.iter().map(|(_, temp)| temp.as_ref()).collect();
        let together = self.exec(&strip(&temps));
        let alone = together.is_err() && stale.len() > 1;
        for (index, temp) in stale {
            let stripped = match (&together, alone) {
                (Ok(_), _) => Ok(()),
                // The shared run may have stripped some copies before it failed: each starts again from its copy.
                (Err(_), true) => self
                    .copy_into(&pairs[index].0, &temp)
                    .and_then(|()| self.exec(&strip(&[temp.as_ref()])).map(drop)),
                (Err(e), false) => Err(anyhow::anyhow!("{e:#}")),
            };
            results[index] = stripped
                .and_then(|()| fresh::commit(&steps[index], temp))
                .map(|()| true);
        }
        results
    }

    /// Copies `from` into the temp file `to` that this build made (`copy_into_own_file`).
    fn copy_into(&self, from: &Path, to: &Path) -> Result<()> {
        copy_into_own_file(from, to).with_context(|| {
            format!(
                "failed to copy `{}` to `{}`",
                self.shown(from).display(),
                self.shown(to).display()
            )
        })
    }

    /// `<stem>.bpf.o` → `<stem>.skel.h` (struct `<stem>_bpf`).
    pub fn skeleton(&self, object: &Path, skeleton: &Path) -> Result<bool> {
        let file_name = object.file_name().unwrap_or_default().to_string_lossy();
        let stem = file_name.strip_suffix(".bpf.o").unwrap_or(&file_name);
        let gen_skeleton = Cmd::new(&self.toolchain.bpftool)
            .cwd(&self.root)
            .args(["gen", "skeleton"])
            .arg(self.shown(object))
            .arg("name")
            .arg(format!("{stem}_bpf"));
        let fingerprint = format!("{gen_skeleton}\n{}\n", self.bpftool_identity);
        self.step(
            skeleton,
            &fingerprint,
            &[self.shown(object)],
            None,
            |temp| {
                let output = self.exec(&gen_skeleton)?;
                std::fs::write(temp, &output.stdout)
                    .with_context(|| format!("failed to write `{}`", temp.display()))
            },
        )
    }

    /// Every `-D`/`-U` a userland C compile with `extra_flags` gets, in order.
    pub fn user_define_flags(&self, extra_flags: &[String]) -> Vec<String> {
        self.defines
            .iter()
            .chain(&self.c_flags())
            .chain(extra_flags)
            .chain(&self.build_opts)
            .filter(|f| f.starts_with("-D") || f.starts_with("-U"))
            .cloned()
            .collect()
    }

    /// Where cc finds the system header `name` (`<bpf/libbpf.h>`, `<stdio.h>`): the selected libbpf's include dir,
    /// `[build] system_includes`, then the system's include dirs.
    pub fn system_header(&self, name: &str) -> Option<PathBuf> {
        let libbpf = self
            .libbpf_includes
            .iter()
            .filter_map(|f| f.strip_prefix("-I"));
        let system = self.system_includes.iter().filter(|f| *f != "-isystem");
        libbpf
            .chain(system.map(String::as_str))
            .map(|dir| self.root.join(dir).join(name))
            .chain(
                toolchain::system_include_dirs()
                    .into_iter()
                    .map(|d| d.join(name)),
            )
            .find(|path| path.is_file())
    }

    /// The workspace's defines and cflags, which every userland C compile gets.
    fn c_flags(&self) -> Vec<String> {
        self.workspace_defines
            .iter()
            .chain(&self.workspace_cflags)
            .cloned()
            .collect()
    }

    /// The flags of a userland compile before its include dirs.
    fn user_compile_flags(&self, workspace_flags: &[String]) -> Vec<String> {
        ["-g", "-O2", "-Wall", "-fPIC"]
            .map(String::from)
            .into_iter()
            .chain(self.defines.iter().cloned())
            .chain(workspace_flags.iter().cloned())
            .collect()
    }

    /// Compiles one userland C file to `object`, with the precompiled loader prelude `pch` when it is usable.
    pub fn c_object(
        &self,
        source: &Path,
        object: &Path,
        include_dirs: &[PathBuf],
        extra_flags: &[String],
        pch: Option<&LoaderHeader>,
    ) -> Result<bool> {
        let flags = self.c_flags();
        let pch = pch.filter(|p| p.usable.load(Ordering::SeqCst));
        self.user_object(
            (&self.toolchain.cc, &self.cc_identity),
            (&flags, &self.c_after_includes),
            (source, object),
            (include_dirs, pch),
            extra_flags,
        )
    }

    /// Compiles one C++ file to `object` with the C++ compiler.
    pub fn cxx_object(
        &self,
        source: &Path,
        object: &Path,
        include_dirs: &[PathBuf],
        extra_flags: &[String],
    ) -> Result<bool> {
        let cxx = self.cxx.as_ref().map_err(|e| {
            anyhow::anyhow!(
                "cannot compile C++ source `{}`: {e} (install g++: {})",
                self.shown(source).display(),
                crate::toolchain::install_hint("stdc++")
            )
        })?;
        let flags: Vec<String> = self
            .workspace_defines
            .iter()
            .chain(&self.workspace_cxxflags)
            .cloned()
            .collect();
        self.user_object(
            (cxx, &self.cxx_identity),
            (&flags, &[]),
            (source, object),
            (include_dirs, None),
            extra_flags,
        )
    }

    fn user_object(
        &self,
        (compiler, identity): (&crate::tool::Tool, &str),
        (workspace_flags, after_includes): (&[String], &[String]),
        (source, object): (&Path, &Path),
        (include_dirs, pch): (&[PathBuf], Option<&LoaderHeader>),
        extra_flags: &[String],
    ) -> Result<bool> {
        let depfile = object.with_extension("d");
        let compile_with = |output: &Path, pch: Option<&LoaderHeader>| {
            let mut cmd = Cmd::new(compiler)
                .cwd(&self.root)
                .args(self.user_compile_flags(workspace_flags))
                .args(self.include_flags(include_dirs))
                .args(&self.libbpf_includes)
                .args(&self.system_includes)
                .args(after_includes)
                .args(extra_flags)
                .args(&self.build_opts);
            if let Some(pch) = pch {
                cmd = cmd.arg("-include").arg(self.shown(&pch.header));
            }
            cmd.args(["-MD", "-MF"])
                .arg(self.shown(&depfile))
                .arg("-MT")
                .arg(self.shown(object))
                .arg("-c")
                .arg(self.shown(source))
                .arg("-o")
                .arg(self.shown(output))
        };
        // Editors get the compile without the precompiled prelude (it adds nothing the source does not include).
        self.remember_compile(&compile_with(object, None), source, object);
        let compile_to = |output: &Path| compile_with(output, pch);
        let fingerprint = format!("{}\n{identity}\n", compile_to(object));
        let mut inputs = vec![self.shown(source)];
        if let Some(pch) = pch {
            inputs.push(self.shown(&pch.path));
        }
        self.step(
            object,
            &fingerprint,
            &inputs,
            Some(&self.shown(&depfile)),
            |temp| self.exec(&compile_to(temp)).map(drop),
        )
    }

    /// Links `objects` into `binary`, written beside it and renamed so a running copy is never overwritten in place.
    /// Libraries always come after the objects; a probe with C++ objects links the C++ runtime.
    pub fn link(
        &self,
        objects: &[PathBuf],
        binary: &Path,
        libs: &[String],
        cxx: bool,
    ) -> Result<bool> {
        let mut libs: Vec<String> = link_flags(libs);
        libs.extend(self.workspace_libs.iter().cloned());
        libs.extend(self.libbpf_link.iter().cloned());
        libs.extend(DEFAULT_LIBS.map(String::from));
        if cxx && !libs.iter().any(|l| l == "-lstdc++") {
            libs.push("-lstdc++".to_string());
        }
        let link_to = |output: &Path| {
            Cmd::new(&self.toolchain.cc)
                .cwd(&self.root)
                .args(objects.iter().map(|o| self.shown(o)))
                .arg("-o")
                .arg(self.shown(output))
                .args(&self.ldflags)
                .args(&libs)
        };
        let fingerprint = format!("{}\n{}\n", link_to(binary), self.cc_identity);
        // A static libbpf is an input like the objects: rebuilding it relinks.
        let mut inputs: Vec<PathBuf> = objects.iter().map(|o| self.shown(o)).collect();
        inputs.extend(
            self.libbpf_link
                .iter()
                .filter(|arg| arg.ends_with(".a"))
                .map(PathBuf::from),
        );
        self.step(binary, &fingerprint, &inputs, None, |temp| {
            self.exec(&link_to(temp))?;
            set_executable(temp)
        })
    }

    /// Links `objects` into the shared library `output` (`-shared`), with its own `flags`.
    pub fn link_shared_library(
        &self,
        objects: &[PathBuf],
        output: &Path,
        flags: &[String],
    ) -> Result<bool> {
        let link_to = |temp: &Path| {
            Cmd::new(&self.toolchain.cc)
                .cwd(&self.root)
                .args(["-shared", "-fPIC"])
                .args(flags)
                .args(objects.iter().map(|o| self.shown(o)))
                .arg("-o")
                .arg(self.shown(temp))
                .args(&self.ldflags)
        };
        let fingerprint = format!("{}\n{}\n", link_to(output), self.cc_identity);
        let inputs: Vec<PathBuf> = objects.iter().map(|o| self.shown(o)).collect();
        self.step(output, &fingerprint, &inputs, None, |temp| {
            self.exec(&link_to(temp)).map(drop)
        })
    }
}

/// Copies `from` into the existing file `to`, never through a link found at that name (`O_NOFOLLOW`): `to` is a
/// temp file the build made, and what is there now must still be it.
fn copy_into_own_file(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut source = std::fs::File::open(from)?;
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)?;
    std::io::copy(&mut source, &mut target).map(drop)
}

pub fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("failed to make `{}` executable", path.display()))
}

/// Whether clang's complaint is about the precompiled header rather than the program.
fn mentions_precompiled_header(error: &str) -> bool {
    error.contains("precompiled header") || error.contains("PCH file")
}

fn indent(text: &str) -> String {
    text.lines()
        .take(20)
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// FNV-1a: a stable, dependency-free name for a precompiled header's inputs (not a security hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Names BPF programs use that older libbpf headers lack, with the libbpf release that added them.
const NEWER_LIBBPF_NAMES: [(&str, (u32, u32)); 8] = [
    ("BPF_UPROBE", (1, 2)),
    ("BPF_URETPROBE", (1, 2)),
    ("bpf_ksym_exists", (1, 2)),
    ("bpf_for", (1, 2)),
    ("bpf_for_each", (1, 2)),
    ("bpf_repeat", (1, 2)),
    ("__arg_ctx", (1, 4)),
    ("__arg_nonnull", (1, 4)),
];

/// `NAME=VALUE` → `-DNAME=VALUE`.
pub fn define_flags(defines: &[String]) -> Vec<String> {
    defines.iter().map(|d| format!("-D{d}")).collect()
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
    fn a_copy_into_a_temp_file_never_goes_through_a_link_planted_at_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("x.bpf.unstripped.o");
        std::fs::write(&from, b"object").unwrap();
        let temp = dir.path().join(".x.bpf.o.tmp.1.abc");
        std::fs::write(&temp, b"").unwrap();
        copy_into_own_file(&from, &temp).unwrap();
        assert_eq!(std::fs::read(&temp).unwrap(), b"object");
        // Someone swaps the temp file for a link to a file of theirs: it is refused, their file untouched.
        let theirs = dir.path().join("theirs");
        std::fs::write(&theirs, b"keep me").unwrap();
        std::fs::remove_file(&temp).unwrap();
        std::os::unix::fs::symlink(&theirs, &temp).unwrap();
        assert!(copy_into_own_file(&from, &temp).is_err());
        assert_eq!(std::fs::read(&theirs).unwrap(), b"keep me");
    }

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

    #[test]
    fn precompiled_header_names_are_stable_and_follow_their_inputs() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fnv1a(b"-DGOPHER_DEBUG"), fnv1a(b""));
    }

    #[test]
    fn pch_errors_are_told_apart_from_program_errors() {
        assert!(mentions_precompiled_header(
            "fatal error: file 'include/vmlinux.h' has been modified since the precompiled header '.output/pch/x.pch' was built"
        ));
        assert!(mentions_precompiled_header(
            "error: PCH file was compiled for the target 'x86_64' but the current translation unit is being compiled for target 'bpf'"
        ));
        assert!(!mentions_precompiled_header(
            "probes/a/a.bpf.c:3:1: error: expected ';'"
        ));
    }
}
