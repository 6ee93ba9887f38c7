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
    Kill,
    Cargo,
    Rustfmt,
    AptGet,
    Dnf,
    Yum,
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
            ToolKind::Kill => &["kill"],
            ToolKind::Cargo => &["cargo"],
            ToolKind::Rustfmt => &["rustfmt"],
            ToolKind::AptGet => &["apt-get"],
            ToolKind::Dnf => &["dnf"],
            ToolKind::Yum => &["yum"],
        }
    }

    /// Distros ship versioned LLVM binaries (`clang-14`, `llvm-strip-17`); the highest one counts.
    fn versioned_prefix(self) -> Option<&'static str> {
        match self {
            ToolKind::Clang => Some("clang-"),
            ToolKind::LlvmStrip => Some("llvm-strip-"),
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

/// A command line to run; displays shell-escaped so a user can paste it.
#[derive(Clone, Debug)]
pub struct Cmd {
    program: PathBuf,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    envs: Vec<(OsString, OsString)>,
}

impl Cmd {
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

    /// Runs to completion capturing stdout and stderr; a non-zero exit is not an error here.
    pub fn output(&self) -> Result<Output> {
        self.command()
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("could not start `{self}`"))
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

    /// Starts without waiting, stdout piped to the caller and stderr shared with ours (for `run`).
    pub fn spawn_reading_stdout(&self) -> Result<std::process::Child> {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start `{self}`"))
    }

    /// Runs capturing stdout while stderr goes to the terminal (cargo's progress and diagnostics).
    pub fn output_with_inherited_stderr(&self) -> Result<Output> {
        self.command()
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
}
