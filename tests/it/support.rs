//! Test support: temp workspaces built from this repository's SDK, the one builder through which tests run the
//! real `ebpf-probe` binary and every other program (a failure reports command, cwd, tree, stdout and stderr),
//! and the rule that a test needing root or tools skips on a laptop but fails under `CI`.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_ebpf-probe");

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Returns false (and says why) when the test cannot run here; under `CI` a missing requirement fails the test.
pub fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "this test needs {what}, which CI must provide (run `ebpf-probe --check --fix` first)"
        );
    }
    eprintln!("skipping: needs {what}");
    false
}

/// Runs `ebpf-probe --check --fix ARGS…` in `ws` the way a user does, one test at a time: the package manager
/// takes a system-wide lock, and two installs at once would fail on it.
pub fn fix_environment(ws: &Workspace, args: &[&str]) -> Done {
    static PACKAGE_MANAGER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = PACKAGE_MANAGER.lock().unwrap_or_else(|e| e.into_inner());
    let mut all = vec!["--check", "--fix"];
    all.extend(args);
    ws.cmd(&all).success()
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

pub fn has_program(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .any(|d| d.join(name).is_file())
}

/// The build tools and libbpf headers.
pub fn require_build_tools() -> bool {
    let present = ["clang", "llvm-strip", "bpftool", "cc"]
        .iter()
        .all(|t| has_program(t))
        && Path::new("/usr/include/bpf/libbpf.h").is_file()
        && Path::new("/usr/include/libelf.h").is_file();
    require(
        "clang, llvm-strip, bpftool, cc, libbpf and libelf headers",
        present,
    )
}

/// Loading BPF: root, the tools, kernel BTF and tracefs.
pub fn require_kernel() -> bool {
    require_build_tools()
        && require("root", is_root())
        && require(
            "kernel BTF at /sys/kernel/btf/vmlinux",
            Path::new("/sys/kernel/btf/vmlinux").exists(),
        )
        && require(
            "tracefs mounted at /sys/kernel/tracing",
            Path::new("/sys/kernel/tracing/events").is_dir(),
        )
}

/// A throwaway workspace: the marker, this repository's SDK headers and lib/, and chosen probes.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("ebpf-probe-test")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("ebpf-probe.toml"), "# test workspace\n").unwrap();
        let include = dir.path().join("include");
        std::fs::create_dir_all(&include).unwrap();
        for entry in std::fs::read_dir(repo_root().join("include"))
            .unwrap()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Generated headers are per machine; each test workspace makes its own with -g.
            if name.starts_with("linux_") || name == "vmlinux.h" {
                continue;
            }
            std::fs::copy(entry.path(), include.join(&name)).unwrap();
        }
        copy_dir(&repo_root().join("lib"), &dir.path().join("lib"));
        std::fs::create_dir_all(dir.path().join("probes")).unwrap();
        Workspace { dir }
    }

    /// A temp dir holding only a copy of `tests/fixtures/<name>`: no marker, no SDK (a tree `import` turns into a
    /// workspace).
    pub fn fixture_tree(name: &str) -> Workspace {
        let dir = tempfile::Builder::new()
            .prefix("ebpf-probe-test")
            .tempdir()
            .unwrap();
        copy_dir(&repo_root().join("tests/fixtures").join(name), dir.path());
        Workspace { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `probes/<name>` from this repository.
    pub fn shipped_probe(self, name: &str) -> Workspace {
        copy_dir(
            &repo_root().join("probes").join(name),
            &self.root().join("probes").join(name),
        );
        self
    }

    /// Copies `tests/fixtures/<name>` in as a probe.
    pub fn fixture_probe(self, name: &str) -> Workspace {
        copy_dir(
            &repo_root().join("tests/fixtures").join(name),
            &self.root().join("probes").join(name),
        );
        self
    }

    /// Makes this a cargo workspace for the Rust probes `members` (`probes/tcpprobe`), laid out as `new --userland
    /// rust` lays it out: this repository's `sdk/` (the Rust SDK, the skeleton generator, the probes' shared
    /// build script), a root `Cargo.toml` with this repository's pinned `[workspace.dependencies]`, and its
    /// `Cargo.lock`, so the probes build with the versions this repository is tested with and without a registry
    /// lookup.
    pub fn rust_workspace(self, members: &[&str]) -> Workspace {
        copy_dir(&repo_root().join("sdk"), &self.root().join("sdk"));
        let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
        let dependencies: String = manifest
            .lines()
            .skip_while(|l| *l != "[workspace.dependencies]")
            .take_while(|l| !l.trim().is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            dependencies.contains("libbpf-rs"),
            "no [workspace.dependencies] in this repository's Cargo.toml"
        );
        let members: Vec<String> = ["sdk/rust", "sdk/skelgen"]
            .iter()
            .chain(members)
            .map(|m| format!("{m:?}"))
            .collect();
        std::fs::write(
            self.root().join("Cargo.toml"),
            format!(
                "[workspace]\nmembers = [{}]\nresolver = \"2\"\n\n{dependencies}",
                members.join(", ")
            ),
        )
        .unwrap();
        std::fs::copy(
            repo_root().join("Cargo.lock"),
            self.root().join("Cargo.lock"),
        )
        .unwrap();
        self
    }

    /// Writes `probes/<probe>/<file>`.
    pub fn file(self, relative: &str, contents: &str) -> Workspace {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    /// `ebpf-probe ARGS` in the workspace root.
    pub fn cmd(&self, args: &[&str]) -> Run {
        Run::new(BIN, self.root(), Some(self.root())).args(args)
    }

    /// Another program (a built probe, `script`) in the workspace root; the report lists the workspace.
    pub fn program(&self, program: impl AsRef<OsStr>) -> Run {
        Run::new(program, self.root(), Some(self.root()))
    }

    /// `ebpf-probe -g` that must succeed.
    pub fn gen(self) -> Workspace {
        self.cmd(&["-g"]).success();
        self
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root().join(relative)
    }
}

/// `ebpf-probe ARGS` outside any workspace: in a fresh empty directory, which the report lists (add the
/// directory a `-C DIR` names with `tree_of`).
pub fn ebpf_probe(args: &[&str]) -> Run {
    let scratch = tempfile::Builder::new()
        .prefix("ebpf-probe-test-cwd")
        .tempdir()
        .unwrap();
    let mut run = Run::new(BIN, scratch.path(), Some(scratch.path())).args(args);
    run.scratch = Some(scratch);
    run
}

/// Any program (bpftool, cargo, mount, a built probe) in the test's own working directory; no tree in the report.
pub fn program(program: impl AsRef<OsStr>) -> Run {
    let cwd = std::env::current_dir().unwrap();
    Run::new(program, &cwd, None)
}

/// A command to run, and what its report shows when an expectation fails: the command line, the working
/// directory, a tree of the workspace (or of the directory it works on), stdout and stderr.
pub struct Run {
    command: Command,
    tree_root: Option<PathBuf>,
    /// The empty working directory of a run outside any workspace, kept until its report is no longer needed.
    scratch: Option<tempfile::TempDir>,
}

impl Run {
    fn new(program: impl AsRef<OsStr>, cwd: &Path, tree_root: Option<&Path>) -> Run {
        let mut command = Command::new(program);
        command.current_dir(cwd);
        Run {
            command,
            tree_root: tree_root.map(Path::to_path_buf),
            scratch: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Run {
        self.command.arg(arg);
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Run {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Run {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Run {
        self.command.env_remove(key);
        self
    }

    /// Runs in `dir` (a subdirectory of the workspace, or anywhere); the report still lists the same tree.
    pub fn current_dir(mut self, dir: &Path) -> Run {
        self.command.current_dir(dir);
        self
    }

    /// The directory whose tree the report lists (e.g. the one `-C DIR` or `init DIR` works on).
    pub fn tree_of(mut self, dir: &Path) -> Run {
        self.tree_root = Some(dir.to_path_buf());
        self
    }

    /// Runs in a process group of its own, so a test can kill it with every child it started.
    pub fn own_process_group(mut self) -> Run {
        use std::os::unix::process::CommandExt;
        self.command.process_group(0);
        self
    }

    /// The command as a shell line: `cd DIR && VAR=… "program" "arg"…` (std's `Debug` of a `Command`).
    fn describe(&self) -> String {
        format!("{:?}", self.command)
    }

    /// Runs to completion with stdin closed, capturing stdout and stderr.
    pub fn output(self) -> Done {
        self.try_output()
            .unwrap_or_else(|(description, e)| panic!("could not start {description}: {e}"))
    }

    /// As `output`, but a program that cannot be started is an error, not a panic (for `Drop` impls).
    pub fn try_output(mut self) -> Result<Done, (String, std::io::Error)> {
        let description = self.describe();
        match self.command.stdin(Stdio::null()).output() {
            Ok(output) => Ok(Done {
                description,
                tree_root: self.tree_root,
                output,
                _scratch: self.scratch,
            }),
            Err(e) => Err((description, e)),
        }
    }

    pub fn success(self) -> Done {
        let done = self.output();
        if !done.output.status.success() {
            panic!("expected success\n{}", done.report());
        }
        done
    }

    pub fn failure(self) -> Done {
        let done = self.output();
        if done.output.status.success() {
            panic!("expected failure\n{}", done.report());
        }
        done
    }

    /// Starts without waiting (stdin closed, stdout and stderr captured); `Spawned::wait` gives the `Done`.
    pub fn spawn(mut self) -> Spawned {
        let description = self.describe();
        let child = self
            .command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {description}: {e}"));
        Spawned {
            child,
            description,
            tree_root: self.tree_root,
            scratch: self.scratch,
        }
    }
}

/// A started `Run`.
pub struct Spawned {
    child: std::process::Child,
    description: String,
    tree_root: Option<PathBuf>,
    scratch: Option<tempfile::TempDir>,
}

impl Spawned {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn is_finished(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// SIGKILL, for a helper process the test is done with.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    pub fn wait(self) -> Done {
        let output = self
            .child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("could not wait for {}: {e}", self.description));
        Done {
            description: self.description,
            tree_root: self.tree_root,
            output,
            _scratch: self.scratch,
        }
    }
}

/// A finished `Run`: its output, and a report of everything a reader of a failed test needs.
pub struct Done {
    description: String,
    tree_root: Option<PathBuf>,
    pub output: Output,
    _scratch: Option<tempfile::TempDir>,
}

impl Done {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn report(&self) -> String {
        let tree = match &self.tree_root {
            Some(root) => format!("tree of {}:\n{}\n", root.display(), tree(root)),
            None => String::new(),
        };
        format!(
            "command: {}\nstatus: {}\n{tree}--- stdout\n{}\n--- stderr\n{}",
            self.description,
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts that the command succeeded (for a `Spawned` one, whose expectation comes after it ran).
    pub fn assert_success(&self) -> &Done {
        assert!(
            self.output.status.success(),
            "expected success\n{}",
            self.report()
        );
        self
    }

    pub fn stderr_contains(&self, needle: &str) -> &Done {
        assert!(
            self.stderr().contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.report()
        );
        self
    }

    pub fn stdout_contains(&self, needle: &str) -> &Done {
        assert!(
            self.stdout().contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.report()
        );
        self
    }
}

fn tree(dir: &Path) -> String {
    list_tree(dir)
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path below `dir`, relative to it, sorted (symlinks are listed, not followed).
pub fn list_tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `ebpf-probe run PROBE --seconds 4` in `ws` (with `envs`) while `trigger` runs every 100 ms.
pub fn run_while_triggering(
    ws: &Workspace,
    probe: &str,
    envs: &[(&str, &str)],
    trigger: &[&str],
) -> Done {
    let mut run = ws.cmd(&["run", probe, "--seconds", "4"]);
    for (key, value) in envs {
        run = run.env(key, value);
    }
    let running = run.spawn();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(3500) {
        // Only the events matter, not whether the trigger itself succeeds.
        let _ = program(trigger[0]).args(&trigger[1..]).try_output();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    running.wait()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from)
        .unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
        .flatten()
    {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A running probe whose stdout lines are collected by a thread, killed on drop.
pub struct RunningProbe {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
    /// What it said on stderr up to its `ready` line.
    pub startup: Vec<String>,
}

impl RunningProbe {
    /// Starts `binary` and waits until it says on stderr that it is attached (a line containing `ready`).
    pub fn start(binary: &Path, args: &[&str]) -> RunningProbe {
        RunningProbe::start_with_env(binary, args, &[])
    }

    /// `start` with these environment variables set for the probe.
    pub fn start_with_env(binary: &Path, args: &[&str], env: &[(&str, &OsStr)]) -> RunningProbe {
        use std::io::BufRead;
        let mut child = Command::new(binary)
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("[probe stderr] {line}");
                let _ = ready_tx.send(line);
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut startup = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match ready_rx.recv_timeout(left) {
                Ok(line) if line.contains("ready") => {
                    startup.push(line);
                    break;
                }
                Ok(line) => startup.push(line),
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    panic!(
                        "{} never said it was ready (exit status: {status:?})",
                        binary.display()
                    );
                }
            }
        }
        RunningProbe {
            child,
            lines: rx,
            seen: Vec::new(),
            startup,
        }
    }

    /// Waits up to `timeout` for a stdout line matching `pred`.
    pub fn wait_for_line(
        &mut self,
        timeout: std::time::Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Sends SIGTERM with the `kill` program and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("probe did not exit within 5s of SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for RunningProbe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs killprobe from `binary`, sends a real `kill -USR1` to a `sleep`, and asserts the probe reports it with
/// the killer's pid, signal 10 and the victim's pid within a second, then stops cleanly on SIGTERM.
pub fn assert_killprobe_sees_a_real_kill(binary: &Path) {
    assert_killprobe_sees_a_real_kill_with_env(binary, &[]);
}

/// `assert_killprobe_sees_a_real_kill` with these environment variables set for the probe; returns what it said
/// on stderr before it was ready.
pub fn assert_killprobe_sees_a_real_kill_with_env(
    binary: &Path,
    env: &[(&str, &OsStr)],
) -> Vec<String> {
    let mut probe = RunningProbe::start_with_env(binary, &[], env);
    let mut victim = Command::new("sleep").arg("30").spawn().unwrap();
    let mut killer = Command::new("kill")
        .args(["-USR1", &victim.id().to_string()])
        .spawn()
        .unwrap();
    let expected = format!("|kill_info|{}|10|{}|kill|", killer.id(), victim.id());
    killer.wait().unwrap();
    let line = probe.wait_for_line(std::time::Duration::from_secs(1), |l| l == expected);
    let _ = victim.kill();
    let _ = victim.wait();
    assert!(
        line.is_some(),
        "expected {expected:?} within a second; the probe printed {:#?}",
        probe.seen
    );
    let startup = std::mem::take(&mut probe.startup);
    let status = probe.terminate();
    assert!(
        status.success(),
        "killprobe exits cleanly on SIGTERM: {status}"
    );
    startup
}

/// `ebpf-probe ARGS` whose stdout is a pipe already full, so it stops at its first printed line. install prints
/// its first line right after its first rename: the test can act between two renames (kill it, plant a fault),
/// then let it go on. No hook in the program is needed.
pub struct Blocked {
    child: std::process::Child,
    stdout: Option<std::io::PipeReader>,
    stderr: tempfile::NamedTempFile,
}

fn set_nonblocking(fd: i32, on: bool) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags), 0);
    }
}

impl Blocked {
    pub fn start(ws: &Workspace, args: &[&str]) -> Blocked {
        let (reader, mut writer) = std::io::pipe().unwrap();
        set_nonblocking(writer.as_raw_fd(), true);
        for chunk in [&[b'.'; 4096][..], &[b'.'][..]] {
            loop {
                match writer.write(chunk) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("fill the pipe: {e}"),
                }
            }
        }
        set_nonblocking(writer.as_raw_fd(), false);
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(BIN)
            .args(args)
            .current_dir(ws.root())
            .stdout(writer)
            .stderr(stderr.reopen().unwrap())
            .spawn()
            .unwrap();
        Blocked {
            child,
            stdout: Some(reader),
            stderr,
        }
    }

    /// Waits until `ready` holds (the first rename is done); the process is then stopped at its first line.
    pub fn wait_until(&mut self, what: &str, ready: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !ready() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "ebpf-probe exited ({status}) before {what}; stderr:\n{}",
                    std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}; stderr:\n{}",
                std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "ebpf-probe should be stopped at its first line; stderr:\n{}",
            std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
        );
    }

    /// kill -9.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Lets it print and finish: (success, stdout, stderr).
    pub fn release(mut self) -> (bool, String, String) {
        let mut reader = self.stdout.take().unwrap();
        let drain = std::thread::spawn(move || {
            let mut out = Vec::new();
            reader.read_to_end(&mut out).unwrap();
            String::from_utf8_lossy(&out)
                .trim_start_matches('.')
                .to_string()
        });
        let status = self.child.wait().unwrap();
        let stdout = drain.join().unwrap();
        (
            status.success(),
            stdout,
            std::fs::read_to_string(self.stderr.path()).unwrap_or_default(),
        )
    }
}

/// A tmpfs mounted for one test, unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs at {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `ebpf-probe ARGS` in `dir` with stdout and stderr piped, as a raw child: for the tests that read its output
/// while it runs (`run`'s streaming, its own Ctrl-C).
pub fn ebpf_probe_child(dir: &Path, args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {BIN} {args:?}: {e}"))
}

/// `kill -SIGNAL PID`; whether it succeeded.
pub fn send_signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// The probes a build printed as `Built` and as `Fresh`, sorted.
pub fn built_and_fresh(stderr: &str) -> (Vec<String>, Vec<String>) {
    let names = |verb: &str| -> Vec<String> {
        let mut names: Vec<String> = stderr
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix(verb))
            .filter_map(|rest| rest.split_whitespace().next().map(String::from))
            .collect();
        names.sort();
        names
    };
    (names("Built "), names("Fresh "))
}
