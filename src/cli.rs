//! The command line: the old `build.sh` spellings (`--check`, `-g`, `-b`, `-c`, `--install`) and subcommands.
//! Parsing only: no filesystem or environment access here (that is `config`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::core::artifacts::{DEFAULT_BIN_DIR, DEFAULT_CONF_DIR, DEFAULT_META_DIR};

const AFTER_HELP: &str = "\
Flags may be combined; they run in the order check → clean → gen → build → install.

Examples:
  ebpf-probe --check --fix -g -b     set up this machine, generate the kernel header, build every probe
  ebpf-probe -b killprobe -d         build one probe with -DGOPHER_DEBUG
  ebpf-probe -b --verify             build, then run every program through this kernel's verifier
  ebpf-probe check --json            environment facts for scripts
  ebpf-probe gen --btf 5.10.btf --kernel-release 5.10.0-60.18.0.50.oe2203.x86_64

Environment:
  CLANG, LLVM_STRIP, BPFTOOL, CC, CXX  use these programs instead of searching PATH
  VMLINUX_VER                      build for this kernel release (uses include/linux_<VMLINUX_VER>.h)
  BUILD_OPTS                       extra flags appended to every clang and cc command (split as the shell does)
  EXTEND_PROBES=\"a|b\"              leave these probes out of the build
  EBPF_PROBE_CACHE_DIR             where the pinned libbpf is cached (default $XDG_CACHE_HOME/ebpf-probe)
  HTTPS_PROXY, NO_PROXY            proxy for downloading the pinned libbpf
  EBPF_PROBE_PCH=0                 parse the kernel header (and loaders their headers) in every compile
  EBPF_PROBE_SAFE_DIRECTORIES      trust workspaces owned by another user: DIR[:DIR...] or *
  EBPF_PROBE_SLOW_SECONDS=60       name a build step still running after this long (a hung tool)";

#[derive(Debug, Parser)]
#[command(
    name = "ebpf-probe",
    version,
    about = "Write, check, build and ship eBPF probes (the successor of gala-gopher's ebpf.probe build.sh)",
    after_help = AFTER_HELP,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Work in the workspace at DIR (or its nearest parent holding ebpf-probe.toml) instead of the current directory
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,

    /// Print every command before running it
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Which libbpf C probes build against: `auto` (the system's when new enough for the SDK, else the pinned
    /// release), `system`, `pinned` (repo-config/libbpf.toml: fetched, verified, built and cached), or a path to a
    /// libbpf source tree or .tar.gz. Default: `[libbpf] policy` in ebpf-probe.toml, else auto
    #[arg(long, value_name = "POLICY", global = true)]
    pub libbpf: Option<String>,

    /// Check the environment: arch, OS, kernel, tools, libraries, BTF, mounts, attach kinds
    #[arg(long, help_heading = "Actions (build.sh spellings)")]
    pub check: bool,

    /// With --check: install missing packages and mount tracefs/bpffs (needs root)
    #[arg(
        long,
        requires = "check",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub fix: bool,

    /// With --check: print the facts as JSON
    #[arg(
        long,
        requires = "check",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub json: bool,

    /// Generate include/linux_<release>.h from the kernel's BTF and point include/vmlinux.h at it
    #[arg(
        short = 'g',
        long = "gen",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub gen: bool,

    /// With -g: read BTF from FILE (raw BTF or an ELF with .BTF) instead of /sys/kernel/btf/vmlinux
    #[arg(
        long,
        value_name = "FILE",
        requires = "gen",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub btf: Option<PathBuf>,

    /// With -g: the kernel release the header is for (default: uname -r)
    #[arg(
        long,
        value_name = "RELEASE",
        requires = "gen",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub kernel_release: Option<String>,

    /// Build the named probes, or all probes in probes/
    #[arg(short = 'b', long = "build", value_name = "PROBE", num_args = 0.., help_heading = "Actions (build.sh spellings)")]
    pub build: Option<Vec<String>>,

    /// With -b: debug build (-DGOPHER_DEBUG)
    #[arg(
        short = 'd',
        long,
        requires = "build",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub debug: bool,

    /// With -b: run at most N build steps (compiles, links) at once (default: number of CPUs)
    #[arg(
        short = 'j',
        long,
        value_name = "N",
        requires = "build",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub jobs: Option<usize>,

    /// With -b: `json` also prints one JSON object per line on stdout for each step, compiler diagnostic and the
    /// result (cargo's convention); human output stays on stderr
    #[arg(
        long,
        value_enum,
        value_name = "FMT",
        default_value = "human",
        requires = "build",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub message_format: MessageFormatArg,
    /// With -b: after a successful build, load every program built into the kernel's verifier (see `verify`)
    #[arg(
        long,
        requires = "build",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub verify: bool,

    /// Remove build outputs (all, or the named probes'); never sources or generated headers
    #[arg(short = 'c', long = "clean", value_name = "PROBE", num_args = 0.., help_heading = "Actions (build.sh spellings)")]
    pub clean: Option<Vec<String>>,

    /// Install built probes with default directories (see `ebpf-probe install --help`)
    #[arg(long, help_heading = "Actions (build.sh spellings)")]
    pub install: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The `build.sh`-style action flags given, for refusing a mix with a subcommand.
    pub fn action_flags(&self) -> Vec<&'static str> {
        let given = [
            (self.check, "--check"),
            (self.gen, "-g"),
            (self.build.is_some(), "-b"),
            (self.clean.is_some(), "-c"),
            (self.install, "--install"),
        ];
        given
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| *name)
            .collect()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the environment (same as --check)
    Check(CheckArgs),
    /// Generate the kernel header (same as -g)
    Gen(GenArgs),
    /// Build probes (same as -b)
    ///
    /// Every step of every selected probe (BPF compile and strip, skeleton, userland compiles, link, Rust
    /// sources) runs as one parallel graph, longest chains first. The kernel header is precompiled once for
    /// all BPF programs, the common headers once for all C loaders (EBPF_PROBE_PCH=0 turns that off). A step reruns only when its source, a header it included, its flags,
    /// a tool or the selected kernel header changed, so a build with nothing to do starts no compiler. One
    /// build of a workspace runs at a time (.output/.lock). C probes use the libbpf `--libbpf` selects.
    Build(BuildArgs),
    /// Remove build outputs (same as -c)
    Clean(CleanArgs),
    /// Build if needed, then load every program of the probes' BPF objects into the running kernel's verifier
    ///
    /// One program at a time, without attaching, then unloaded (nothing stays loaded, also after a failure or
    /// Ctrl-C). Each program is ✔ with its verified instruction count and time, or ✘ with the verifier's message,
    /// the .bpf.c line it points at and the log's last lines. Programs named in a probe's `verify_skip` are not
    /// loaded. Needs root; exits non-zero when any other program is rejected.
    Verify(CleanArgs),
    /// Build if needed, then install probes, their .meta files and conf/ files (same as --install)
    Install(InstallArgs),
    /// Remove exactly the files `install` recorded (same directory flags as install)
    Uninstall(InstallArgs),
    /// Create a new probe from the templates that builds and prints lines out of the box
    New(NewArgs),
    /// Create a new workspace (marker, C SDK, lib/, probes/) in DIR
    Init(InitArgs),
    /// Run a built probe (as root) and check every line it prints against its .meta
    Run(RunArgs),
    /// Validate probes' .meta files by gala-gopher's rules (also done before every build)
    CheckMeta(CleanArgs),
    /// Write ebpf-probe.toml and probe.toml files for a gala-gopher ebpf.probe tree, from its Makefiles
    ///
    /// DIR is gala-gopher's `src/probes/extends/ebpf.probe` directory (or its `src/`); it becomes the workspace
    /// root, so `ebpf-probe -b` then builds the probes in place. The Makefiles are read, never run: `mk/var.mk`
    /// gives ebpf-probe.toml ([layout] include dirs, [build] defines, flags and libraries, the shared `lib` and
    /// `common` source sets), and each probe directory's Makefile gives its probe.toml (binary name from APP,
    /// BPF and C sources, include dirs, BTF_ENABLE_OVERRIDE, extra libraries, objects without a skeleton or
    /// installed into a subdirectory, shared libraries, .meta files).
    ///
    /// Only those files are written, each atomically; no source file is touched. Running import again
    /// gives the same bytes ("Unchanged"). A file import did not write (no `# Written by ebpf-probe import`
    /// first line) is not replaced: import stops and writes nothing, unless --force moves it to `<name>.orig`.
    /// Whatever cannot be translated (a `$(shell …)` a value depends on, a condition on the environment, a
    /// command in a recipe) is listed with its file and line, and kept as a comment in the generated file.
    Import(ImportArgs),
    /// Print the shell completion script for SHELL (e.g. `source <(ebpf-probe completions bash)`)
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into --dir
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: ShellArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args, Default)]
pub struct ManArgs {
    /// Write ebpf-probe.1 and ebpf-probe-<command>.1 for every command into DIR instead of printing
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct ImportArgs {
    /// The ebpf.probe directory (or its src/); default: the current directory
    pub dir: Option<PathBuf>,
    /// Move existing ebpf-probe.toml / probe.toml files that import did not write to `<name>.orig` and write anyway
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args, Default)]
pub struct CheckArgs {
    /// Install missing packages with the distro's package manager and mount tracefs/bpffs (needs root)
    #[arg(long)]
    pub fix: bool,
    /// Print the facts as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Default)]
pub struct GenArgs {
    /// Read BTF from FILE (raw BTF or an ELF with a .BTF section) instead of /sys/kernel/btf/vmlinux
    #[arg(long, value_name = "FILE")]
    pub btf: Option<PathBuf>,
    /// The kernel release the header is for; names include/linux_<RELEASE>.h (default: uname -r)
    #[arg(long, value_name = "RELEASE")]
    pub kernel_release: Option<String>,
}

#[derive(Debug, Args, Default)]
pub struct BuildArgs {
    /// Probes to build (directory names under probes/); all when none are given
    #[arg(value_name = "PROBE")]
    pub probes: Vec<String>,
    /// Debug build: adds -DGOPHER_DEBUG
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// Run at most N build steps (compiles, links) at once (default: number of CPUs)
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// `json` also prints one JSON object per line on stdout for each step, compiler diagnostic and the result
    /// (cargo's convention); human output stays on stderr
    #[arg(long, value_enum, value_name = "FMT", default_value = "human")]
    pub message_format: MessageFormatArg,
    /// After a successful build, load every program built into the kernel's verifier (see `verify`)
    #[arg(long)]
    pub verify: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageFormatArg {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Args, Default)]
pub struct CleanArgs {
    /// Probes to act on; all when none are given
    #[arg(value_name = "PROBE")]
    pub probes: Vec<String>,
}

#[derive(Debug, Args, Default)]
pub struct InstallArgs {
    /// Probes to act on; all when none are given
    #[arg(value_name = "PROBE")]
    pub probes: Vec<String>,
    /// Directory for probe executables
    #[arg(
        short = 'b',
        long = "bin-dir",
        value_name = "DIR",
        default_value = DEFAULT_BIN_DIR
    )]
    pub bin_dir: PathBuf,
    /// Directory for probes' conf/ files
    #[arg(
        short = 'c',
        long = "conf-dir",
        value_name = "DIR",
        default_value = DEFAULT_CONF_DIR
    )]
    pub conf_dir: PathBuf,
    /// Directory for .meta files
    #[arg(
        short = 'm',
        long = "meta-dir",
        value_name = "DIR",
        default_value = DEFAULT_META_DIR
    )]
    pub meta_dir: PathBuf,
    /// Place everything under DIR, as `make install DESTDIR=` does (for packagers)
    #[arg(long, value_name = "DIR")]
    pub destdir: Option<PathBuf>,
}

#[derive(Debug, Args, Default)]
pub struct NewArgs {
    /// Name of the probe: a C identifier of at most 31 characters; also its directory, table and binary name
    pub name: String,
    /// Language of the userland loader
    #[arg(long, value_enum, default_value = "c")]
    pub userland: UserlandArg,
    /// Attach point (the default fires on every exec, so a new probe prints at once): tracepoint:CATEGORY/NAME, raw_tracepoint:NAME, uprobe:BINARY:SYMBOL, uretprobe:BINARY:SYMBOL, kprobe:FUNC
    #[arg(
        long,
        value_name = "KIND:TARGET",
        default_value = "tracepoint:sched/sched_process_exec"
    )]
    pub attach: String,
    /// Executable name when it should differ from the probe name
    #[arg(long, value_name = "NAME")]
    pub binary: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum UserlandArg {
    #[default]
    C,
    Rust,
}

#[derive(Debug, Args, Default)]
pub struct InitArgs {
    /// Directory for the new workspace (created if missing; must be empty)
    pub dir: PathBuf,
}

#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// The probe to run (directory name under probes/)
    pub probe: String,
    /// How long to run (1 to 86400 seconds) before stopping it: SIGINT, then SIGTERM, then SIGKILL, 2s apart
    #[arg(long, value_name = "N", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=crate::run::MAX_SECONDS))]
    pub seconds: u64,
    /// Arguments passed to the probe (after `--`)
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}
