//! `run` against fake probes (tiny C userlands, no BPF loaded) that produce the faults a real probe can: one
//! that flushes only on SIGINT, ignores SIGINT and SIGTERM, forks a `sleep` holding its stdout, prints as
//! fast as it can, prints terminal escapes, ends without a newline, or exits at once.

use std::io::{BufRead, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{ebpf_probe_child, send_signal, Workspace};

const META: &str = "version = \"1.0.0\"\nmeasurements:\n(\n  {\n    table_name: \"t\",\n    entity_name: \"e\",\n    fields:\n    (\n      { description: \"k\", type: \"key\", name: \"k\" },\n      { description: \"v\", type: \"gauge\", name: \"v\" }\n    )\n  }\n)\n";
const BPF: &str = "#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n";
const INCLUDES: &str =
    "#include <signal.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\n";

/// Building needs the tools and `-g` needs kernel BTF; running a fake probe needs neither root nor BPF.
fn can_build() -> bool {
    crate::support::require_build_tools()
        && crate::support::require("kernel BTF", Path::new("/sys/kernel/btf/vmlinux").exists())
}

/// A workspace whose probe `t` has the one-table `.meta` above and `main_body` as its userland's `main`.
fn fake_probe(main_body: &str) -> Workspace {
    fake_probe_with(main_body, true)
}

fn fake_probe_with(main_body: &str, with_meta: bool) -> Workspace {
    let user = format!("{INCLUDES}\nint main(void)\n{{\n{main_body}\n}}\n");
    let ws = Workspace::new()
        .file("probes/t/t.bpf.c", BPF)
        .file("probes/t/t.c", &user);
    let ws = if with_meta {
        ws.file("probes/t/t.meta", META)
    } else {
        ws
    };
    let ws = ws.gen();
    // Built here, so the timings the tests measure are `run`'s own (its build is then a no-op).
    ws.cmd(&["-b", "t"]).success();
    ws
}

/// Whether `pid` is a live process (a zombie is not).
fn is_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

fn dies_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while is_alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Kills the pids a fake probe reported when a test ends, so a failing test leaves nothing running.
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            if is_alive(*pid) {
                send_signal(*pid, "KILL");
            }
        }
    }
}

/// The numbers after `word ` on the first stdout line that starts with it (`pids 12 34`).
fn numbers_after(stdout: &str, word: &str) -> Vec<u32> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(word))
        .unwrap_or_else(|| panic!("no `{word}` line in stdout:\n{stdout}"));
    line.split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn run_rejects_a_duration_out_of_range_without_panicking() {
    let ws = Workspace::new();
    for seconds in ["18446744073709551615", "86401", "0"] {
        let done = ws.cmd(&["run", "t", "--seconds", seconds]).failure();
        done.stderr_contains("--seconds")
            .stderr_contains("is not in 1..=86400");
        assert!(!done.stderr().contains("panicked"), "{}", done.report());
    }
}

#[test]
fn run_stops_a_probe_with_sigint_first_and_counts_what_it_flushes_then() {
    if !can_build() {
        return;
    }
    // stdout is a pipe, so these stay in stdio's buffer until exit() flushes it: SIGTERM's default action or
    // a SIGKILL would lose them.
    let ws = fake_probe(
        "  sigset_t set;\n  sigemptyset(&set);\n  sigaddset(&set, SIGINT);\n  sigprocmask(SIG_BLOCK, &set, NULL);\n  printf(\"|t|1|2|\\n|t|3|4|\\n\");\n  int sig;\n  sigwait(&set, &sig);\n  printf(\"|t|5|6|\\n\");\n  return 0;",
    );
    let done = ws.cmd(&["run", "t", "--seconds", "1"]).success();
    done.stderr_contains("Stopped t with SIGINT (exit status: 0)")
        .stderr_contains("t ran 1.")
        .stderr_contains("3 valid lines, 0 invalid, 0 not records");
    done.stdout_contains("|t|5|6|");
}

#[test]
fn run_sends_sigterm_when_sigint_is_ignored() {
    if !can_build() {
        return;
    }
    let ws = fake_probe(
        "  signal(SIGINT, SIG_IGN);\n  printf(\"|t|1|2|\\n\");\n  fflush(stdout);\n  for (;;) pause();",
    );
    let started = Instant::now();
    let done = ws.cmd(&["run", "t", "--seconds", "1"]).success();
    done.stderr_contains("Stopped t with SIGTERM; SIGINT did not stop it (signal: 15 (SIGTERM))")
        .stderr_contains("1 valid line, 0 invalid");
    // One second of running, then SIGINT's grace period of 2s before SIGTERM.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{}",
        done.report()
    );
}

#[test]
fn run_kills_a_probe_that_ignores_sigint_and_sigterm_and_fails() {
    if !can_build() {
        return;
    }
    let ws = fake_probe(
        "  signal(SIGINT, SIG_IGN);\n  signal(SIGTERM, SIG_IGN);\n  printf(\"|t|1|2|\\n\");\n  fflush(stdout);\n  for (;;) pause();",
    );
    let started = Instant::now();
    let done = ws.cmd(&["run", "t", "--seconds", "1"]).failure();
    let elapsed = started.elapsed();
    done.stderr_contains(
        "Killed t with SIGKILL; neither SIGINT nor SIGTERM stopped it (signal: 9 (SIGKILL))",
    )
    .stderr_contains("1 valid line, 0 invalid")
    .stderr_contains(
        "error: probe `t` had to be killed: it did not exit within 2s of SIGINT nor of SIGTERM",
    );
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed < Duration::from_secs(15),
        "1s run + 2s after SIGINT + 2s after SIGTERM, took {elapsed:?}\n{}",
        done.report()
    );
}

#[test]
fn run_stops_the_probes_whole_process_group_at_the_deadline() {
    if !can_build() {
        return;
    }
    // The forked `sleep 25` holds the probe's stdout and stderr; SIGINT to the group ends both.
    let ws = fake_probe(
        "  pid_t sleeper = fork();\n  if (sleeper == 0) {\n    execlp(\"sleep\", \"sleep\", \"25\", (char *)NULL);\n    _exit(127);\n  }\n  printf(\"pids %d %d\\n\", (int)getpid(), (int)sleeper);\n  fflush(stdout);\n  for (;;) pause();",
    );
    let started = Instant::now();
    let done = ws.cmd(&["run", "t", "--seconds", "1"]).success();
    let elapsed = started.elapsed();
    let pids = numbers_after(&done.stdout(), "pids");
    let _cleanup = KillOnDrop(pids.clone());
    assert!(
        elapsed < Duration::from_secs(8),
        "took {elapsed:?}\n{}",
        done.report()
    );
    done.stderr_contains("Stopped t with SIGINT (signal: 2 (SIGINT))");
    // A signalled process dies when next scheduled: on a loaded machine that is not at once.
    for pid in pids {
        assert!(
            dies_within(pid, Duration::from_secs(2)),
            "pid {pid} still runs\n{}",
            done.report()
        );
    }
}

#[test]
fn run_kills_what_an_exited_probe_left_holding_its_stdout() {
    if !can_build() {
        return;
    }
    // The leader exits at once; its `sleep 25` ignores SIGINT (inherited through exec) and keeps the pipe open.
    let ws = fake_probe(
        "  printf(\"|t|1|2|\\n\");\n  fflush(stdout);\n  signal(SIGINT, SIG_IGN);\n  pid_t sleeper = fork();\n  if (sleeper == 0) {\n    execlp(\"sleep\", \"sleep\", \"25\", (char *)NULL);\n    _exit(127);\n  }\n  printf(\"pids %d\\n\", (int)sleeper);\n  return 0;",
    );
    let started = Instant::now();
    let done = ws.cmd(&["run", "t", "--seconds", "10"]).success();
    let elapsed = started.elapsed();
    let sleeper = numbers_after(&done.stdout(), "pids")[0];
    let _cleanup = KillOnDrop(vec![sleeper]);
    assert!(
        elapsed < Duration::from_secs(6),
        "took {elapsed:?}\n{}",
        done.report()
    );
    done.stderr_contains("t exited by itself after")
        .stderr_contains(&format!(
            "warning: `t` left 1 process running in its process group (pid {sleeper}); killed with SIGKILL"
        ))
        .stderr_contains("1 valid line, 0 invalid, 1 not records");
    assert!(
        dies_within(sleeper, Duration::from_secs(2)),
        "{}",
        done.report()
    );
}

#[test]
fn run_keeps_memory_bounded_while_a_probe_prints_as_fast_as_it_can() {
    if !can_build() {
        return;
    }
    let ws = fake_probe("  for (;;)\n    fputs(\"|t|1|2|\\n\", stdout);");
    let mut child = ebpf_probe_child(ws.root(), &["run", "t", "--seconds", "4"]);
    let pid = child.id();
    let mut stderr = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    // Read slowly (about 800 KB/s), far slower than the probe prints: what `run` cannot show yet must wait in
    // the probe's pipe, not in `run`'s memory.
    let mut stdout = child.stdout.take().unwrap();
    let mut buffer = [0u8; 4096];
    assert!(stdout.read(&mut buffer).unwrap() > 0, "no output at all");
    let slow_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < slow_until {
        if stdout.read(&mut buffer).unwrap() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    std::io::copy(&mut stdout, &mut std::io::sink()).unwrap();
    let exit = child.wait().unwrap();
    let stderr = stderr_reader.join().unwrap();
    assert!(exit.success(), "{exit}\n{stderr}");
    assert!(
        peak_kb < 64 * 1024,
        "ebpf-probe run peaked at {peak_kb} kB\n{stderr}"
    );
    let valid: u64 = stderr
        .lines()
        .find_map(|l| {
            l.split_once(": ")?
                .1
                .strip_suffix(" valid lines, 0 invalid, 0 not records")
        })
        .unwrap_or_else(|| panic!("no summary in\n{stderr}"))
        .parse()
        .unwrap();
    assert!(
        valid > 50_000,
        "the probe printed only {valid} lines\n{stderr}"
    );
}

#[test]
fn run_shows_terminal_escapes_escaped() {
    if !can_build() {
        return;
    }
    let ws = fake_probe(
        "  printf(\"\\033]0;owned\\007hello\\n|t|a\\033[31mb|2|\\n\");\n  fflush(stdout);\n  fprintf(stderr, \"\\033[2Jerr\\n\");\n  for (;;) pause();",
    );
    let done = ws.cmd(&["run", "t", "--seconds", "1"]).success();
    for (name, bytes) in [
        ("stdout", &done.output.stdout),
        ("stderr", &done.output.stderr),
    ] {
        assert!(
            !bytes.iter().any(|&b| b == 0x1b || b == 0x07),
            "raw control bytes on {name}\n{}",
            done.report()
        );
    }
    done.stdout_contains("\\x1b]0;owned\\x07hello\n")
        .stdout_contains("|t|a\\x1b[31mb|2|\n");
    done.stderr_contains("\\x1b[2Jerr\n")
        .stderr_contains("1 valid line, 0 invalid, 1 not records");
}

#[test]
fn run_counts_and_shows_a_last_line_without_newline() {
    if !can_build() {
        return;
    }
    let ws = fake_probe("  fputs(\"|t|1|2|\\n|t|3|4|\", stdout);\n  return 0;");
    let done = ws.cmd(&["run", "t", "--seconds", "5"]).success();
    assert!(
        done.stdout().ends_with("|t|1|2|\n|t|3|4|\n"),
        "{}",
        done.report()
    );
    done.stderr_contains("t exited by itself after")
        .stderr_contains("last line did not end with a newline")
        .stderr_contains("2 valid lines, 0 invalid, 0 not records");
}

#[test]
fn run_fails_when_the_probe_exits_at_once_without_a_line() {
    if !can_build() {
        return;
    }
    let ws = fake_probe("  return 0;");
    let done = ws.cmd(&["run", "t", "--seconds", "5"]).failure();
    done.stderr_contains("t exited by itself after 0.")
        .stderr_contains("error: probe `t` exited by itself after 0.")
        .stderr_contains("without printing a line");
}

#[test]
fn run_shows_the_lines_of_a_probe_without_meta_unchecked() {
    if !can_build() {
        return;
    }
    let ws = fake_probe_with(
        "  printf(\"hello\\n|x|1|\\n\");\n  fflush(stdout);\n  for (;;) pause();",
        false,
    );
    let done = ws.cmd(&["run", "t", "--seconds", "1"]).success();
    assert_eq!(done.stdout(), "hello\n|x|1|\n", "{}", done.report());
    assert_eq!(
        done.stderr().matches("no .meta tables").count(),
        2,
        "said once when starting and once in the summary\n{}",
        done.report()
    );
    done.stderr_contains("`t` has no .meta tables, so its lines are shown without checks")
        .stderr_contains("t ran 1.")
        .stderr_contains("2 lines, not checked (no .meta tables)");
    assert!(!done.stderr().contains("invalid"), "{}", done.report());
}

#[test]
fn run_stops_the_probe_group_when_it_is_interrupted_itself() {
    if !can_build() {
        return;
    }
    let ws = fake_probe(
        "  pid_t sleeper = fork();\n  if (sleeper == 0) {\n    execlp(\"sleep\", \"sleep\", \"25\", (char *)NULL);\n    _exit(127);\n  }\n  printf(\"pids %d %d\\n\", (int)getpid(), (int)sleeper);\n  fflush(stdout);\n  for (;;) pause();",
    );
    let mut child = ebpf_probe_child(ws.root(), &["run", "t", "--seconds", "60"]);
    let mut stderr = child.stderr.take().unwrap();
    let (stderr_sender, stderr_text) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = stderr_sender.send(text);
    });
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let pids = numbers_after(&first, "pids");
    let _cleanup = KillOnDrop(pids.clone());
    // What a terminal's Ctrl-C does to `run` (the probe is in its own group, so the terminal cannot reach it).
    let interrupted = Instant::now();
    assert!(send_signal(child.id(), "INT"));
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        if interrupted.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("run did not stop within 15s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = interrupted.elapsed();
    // Whatever still holds the probe's stderr (ours, if `run` passed it on) would keep this open.
    let stderr = stderr_text.recv_timeout(Duration::from_secs(5)).expect(
        "run's stderr is still open 5s after it exited: the probe or its child outlived it",
    );
    assert!(!exit.success(), "{stderr}");
    assert!(took < Duration::from_secs(4), "took {took:?}\n{stderr}");
    assert!(
        stderr.contains("Stopped t with SIGINT")
            && stderr.contains("error: interrupted by SIGINT; the probe `t` was stopped"),
        "{stderr}"
    );
    for pid in pids {
        assert!(
            dies_within(pid, Duration::from_secs(2)),
            "pid {pid} still runs\n{stderr}"
        );
    }
}

#[test]
fn run_cuts_a_line_longer_than_64_kib_and_fails_on_it() {
    if !can_build() {
        return;
    }
    let ws = fake_probe(
        "  fputs(\"|t|\", stdout);\n  for (int i = 0; i < 100 * 1024; i++)\n    putchar('x');\n  fputs(\"|2|\\n|t|1|2|\\n\", stdout);\n  fflush(stdout);\n  for (;;) pause();",
    );
    let done = ws.cmd(&["run", "t", "--seconds", "1"]).failure();
    let stdout = done.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", done.report());
    assert_eq!(lines[0].len(), 64 * 1024 + " …".len());
    assert!(lines[0].ends_with("xxx …") && lines[1] == "|t|1|2|");
    done.stderr_contains("line longer than 64 KiB, not checked: |t|xxx")
        .stderr_contains("1 valid line, 0 invalid, 0 not records, 1 too long to check")
        .stderr_contains("error: 1 line from `t` was longer than 64 KiB and could not be checked");
}
