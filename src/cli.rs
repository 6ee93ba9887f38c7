//! The command line: the old `build.sh` spellings (`--check`, `-g`, `-b`, `-c`, `--install`) and subcommands.
//! Parsing only: no filesystem or environment access here (that is `config`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::core::artifacts::{
    DEFAULT_BIN_DIR, DEFAULT_BTF_DIR, DEFAULT_CONF_DIR, DEFAULT_META_DIR,
};

const AFTER_HELP: &str = "\
Flags may be combined; they run in the order check → clean → gen → build → install.
Kernels without BTF: `ebpf-probe btfgen --kernel DIR|FILE` makes .output/btf/<release>.btf, `install` ships it.

Examples:
  ebpf-probe --check --fix -g -b     set up this machine, generate the kernel header, build every probe
  ebpf-probe -b killprobe -d         build one probe with -DGOPHER_DEBUG
  ebpf-probe -b --verify             build, then run every program through this kernel's verifier
  ebpf-probe compat --kernel btfs/   check attach targets and CO-RE of every program against many kernels
  ebpf-probe check --json            environment facts for scripts
  ebpf-probe gen --btf 5.10.btf --kernel-release 5.10.0-60.18.0.50.oe2203.x86_64
  ebpf-probe -g --vmlinux /usr/lib/debug/lib/modules/R/vmlinux   header from DWARF (pahole), named from its banner
  ebpf-probe -g --kernel-package                                  this kernel's debuginfo package → header
  ebpf-probe -g --btf arm64.btf --arch aarch64 -b --arch aarch64  linux_<R>.aarch64.h → .output/aarch64/

Environment:
  CLANG, LLVM_STRIP, BPFTOOL, CC, CXX  use these programs instead of searching PATH
  VMLINUX_VER                      build for this kernel release (uses include/linux_<VMLINUX_VER>.h)
  BUILD_OPTS                       extra flags appended to every clang and cc command (split as the shell does)
  EXTEND_PROBES=\"a|b\"              leave these probes out of the build
  EBPF_PROBE_CACHE_DIR             where the pinned libbpf is cached (default $XDG_CACHE_HOME/ebpf-probe)
  HTTPS_PROXY, NO_PROXY            proxy for downloading the pinned libbpf
  EBPF_PROBE_PCH=0                 parse the kernel header (and loaders their headers) in every compile
  EBPF_PROBE_SAFE_DIRECTORIES      trust workspaces owned by another user: DIR[:DIR...] or *
  EBPF_PROBE_SLOW_SECONDS=60       name a build step still running after this long (a hung tool)
  EBPF_PROBE_DEBUG_MIRROR=URL      -g --kernel-package downloads from this mirror of the distro's debug archive
  EBPF_PROBE_DEBUG_MIRROR_UNSIGNED=1  the mirror's index is not signed with the distro's key (apt [trusted=yes])
  EBPF_PROBE_BTF_FILE, EBPF_PROBE_BTF_DIR  read by probes: the kernel BTF to load with, or where <release>.btf is";

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

    /// With -g: read the types from a vmlinux (or any ELF): its .BTF, else its DWARF through `pahole -J`
    /// (dwarves); the release comes from its banner unless --kernel-release names it
    #[arg(
        long,
        value_name = "FILE",
        requires = "gen",
        conflicts_with = "btf",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub vmlinux: Option<PathBuf>,

    /// With -g: fetch the distro's kernel debug package for RELEASE (default: uname -r) and read its vmlinux
    /// (kernel-debuginfo with dnf and repo-config/openEuler.repo; linux-image-RELEASE-dbg/-dbgsym with apt-get on
    /// Debian/Ubuntu; $EBPF_PROBE_DEBUG_MIRROR replaces the archive's URL); apt's/dnf's own progress is shown
    #[arg(
        long,
        value_name = "RELEASE",
        num_args = 0..=1,
        requires = "gen",
        conflicts_with_all = ["btf", "vmlinux"],
        help_heading = "Actions (build.sh spellings)"
    )]
    pub kernel_package: Option<Option<String>>,

    /// With -g: the kernel release the header is for (default: uname -r)
    #[arg(
        long,
        value_name = "RELEASE",
        requires = "gen",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub kernel_release: Option<String>,

    /// With -g: write linux_<release>.<ARCH>.h for another architecture (x86_64, aarch64, riscv64), leaving
    /// vmlinux.h alone; with -b: build for ARCH into .output/<ARCH>/ against that header (userland too when CC or
    /// [cross.ARCH] cc names ARCH's C compiler); with --check: require ARCH's C compiler, libelf and zlib
    #[arg(
        long,
        value_name = "ARCH",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub arch: Option<String>,

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
    /// With -b --verify: do not recompile a rejected program with the flag known to fix its rejection (see `verify`)
    #[arg(
        long,
        requires = "verify",
        help_heading = "Actions (build.sh spellings)"
    )]
    pub no_retry: bool,

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
    /// loaded. A rejection that a known clang flag often fixes (-mcpu=v3 for the verifier's bounds messages:
    /// "unbounded memory access", "min value is negative", …) is retried: the program's .bpf.c is compiled again
    /// with the build's own command plus that flag (into .output/.verify/, the built object is untouched), loaded
    /// again, and the result shown under it (`↳ with -mcpu=v3: ✔ loads …: add clang_flags = ["-mcpu=v3"] to
    /// probe.toml`, or `still rejected`). Needs root; exits non-zero when any other program is rejected, also
    /// when the flag would make it load (what the probe builds as configured is what ships).
    Verify(VerifyArgs),
    /// Build if needed, then cut kernel BTF files down to what the probes' BPF objects use, for kernels without
    /// /sys/kernel/btf/vmlinux
    ///
    /// For each kernel BTF given with --kernel, `bpftool gen min_core_btf` keeps only the types the selected
    /// probes' CO-RE relocations need and writes .output/btf/<release>.btf, typically a few KiB instead of
    /// megabytes. `install` ships these files to /opt/gala-gopher/btf/<release>.btf, where the C SDK's LOAD and
    /// the Rust SDK's open_load_attach find them (btf_custom_path) on a kernel without /sys/kernel/btf/vmlinux.
    ///
    /// A kernel BTF is a raw BTF file or an ELF with a .BTF section, and its name gives the release:
    /// `<release>.btf` (BTFHub), `<release>.btf.tar.xz` (BTFHub's archives, read with tar), `vmlinux-<release>`,
    /// or /sys/kernel/btf/vmlinux (this kernel, `uname -r`). A directory is searched (6 levels, symlinked
    /// directories not followed) for `.btf` and `.btf.tar.xz` files, so a BTFHub checkout
    /// (`<distro>/<version>/<arch>/<release>.btf.tar.xz`) works as it is. Two inputs for one release are an
    /// error. Run it again after changing a probe: `install` refuses minimized BTF made for other objects.
    Btfgen(BtfgenArgs),
    /// Build if needed, then check every program's attach target, CO-RE relocations and kfuncs against kernels
    ///
    /// Nothing is loaded and no root is needed: each built .bpf.o is read (its sections, .BTF and .BTF.ext) and
    /// resolved against the running kernel (its BTF, /proc/kallsyms, tracefs) and against every --kernel: a raw
    /// BTF file (BTFHub's .btf), an ELF file with a .BTF section (a vmlinux), or a directory searched for them
    /// (BTFHub's distro/version/arch/release.btf layout). kprobe targets are looked up with their compiler-renamed
    /// variants (.isra.0, .constprop.0, .part.0, .cold) and nearest names; tracepoints in tracefs or, for BTF files,
    /// as btf_trace_* types; uprobe targets (sections naming BINARY:SYMBOL, and `uprobes` in probe.toml) in the
    /// binary's symbols on this machine. Prints a matrix program × kernel (✔, ⚠ loads with a caveat, ✘ with the
    /// reason) and exits non-zero when a program not listed in its probe.toml's `compat_optional` fails anywhere.
    Compat(CompatArgs),
    /// Build if needed, then install probes, their .meta files and conf/ files (same as --install)
    Install(InstallCommandArgs),
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
    /// Also require ARCH's C compiler, libelf and zlib (what `build --arch ARCH` cross-builds userland with);
    /// with --fix, install them (Debian: ARCH is added to dpkg first)
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
}

#[derive(Debug, Args, Default)]
pub struct GenArgs {
    /// Read BTF from FILE (raw BTF or an ELF with a .BTF section) instead of /sys/kernel/btf/vmlinux
    #[arg(long, value_name = "FILE")]
    pub btf: Option<PathBuf>,
    /// Read the types from a vmlinux (or any ELF): its .BTF, else its DWARF through `pahole -J` (dwarves); the
    /// release comes from its banner unless --kernel-release names it
    #[arg(long, value_name = "FILE", conflicts_with = "btf")]
    pub vmlinux: Option<PathBuf>,
    /// Fetch the distro's kernel debug package for RELEASE (default: uname -r) and read its vmlinux
    /// ($EBPF_PROBE_DEBUG_MIRROR replaces the archive's URL); apt's/dnf's own progress is shown
    #[arg(long, value_name = "RELEASE", num_args = 0..=1, conflicts_with_all = ["btf", "vmlinux"])]
    pub kernel_package: Option<Option<String>>,
    /// Write linux_<release>.<ARCH>.h for another architecture (x86_64, aarch64, riscv64); vmlinux.h is left alone
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
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
    /// With --verify: do not recompile a rejected program with the flag known to fix its rejection (see `verify`)
    #[arg(long, requires = "verify")]
    pub no_retry: bool,
    /// Build for ARCH (x86_64, aarch64, riscv64) into .output/<ARCH>/: BPF objects against
    /// include/linux_<release>.<ARCH>.h (made by `gen --arch`), and C userland when CC or [cross.ARCH] cc in
    /// ebpf-probe.toml names ARCH's C compiler (otherwise skipped, and said so)
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
}

#[derive(Debug, Args, Default)]
pub struct BtfgenArgs {
    /// Probes whose BPF objects the minimized BTF serves (directory names under probes/); all when none are given
    #[arg(value_name = "PROBE")]
    pub probes: Vec<String>,
    /// A kernel BTF file (`<release>.btf`, `<release>.btf.tar.xz`, `vmlinux-<release>`, /sys/kernel/btf/vmlinux)
    /// or a directory of them, e.g. a BTFHub checkout; repeat for more
    #[arg(long = "kernel", value_name = "FILE|DIR", required = true)]
    pub kernels: Vec<PathBuf>,
    /// Minimize for the BPF objects `build --arch ARCH` builds (.output/<ARCH>/btf/, which `install --arch ARCH`
    /// ships): give that architecture's kernel BTFs
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
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
pub struct VerifyArgs {
    /// Probes to verify; all when none are given
    #[arg(value_name = "PROBE")]
    pub probes: Vec<String>,
    /// Name the flag known to fix a rejection without recompiling and loading the program with it
    #[arg(long)]
    pub no_retry: bool,
}

#[derive(Debug, Args, Default)]
pub struct CompatArgs {
    /// Probes to check; all when none are given
    #[arg(value_name = "PROBE")]
    pub probes: Vec<String>,
    /// A kernel's BTF: a raw BTF file, an ELF file with .BTF, or a directory of them (repeatable)
    #[arg(long = "kernel", value_name = "FILE|DIR")]
    pub kernels: Vec<PathBuf>,
    /// Leave the running kernel out (check only the --kernel files)
    #[arg(long)]
    pub no_running: bool,
    /// Print the result as JSON (shape: see the README, "compat --json")
    #[arg(long)]
    pub json: bool,
    /// Kernels read in parallel (default: the number of CPUs)
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args, Default)]
pub struct InstallCommandArgs {
    #[command(flatten)]
    pub dirs: InstallArgs,
    /// Install what `build --arch ARCH` builds (.output/<ARCH>/, built first if missing or stale) instead of this
    /// machine's: for packages of another architecture (with --destdir); every probe's userland must be built
    /// for ARCH (a cross compiler, see `build --arch`)
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
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
    /// Directory for the minimized kernel BTF files `btfgen` made (.output/btf/<release>.btf); the SDKs load
    /// <DIR>/<release>.btf on kernels without /sys/kernel/btf/vmlinux (set EBPF_PROBE_BTF_DIR for another DIR)
    #[arg(
        short = 'B',
        long = "btf-dir",
        value_name = "DIR",
        default_value = DEFAULT_BTF_DIR
    )]
    pub btf_dir: PathBuf,
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
    /// Write the probe even when its attach target does not exist on this machine (a probe for another kernel)
    ///
    /// Without it, a missing tracepoint, kernel function, binary or symbol (named with the nearest real names)
    /// or a kprobe on a kernel without kprobes stops `new` before any file is written.
    #[arg(long)]
    pub force: bool,
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
