//! The one place where child processes start: finds external tools (env override, then PATH) and runs them.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context, Result};

/// An external program the tool knows how to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolKind {
    Clang,
    LlvmStrip,
    Bpftool,
    Cc,
    /// The C++ compiler, for `*.cpp` userland and shared sets.
    Cxx,
    Make,
    Mount,
    Cargo,
    Rustfmt,
    AptGet,
    Dnf,
    Yum,
    /// DWARF → BTF for kernels without BTF (dwarves).
    Pahole,
    /// The language server editors run on `compile_commands.json` (reported by `--check`, installed by `--fix`).
    Clangd,
    /// Unpacks a kernel debug `.deb`.
    DpkgDeb,
    /// Adds a foreign architecture before its libraries are installed (`--fix --arch`).
    Dpkg,
    /// Unpacks a `kernel-debuginfo` rpm (libarchive reads rpm).
    Bsdtar,
    /// Cross compilers for other architectures' userland, by their Debian/Fedora names.
    CrossGccAarch64,
    CrossGccRiscv64,
}

impl ToolKind {
    /// The environment variable that overrides the search, as the old `var.mk` had `CLANG ?= clang`.
    pub fn env_override(self) -> Option<&'static str> {
        match self {
            ToolKind::Clang => Some("CLANG"),
            ToolKind::LlvmStrip => Some("LLVM_STRIP"),
            ToolKind::Bpftool => Some("BPFTOOL"),
            ToolKind::Cc => Some("CC"),
            ToolKind::Cxx => Some("CXX"),
            ToolKind::Cargo => Some("CARGO"),
            _ => None,
        }
    }

    /// Plain names tried in order on the search path.
    fn names(self) -> &'static [&'static str] {
        match self {
            ToolKind::Clang => &["clang"],
            ToolKind::LlvmStrip => &["llvm-strip"],
            ToolKind::Bpftool => &["bpftool"],
            ToolKind::Cc => &["cc", "gcc"],
            ToolKind::Cxx => &["c++", "g++", "clang++"],
            ToolKind::Make => &["make", "gmake"],
            ToolKind::Mount => &["mount"],
            ToolKind::Cargo => &["cargo"],
            ToolKind::Rustfmt => &["rustfmt"],
            ToolKind::AptGet => &["apt-get"],
            ToolKind::Dnf => &["dnf"],
            ToolKind::Yum => &["yum"],
            ToolKind::Pahole => &["pahole"],
            ToolKind::Clangd => &["clangd"],
            ToolKind::DpkgDeb => &["dpkg-deb"],
            ToolKind::Dpkg => &["dpkg"],
            ToolKind::Bsdtar => &["bsdtar"],
            ToolKind::CrossGccAarch64 => &["aarch64-linux-gnu-gcc"],
            ToolKind::CrossGccRiscv64 => &["riscv64-linux-gnu-gcc"],
        }
    }

    /// Distros ship versioned LLVM binaries (`clang-14`, `llvm-strip-17`); the highest one counts.
    fn versioned_prefix(self) -> Option<&'static str> {
        match self {
            ToolKind::Clang => Some("clang-"),
            ToolKind::LlvmStrip => Some("llvm-strip-"),
            ToolKind::Clangd => Some("clangd-"),
            _ => None,
        }
    }

    pub fn display_name(self) -> &'static str {
        self.names()[0]
    }
}

/// A program found on this machine.
#[derive(Clone, Debug)]
pub struct Tool {
    pub program: PathBuf,
}

/// Finds `kind`: the env override when set, else the search path (plus the sbin dirs, where Debian keeps bpftool).
pub fn find(kind: ToolKind) -> Result<Tool> {
    if let Some(var) = kind.env_override() {
        if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let value_path = PathBuf::from(&value);
            let program = if value_path.components().count() > 1 {
                Some(value_path).filter(|p| is_executable(p))
            } else {
                search_path(&value)
            };
            return match program {
                Some(program) => Ok(Tool { program }),
                None => bail!(
                    "{var}={} is set but is not an executable program; fix or unset {var}",
                    value.to_string_lossy()
                ),
            };
        }
    }
    for name in kind.names() {
        if let Some(program) = search_path(OsStr::new(name)) {
            return Ok(Tool { program });
        }
    }
    if let Some(prefix) = kind.versioned_prefix() {
        if let Some(program) = highest_versioned(prefix) {
            return Ok(Tool { program });
        }
    }
    let hint = match kind.env_override() {
        Some(var) => format!(" (or set {var}=/path/to/{})", kind.display_name()),
        None => String::new(),
    };
    bail!("`{}` not found on PATH{hint}", kind.display_name())
}

fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in ["/usr/local/sbin", "/usr/sbin", "/sbin"] {
        let extra = PathBuf::from(extra);
        if !dirs.contains(&extra) {
            dirs.push(extra);
        }
    }
    dirs
}

/// A program on the search path that is not one of the tools above (`javac`, to find a JDK).
pub fn find_program(name: &str) -> Option<PathBuf> {
    search_path(OsStr::new(name))
}

fn search_path(name: &OsStr) -> Option<PathBuf> {
    search_dirs()
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn highest_versioned(prefix: &str) -> Option<PathBuf> {
    let mut best: Option<(u32, PathBuf)> = None;
    for dir in search_dirs() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(version) = name
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|v| v.parse::<u32>().ok())
            else {
                continue;
            };
            let path = entry.path();
            if is_executable(&path) && best.as_ref().is_none_or(|(v, _)| version > *v) {
                best = Some((version, path));
            }
        }
    }
    best.map(|(_, path)| path)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// How much of a streamed child's stderr is kept for its error (the end, where tools say what went wrong).
const STREAM_STDERR_LIMIT: usize = 64 * 1024;

/// A command line to run; displays shell-escaped so a user can paste it.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    envs: Vec<(OsString, OsString)>,
}

impl Cmd {
    /// The program and its arguments as text (for `compile_commands.json`).
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.to_string_lossy().into_owned())
            .chain(self.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect()
    }

    pub fn new(tool: &Tool) -> Cmd {
        Cmd::program(&tool.program)
    }

    /// A program that is not one of the known tools, e.g. a probe binary or the built feature prober.
    pub fn program(program: impl AsRef<Path>) -> Cmd {
        Cmd {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
            cwd: None,
            envs: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.envs
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        for (k, v) in &self.envs {
            command.env(k, v);
        }
        if let Some(cwd) = &self.cwd {
            command.current_dir(cwd);
        }
        command
    }

    /// The command, set to be killed when the thread that starts it dies: a build killed by SIGTERM or SIGKILL
    /// leaves no clang or cc running as an orphan (package managers, run with the terminal, are left to finish).
    fn dying_with_us(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut command = self.command();
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command
    }

    /// Runs to completion capturing stdout and stderr; a non-zero exit is not an error here.
    pub fn output(&self) -> Result<Output> {
        self.dying_with_us()
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("could not start `{self}`"))
    }

    /// Runs with stdout handed to `consume` as the child writes it (a 3 MB kernel header is never held whole),
    /// stderr kept (its last `STREAM_STDERR_LIMIT` bytes) for the error. The child dies with us, and is killed when
    /// `timeout` passes or `consume` fails; a non-zero exit is an error like `run`'s. `consume` must read to the end.
    pub fn stream_stdout<T>(
        &self,
        timeout: std::time::Duration,
        consume: impl FnOnce(&mut dyn std::io::BufRead) -> Result<T>,
    ) -> Result<T> {
        use std::io::Read;
        let mut child = self
            .dying_with_us()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{self}`"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        // A bigger pipe means fewer wake-ups of both sides; the kernel may refuse, which only costs speed.
        {
            use std::os::fd::AsRawFd;
            // SAFETY: fcntl on a pipe fd we own; no memory is passed.
            unsafe { libc::fcntl(stdout.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
        }
        let stderr_reader = std::thread::spawn(move || {
            let mut kept: Vec<u8> = Vec::new();
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > 2 * STREAM_STDERR_LIMIT {
                    kept.drain(..kept.len() - STREAM_STDERR_LIMIT);
                }
            }
            let start = kept.len().saturating_sub(STREAM_STDERR_LIMIT);
            kept.split_off(start)
        });
        let pid = child.id() as libc::pid_t;
        let watchdog = Watchdog::start(pid, timeout);
        let mut reader = std::io::BufReader::with_capacity(1 << 18, stdout);
        let consumed = consume(&mut reader);
        if consumed.is_err() {
            // SAFETY: as above; the child is not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        drop(reader);
        let timed_out = watchdog.stop();
        let status = child
            .wait()
            .with_context(|| format!("could not wait for `{self}`"))?;
        let stderr = stderr_reader.join().unwrap_or_default();
        if timed_out {
            bail!(
                "`{self}` was killed after {} s without finishing",
                timeout.as_secs()
            );
        }
        // Killed by us after `consume` failed: its error says what was wrong, not the SIGKILL. A child that failed
        // on its own says why in its stderr, whatever `consume` made of the partial output.
        let killed_by_us = {
            use std::os::unix::process::ExitStatusExt;
            consumed.is_err() && status.signal() == Some(libc::SIGKILL)
        };
        if !status.success() && !killed_by_us {
            let output = Output {
                status,
                stdout: Vec::new(),
                stderr,
            };
            return Err(ProcessError::new(self, &output).into());
        }
        consumed
    }

    /// Runs capturing output; a non-zero exit becomes an error carrying the command line and its stderr.
    pub fn run(&self) -> Result<Output> {
        let output = self.output()?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(ProcessError::new(self, &output).into())
        }
    }

    /// Starts without waiting as the leader of a new process group (for `run`): stdin is /dev/null, stdout and
    /// stderr are piped to the caller. Everything the child starts stays in its group (unless it leaves with
    /// `setsid`), so `ProcessGroup::signal` reaches the whole tree, and a dropped `ProcessGroup` kills it.
    pub fn spawn_process_group(&self) -> Result<ProcessGroup> {
        use std::os::unix::process::CommandExt;
        let child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .with_context(|| format!("could not start `{self}`"))?;
        Ok(ProcessGroup {
            child,
            finished: false,
        })
    }

    /// Runs capturing stdout while stderr goes to the terminal (cargo's progress and diagnostics).
    pub fn output_with_inherited_stderr(&self) -> Result<Output> {
        self.dying_with_us()
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("could not start `{self}`"))
    }

    /// Runs with the terminal attached (package managers show their own progress).
    pub fn run_inherited(&self) -> Result<()> {
        let status = self
            .command()
            .status()
            .with_context(|| format!("could not start `{self}`"))?;
        if status.success() {
            Ok(())
        } else {
            bail!("`{self}` failed ({status})")
        }
    }
    /// As `run_inherited` (the child's own progress and messages reach the terminal), but the child dies with us
    /// and is killed after `timeout`: for a download into a temp dir, where stopping half-way harms nothing.
    pub fn run_inherited_with_timeout(&self, timeout: std::time::Duration) -> Result<()> {
        let mut child = self
            .dying_with_us()
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start `{self}`"))?;
        let pid = child.id() as libc::pid_t;
        let watchdog = Watchdog::start(pid, timeout);
        // Wait for the exit without reaping it (WNOWAIT), so the pid stays ours until the watchdog is joined.
        loop {
            // SAFETY: siginfo_t is plain data, for which all zero bytes are a valid value.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid writes only into `info`, which lives across the call.
            let waited = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if waited == 0
                || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
            {
                break;
            }
        }
        let timed_out = watchdog.stop();
        let status = child
            .wait()
            .with_context(|| format!("could not wait for `{self}`"))?;
        if timed_out {
            bail!(
                "`{self}` was killed after {} s without finishing",
                timeout.as_secs()
            );
        }
        if status.success() {
            Ok(())
        } else {
            bail!("`{self}` failed ({status})")
        }
    }
}

/// Kills a child with SIGKILL when it outlives `timeout`. It must be stopped before the child is reaped: until
/// then the pid cannot belong to another process.
struct Watchdog {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(pid: libc::pid_t, timeout: std::time::Duration) -> Watchdog {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(timeout) {
                // SAFETY: kill has no memory effects; `pid` is our child, not reaped before `stop` returns.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return true;
            }
            false
        });
        Watchdog { stop, thread }
    }

    /// Whether it killed the child.
    fn stop(self) -> bool {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or(false)
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.envs {
            write!(
                f,
                "{}={} ",
                k.to_string_lossy(),
                shell_quote(&v.to_string_lossy())
            )?;
        }
        write!(f, "{}", shell_quote(&self.program.to_string_lossy()))?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(&arg.to_string_lossy()))?;
        }
        Ok(())
    }
}

/// Quotes `s` for a POSIX shell only when it needs it, so common command lines stay readable.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.' | '/' | '=' | ':' | ',' | '+' | '@')
        });
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The signals `run` stops a probe with, mildest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// What a person's Ctrl-C sends; many tools flush their output and detach on it.
    Interrupt,
    Terminate,
    Kill,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Kill => "SIGKILL",
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A child started by `Cmd::spawn_process_group`, leader of its own process group.
///
/// The leader is not reaped until `finish`: while it is a zombie its pid, which is the group's id, cannot be
/// given to another process, so signalling the group can never reach a stranger.
pub struct ProcessGroup {
    child: std::process::Child,
    finished: bool,
}

/// How a process group ended: the leader's exit status and the pids of the members still alive after it,
/// which `finish` killed.
pub struct GroupEnd {
    pub status: std::process::ExitStatus,
    pub killed_leftovers: Vec<u32>,
}

impl ProcessGroup {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<std::process::ChildStderr> {
        self.child.stderr.take()
    }

    /// Whether the leader has exited, without reaping it (`waitid` with `WNOWAIT`).
    pub fn leader_has_exited(&mut self) -> Result<bool> {
        loop {
            // SAFETY: an all-zero siginfo_t is a valid value; waitid only writes into it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: plain syscall on our own child's pid with a valid out pointer.
            let rc = unsafe {
                libc::waitid(
                    libc::P_PID,
                    self.child.id() as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                )
            };
            if rc == 0 {
                // SAFETY: waitid filled `info`; si_pid is 0 when the child has not changed state (WNOHANG).
                return Ok(unsafe { info.si_pid() } != 0);
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(error)
                    .with_context(|| format!("could not wait for process {}", self.child.id()));
            }
        }
    }

    /// Sends `signal` to every process of the group; a group already gone is not an error.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let group = self.child.id() as libc::pid_t;
        // SAFETY: killpg has no memory effects; the group id is our unreaped child's pid (see the type's docs).
        if unsafe { libc::killpg(group, signal.number()) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        Err(error).with_context(|| format!("could not send {signal} to process group {group}"))
    }

    /// Kills whatever is left of the group (a child the leader started and did not stop) and reaps the leader.
    /// Call it once the leader has exited: it waits for the leader.
    pub fn finish(mut self) -> Result<GroupEnd> {
        let killed_leftovers = self.live_members_besides_leader();
        // Always, not only when some were seen: a member may have forked since the scan.
        self.signal(Signal::Kill)?;
        let status = self
            .child
            .wait()
            .with_context(|| format!("could not wait for process {}", self.child.id()))?;
        self.finished = true;
        Ok(GroupEnd {
            status,
            killed_leftovers,
        })
    }

    /// The group's live members other than the leader, from `/proc/<pid>/stat` (zombies are not alive).
    fn live_members_besides_leader(&self) -> Vec<u32> {
        let group = self.child.id();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut members: Vec<u32> = entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != group)
            .filter(|&pid| {
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    return false;
                };
                // `pid (comm) state ppid pgrp …`; comm may contain spaces and parentheses.
                let Some((_, after_comm)) = stat.rsplit_once(')') else {
                    return false;
                };
                let fields: Vec<&str> = after_comm.split_whitespace().collect();
                matches!(fields.as_slice(), [state, _ppid, pgrp, ..]
                    if !matches!(*state, "Z" | "X") && pgrp.parse::<u32>() == Ok(group))
            })
            .collect();
        members.sort_unstable();
        members
    }
}

impl Drop for ProcessGroup {
    /// An error or a panic in the caller must not leave the probe and its children running.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let _ = self.signal(Signal::Kill);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while std::time::Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// A child that exited unsuccessfully, shown like cargo's `ProcessError`: command, status, then its own output.
#[derive(Debug)]
pub struct ProcessError {
    pub command: String,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

impl ProcessError {
    pub fn new(cmd: &Cmd, output: &Output) -> ProcessError {
        ProcessError {
            command: cmd.to_string(),
            status: output.status.to_string(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "command failed ({}): `{}`", self.status, self.command)?;
        if !self.stdout.trim().is_empty() {
            write!(f, "\n--- stdout\n{}", self.stdout.trim_end())?;
        }
        if !self.stderr.trim().is_empty() {
            write!(f, "\n--- stderr\n{}", self.stderr.trim_end())?;
        }
        Ok(())
    }
}

impl std::error::Error for ProcessError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("-D__TARGET_ARCH_x86"), "-D__TARGET_ARCH_x86");
        assert_eq!(
            shell_quote("/usr/include/x86_64-linux-gnu"),
            "/usr/include/x86_64-linux-gnu"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn a_process_group_is_signalled_whole_and_finish_kills_what_the_leader_left() {
        // The leader starts a `sleep` in the background, prints its pid and exits at once.
        let mut group = Cmd::program("sh")
            .args(["-c", "sleep 30 & echo $!"])
            .spawn_process_group()
            .unwrap();
        let mut pid = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(group.take_stdout().unwrap()),
            &mut pid,
        )
        .unwrap();
        let sleeper: u32 = pid.trim().parse().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !group.leader_has_exited().unwrap() {
            assert!(std::time::Instant::now() < deadline, "sh did not exit");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // Not reaped: the leader's pid (the group's id) stays taken until `finish`.
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", group.id())).unwrap();
        assert!(stat.rsplit_once(')').unwrap().1.starts_with(" Z"), "{stat}");
        let end = group.finish().unwrap();
        assert!(end.status.success());
        assert_eq!(end.killed_leftovers, vec![sleeper]);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let state = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.rsplit_once(')').unwrap().1.starts_with(" Z"),
            "the sleep still runs: {state}"
        );
    }
}
