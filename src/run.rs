//! `run <probe>`: starts a built probe in its own process group, shows its lines (control bytes escaped) and
//! checks each `|table|…|` line against the probe's `.meta` the way a gala-gopher daemon would read it (known
//! table, exact field count, non-empty key); stops the whole group with SIGINT, then SIGTERM, then SIGKILL.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::meta::{self, Table};
use crate::tool::{Cmd, GroupEnd, ProcessGroup, Signal};

/// The longest `--seconds`: one day. Longer runs are a service's job, not a check's.
pub const MAX_SECONDS: u64 = 24 * 60 * 60;
/// How long each stop signal has to work before the next, harsher one is sent.
const GRACE: Duration = Duration::from_secs(2);
/// How long output is still read after the probe exited: a child it left behind may hold its stdout open.
const DRAIN: Duration = Duration::from_secs(1);
/// A longer line is shown and counted cut to this length, so one endless line cannot exhaust memory.
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Lines read but not yet shown; when full, the probe waits on its pipe (memory stays bounded).
const QUEUED_LINES: usize = 256;
/// Invalid lines explained one by one; the rest are only counted.
const EXPLAINED_INVALID_LINES: usize = 20;
/// How often the probe's state, the clock and our own signals are looked at while lines stream in.
const POLL: Duration = Duration::from_millis(50);

pub struct RunOptions {
    pub seconds: u64,
    pub args: Vec<String>,
}

pub fn run_probe(
    probe_name: &str,
    binary: &Path,
    tables: &[Table],
    options: &RunOptions,
) -> Result<()> {
    if !(1..=MAX_SECONDS).contains(&options.seconds) {
        bail!(
            "--seconds {} is out of range: give 1 to {MAX_SECONDS} (one day)",
            options.seconds
        );
    }
    let cmd = Cmd::program(binary).args(&options.args);
    // Before the probe starts, so a Ctrl-C at any moment stops it instead of orphaning it.
    let interrupts = Interrupts::catch()?;
    let mut group = cmd.spawn_process_group()?;
    let stdout = group
        .take_stdout()
        .context("the probe's stdout was not captured")?;
    let stderr = group
        .take_stderr()
        .context("the probe's stderr was not captured")?;
    let (sender, lines) = std::sync::mpsc::sync_channel(QUEUED_LINES);
    std::thread::spawn(move || read_lines(stdout, |line| sender.send(line).is_ok()));
    // The probe's stderr (libbpf's messages, its own errors) is shown escaped too, line by line.
    let (stderr_done, stderr_finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        read_lines(stderr, |line| {
            let cut_mark = if line.cut { " …" } else { "" };
            eprintln!("{}{cut_mark}", escape_control(&line.bytes));
            true
        });
        let _ = stderr_done.send(());
    });
    if tables.is_empty() {
        eprintln!(
            "     Running `{cmd}` for {}s; `{probe_name}` has no .meta tables, so its lines are shown without checks",
            options.seconds
        );
    } else {
        eprintln!(
            "     Running `{cmd}` for {}s, checking its lines against its .meta",
            options.seconds
        );
    }

    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let mut session = Session::new(tables, lines);
    let mut seen_interrupts = 0;
    let first = session.pump(&mut group, deadline, &interrupts, &mut seen_interrupts)?;
    let stopped_by = if first == Pumped::LeaderExited {
        None
    } else {
        Some(stop(
            probe_name,
            &mut group,
            &mut session,
            &interrupts,
            &mut seen_interrupts,
        )?)
    };
    let ran = started.elapsed();
    let end = group.finish()?;
    // Lines the probe wrote to stderr come before our summary; a descendant that left the group with
    // setsid may hold stderr open forever, so this wait is bounded too.
    let _ = stderr_finished.recv_timeout(DRAIN);
    session.flush();

    say_how_it_ended(probe_name, stopped_by, &end, ran);
    session.print_summary(probe_name, ran);

    if let Some(signal) = interrupts.first_signal() {
        bail!("interrupted by {signal}; the probe `{probe_name}` was stopped");
    }
    if let Some(error) = session.output_error {
        return Err(error).context("could not write the probe's lines to stdout");
    }
    judge(
        probe_name,
        tables,
        &session.counts,
        stopped_by,
        &end,
        ran,
        options,
    )
}

/// Sends SIGINT, SIGTERM and SIGKILL to the probe's group in turn, each given `GRACE` (or until `run` is
/// interrupted again), showing the lines it prints meanwhile; returns the signal the leader exited after.
fn stop(
    probe_name: &str,
    group: &mut ProcessGroup,
    session: &mut Session,
    interrupts: &Interrupts,
    seen_interrupts: &mut usize,
) -> Result<Signal> {
    for signal in [Signal::Interrupt, Signal::Terminate, Signal::Kill] {
        group.signal(signal)?;
        let grace_end = Instant::now() + GRACE;
        if session.pump(group, grace_end, interrupts, seen_interrupts)? == Pumped::LeaderExited {
            return Ok(signal);
        }
    }
    bail!(
        "probe `{probe_name}` (pid {}) is still running after SIGKILL (stuck in the kernel?)",
        group.id()
    )
}

fn say_how_it_ended(probe_name: &str, stopped_by: Option<Signal>, end: &GroupEnd, ran: Duration) {
    let status = end.status;
    match stopped_by {
        None => eprintln!(
            "     {probe_name} exited by itself after {:.1}s ({status})",
            ran.as_secs_f64()
        ),
        Some(Signal::Interrupt) => eprintln!("     Stopped {probe_name} with SIGINT ({status})"),
        Some(Signal::Terminate) => eprintln!(
            "     Stopped {probe_name} with SIGTERM; SIGINT did not stop it ({status})"
        ),
        Some(Signal::Kill) => eprintln!(
            "     Killed {probe_name} with SIGKILL; neither SIGINT nor SIGTERM stopped it ({status})"
        ),
    }
    if !end.killed_leftovers.is_empty() {
        let pids: Vec<String> = end
            .killed_leftovers
            .iter()
            .map(|pid| pid.to_string())
            .collect();
        eprintln!(
            "warning: `{probe_name}` left {} process{} running in its process group (pid {}); killed with SIGKILL",
            pids.len(),
            if pids.len() == 1 { "" } else { "es" },
            pids.join(", ")
        );
    }
}

/// The run's verdict: an error for a probe that failed, had to be killed, printed nothing before exiting, or
/// printed lines gala-gopher would drop; a warning when a checked probe printed no record.
fn judge(
    probe_name: &str,
    tables: &[Table],
    counts: &Counts,
    stopped_by: Option<Signal>,
    end: &GroupEnd,
    ran: Duration,
    options: &RunOptions,
) -> Result<()> {
    if stopped_by.is_none() && !end.status.success() {
        bail!(
            "probe `{probe_name}` exited early ({}); its messages are above (BPF needs root)",
            end.status
        );
    }
    if stopped_by == Some(Signal::Kill) {
        bail!(
            "probe `{probe_name}` had to be killed: it did not exit within {}s of SIGINT nor of SIGTERM; \
             a probe should detach and exit on either (a killed probe loses the output it buffered)",
            GRACE.as_secs()
        );
    }
    if stopped_by.is_none() && counts.lines == 0 {
        bail!(
            "probe `{probe_name}` exited by itself after {:.1}s without printing a line; \
             a probe should run and print records until it is stopped",
            ran.as_secs_f64()
        );
    }
    if counts.invalid > 0 {
        bail!(
            "{} line{} from `{probe_name}` would be dropped by gala-gopher (see above)",
            counts.invalid,
            plural(counts.invalid)
        );
    }
    if counts.too_long > 0 {
        bail!(
            "{} line{} from `{probe_name}` {} longer than {} KiB and could not be checked",
            counts.too_long,
            plural(counts.too_long),
            if counts.too_long == 1 { "was" } else { "were" },
            MAX_LINE_BYTES / 1024
        );
    }
    if !tables.is_empty() && counts.valid == 0 {
        eprintln!("warning: no records in {}s; trigger the probe's event while it runs, or pass --seconds", options.seconds);
    }
    Ok(())
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

/// One line of the probe's stdout, without its newline.
struct Line {
    bytes: Vec<u8>,
    /// The line was longer than `MAX_LINE_BYTES`; the rest was read and dropped.
    cut: bool,
    /// Whether a newline ended it (only the last line can lack one).
    terminated: bool,
}

/// Reads `output` into lines of at most `MAX_LINE_BYTES` and hands each to `deliver` (which returns false to
/// stop reading); for stdout it queues them on a bounded channel, so the probe waits when lines are shown more
/// slowly than it prints them. A last line without a newline is delivered too.
fn read_lines(output: impl Read, mut deliver: impl FnMut(Line) -> bool) {
    let mut reader = std::io::BufReader::with_capacity(64 * 1024, output);
    let mut line = Vec::new();
    let mut cut = false;
    loop {
        let buffer = match reader.fill_buf() {
            Ok([]) => break,
            Ok(buffer) => buffer,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let (piece, used, complete) = match buffer.iter().position(|&b| b == b'\n') {
            Some(newline) => (&buffer[..newline], newline + 1, true),
            None => (buffer, buffer.len(), false),
        };
        let room = MAX_LINE_BYTES - line.len();
        if piece.len() > room {
            line.extend_from_slice(&piece[..room]);
            cut = true;
        } else {
            line.extend_from_slice(piece);
        }
        reader.consume(used);
        if complete {
            let bytes = std::mem::take(&mut line);
            if !deliver(Line {
                bytes,
                cut,
                terminated: true,
            }) {
                return;
            }
            cut = false;
        }
    }
    if !line.is_empty() {
        deliver(Line {
            bytes: line,
            cut,
            terminated: false,
        });
    }
}

/// Shows `bytes` as text a terminal cannot act on: control characters (C0 but tab, DEL, C1 — escape
/// sequences, bells, carriage returns) become `\xNN` or `\u{NN}`, and bytes that are not UTF-8 `\xNN`.
/// Printable text, including non-ASCII, is unchanged.
fn escape_control(bytes: &[u8]) -> Cow<'_, str> {
    if bytes
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        // The common case: printable ASCII, shown as it is without a copy.
        return Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default());
    }
    let mut shown = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c != '\t' {
                if (c as u32) < 0x80 {
                    let _ = write!(shown, "\\x{:02x}", c as u32);
                } else {
                    let _ = write!(shown, "\\u{{{:x}}}", c as u32);
                }
            } else {
                shown.push(c);
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(shown, "\\x{byte:02x}");
        }
    }
    Cow::Owned(shown)
}

#[derive(Default)]
struct Counts {
    lines: usize,
    valid: usize,
    invalid: usize,
    /// Lines that do not start with `|`: gala-gopher ignores them (it only logs them).
    ignored: usize,
    too_long: usize,
    /// Valid lines per table, by the table's index in `tables`.
    per_table: Vec<usize>,
    unterminated_last_line: bool,
}

/// Why `Session::pump` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pumped {
    /// The probe exited and its output was read to the end (or for `DRAIN` after its exit).
    LeaderExited,
    TimeUp,
    /// `run` itself got SIGINT, SIGTERM or SIGHUP.
    Interrupted,
}

/// The lines seen so far: counters only, never the lines themselves.
struct Session<'a> {
    tables: &'a [Table],
    lines: Receiver<Line>,
    out: BufWriter<std::io::StdoutLock<'static>>,
    output_error: Option<std::io::Error>,
    counts: Counts,
    /// Bad lines explained so far (see `explain`).
    explained: usize,
    end_of_output: bool,
    leader_exited_at: Option<Instant>,
}

impl<'a> Session<'a> {
    fn new(tables: &'a [Table], lines: Receiver<Line>) -> Session<'a> {
        Session {
            tables,
            lines,
            out: BufWriter::new(std::io::stdout().lock()),
            output_error: None,
            counts: Counts {
                per_table: vec![0; tables.len()],
                ..Counts::default()
            },
            explained: 0,
            end_of_output: false,
            leader_exited_at: None,
        }
    }

    /// Shows and checks lines until the probe has exited and its output is read (however late `until` is),
    /// until `until` while it runs, or until `run` gets a new interrupt.
    fn pump(
        &mut self,
        group: &mut ProcessGroup,
        until: Instant,
        interrupts: &Interrupts,
        seen_interrupts: &mut usize,
    ) -> Result<Pumped> {
        loop {
            let now = Instant::now();
            if self.leader_exited_at.is_none() && group.leader_has_exited()? {
                self.leader_exited_at = Some(now);
            }
            let stop_reading_at = match self.leader_exited_at {
                Some(exited_at) if self.end_of_output || now >= exited_at + DRAIN => {
                    return Ok(Pumped::LeaderExited)
                }
                Some(exited_at) => exited_at + DRAIN,
                None => {
                    if interrupts.count() > *seen_interrupts {
                        *seen_interrupts = interrupts.count();
                        return Ok(Pumped::Interrupted);
                    }
                    if now >= until {
                        return Ok(Pumped::TimeUp);
                    }
                    until
                }
            };
            let next_look = now + POLL.min(stop_reading_at - now);
            self.show_lines_until(next_look);
        }
    }

    /// Shows lines as they come until `until` (a short while), flushing whenever the probe is quiet.
    fn show_lines_until(&mut self, until: Instant) {
        if self.end_of_output {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
            return;
        }
        loop {
            match self.lines.try_recv() {
                Ok(line) => {
                    self.show(line);
                    if Instant::now() >= until {
                        return;
                    }
                    continue;
                }
                Err(TryRecvError::Disconnected) => {
                    self.end_of_output = true;
                    self.flush();
                    return;
                }
                Err(TryRecvError::Empty) => {}
            }
            self.flush();
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.show(line),
                Err(RecvTimeoutError::Timeout) => return,
                Err(RecvTimeoutError::Disconnected) => {
                    self.end_of_output = true;
                    return;
                }
            }
        }
    }

    fn show(&mut self, line: Line) {
        self.counts.lines += 1;
        if !line.terminated {
            self.counts.unterminated_last_line = true;
        }
        let shown = escape_control(&line.bytes);
        let cut_mark = if line.cut { " …" } else { "" };
        if self.output_error.is_none() {
            if let Err(error) = writeln!(self.out, "{shown}{cut_mark}") {
                self.output_error = Some(error);
            }
        }
        if self.tables.is_empty() {
            return;
        }
        if line.cut {
            self.counts.too_long += 1;
            let start = escape_control(&line.bytes[..80]).into_owned();
            self.explain(&format!(
                "line longer than {} KiB, not checked: {start}…",
                MAX_LINE_BYTES / 1024
            ));
            return;
        }
        if !line.bytes.starts_with(b"|") {
            self.counts.ignored += 1;
            return;
        }
        let text = String::from_utf8_lossy(&line.bytes);
        match meta::check_line(self.tables, &text) {
            Ok(table) => {
                self.counts.valid += 1;
                if let Some(index) = self.tables.iter().position(|t| std::ptr::eq(t, table)) {
                    self.counts.per_table[index] += 1;
                }
            }
            Err(reason) => {
                self.counts.invalid += 1;
                let reason = escape_control(reason.as_bytes()).into_owned();
                self.explain(&format!("invalid line ({reason}): {shown}"));
            }
        }
    }

    /// A message about a bad line, on stderr after the lines shown before it; only the first few are
    /// printed, so a probe that prints nothing but bad lines does not flood the terminal twice.
    fn explain(&mut self, message: &str) {
        self.explained += 1;
        if self.explained > EXPLAINED_INVALID_LINES + 1 {
            return;
        }
        self.flush();
        if self.explained <= EXPLAINED_INVALID_LINES {
            eprintln!("{message}");
        } else {
            eprintln!("note: more bad lines; only the first {EXPLAINED_INVALID_LINES} are explained, all are counted");
        }
    }

    fn flush(&mut self) {
        if self.output_error.is_none() {
            if let Err(error) = self.out.flush() {
                self.output_error = Some(error);
            }
        }
    }

    fn print_summary(&mut self, probe_name: &str, ran: Duration) {
        self.flush();
        let counts = &self.counts;
        if counts.unterminated_last_line {
            eprintln!(
                "note: the probe's last line did not end with a newline (it is shown and counted)"
            );
        }
        if self.tables.is_empty() {
            eprintln!(
                "     {probe_name} ran {:.1}s: {} line{}, not checked (no .meta tables)",
                ran.as_secs_f64(),
                counts.lines,
                plural(counts.lines)
            );
            return;
        }
        let too_long = if counts.too_long > 0 {
            format!(", {} too long to check", counts.too_long)
        } else {
            String::new()
        };
        eprintln!(
            "     {probe_name} ran {:.1}s: {} valid line{}, {} invalid, {} not records{too_long}",
            ran.as_secs_f64(),
            counts.valid,
            plural(counts.valid),
            counts.invalid,
            counts.ignored,
        );
        let mut per_table: BTreeMap<&str, usize> = BTreeMap::new();
        for (table, count) in self.tables.iter().zip(&counts.per_table) {
            if *count > 0 {
                *per_table.entry(table.name.as_str()).or_default() += count;
            }
        }
        for (table, count) in &per_table {
            eprintln!("       {table}: {count}");
        }
    }
}

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);
static FIRST_INTERRUPT_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn count_interrupt(signal: libc::c_int) {
    // Only atomics here: a signal handler may run between any two instructions of the main code.
    let _ = FIRST_INTERRUPT_SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    INTERRUPTS.fetch_add(1, Ordering::SeqCst);
}

/// While alive, SIGINT, SIGTERM and SIGHUP to `run` are counted instead of killing it, so it can stop the
/// probe's process group (which a terminal's Ctrl-C does not reach: it is not the foreground group) and
/// report. Each further signal skips the rest of the current grace period. The old handlers come back on drop.
struct Interrupts {
    previous: Vec<(libc::c_int, libc::sigaction)>,
    baseline: usize,
}

impl Interrupts {
    fn catch() -> Result<Interrupts> {
        let mut interrupts = Interrupts {
            previous: Vec::new(),
            baseline: INTERRUPTS.load(Ordering::SeqCst),
        };
        FIRST_INTERRUPT_SIGNAL.store(0, Ordering::SeqCst);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: sigaction with a zeroed struct, an empty mask and a handler that only touches atomics.
            unsafe {
                let mut previous: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, std::ptr::null(), &mut previous) != 0 {
                    return Err(std::io::Error::last_os_error())
                        .context("could not read a signal handler");
                }
                // A signal ignored when we started (a background job's SIGINT) stays ignored.
                if previous.sa_sigaction == libc::SIG_IGN {
                    continue;
                }
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = count_interrupt as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error())
                        .context("could not install a signal handler");
                }
                interrupts.previous.push((signal, previous));
            }
        }
        Ok(interrupts)
    }

    fn count(&self) -> usize {
        INTERRUPTS.load(Ordering::SeqCst) - self.baseline
    }

    fn first_signal(&self) -> Option<&'static str> {
        if self.count() == 0 {
            return None;
        }
        Some(match FIRST_INTERRUPT_SIGNAL.load(Ordering::SeqCst) {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            libc::SIGHUP => "SIGHUP",
            _ => "a signal",
        })
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        for (signal, previous) in &self.previous {
            // SAFETY: restores a sigaction read by `catch`.
            unsafe {
                libc::sigaction(*signal, previous, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_out_of_range_is_an_error_before_anything_starts() {
        for seconds in [0, MAX_SECONDS + 1, u64::MAX] {
            let options = RunOptions {
                seconds,
                args: Vec::new(),
            };
            let error = run_probe("p", Path::new("/nonexistent/p"), &[], &options).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("--seconds {seconds} is out of range: give 1 to 86400 (one day)")
            );
        }
    }

    #[test]
    fn escape_control_leaves_text_and_escapes_what_a_terminal_would_act_on() {
        assert_eq!(escape_control(b"|t|1|2|\tx"), "|t|1|2|\tx");
        assert!(matches!(escape_control(b"|t|1|"), Cow::Borrowed(_)));
        assert_eq!(escape_control("é|ü".as_bytes()), "é|ü");
        assert_eq!(
            escape_control(b"\x1b]0;title\x07\x1b[2J\r\x7f"),
            "\\x1b]0;title\\x07\\x1b[2J\\x0d\\x7f"
        );
        assert_eq!(escape_control("a\u{9b}31m".as_bytes()), "a\\u{9b}31m");
        assert_eq!(escape_control(b"a\xffb\xc3"), "a\\xffb\\xc3");
    }

    #[test]
    fn read_lines_bounds_each_line_and_keeps_a_last_line_without_newline() {
        let mut input = b"|t|1|\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES * 3));
        input.extend(b"\nlast");
        let mut lines = Vec::new();
        read_lines(&input[..], |line| {
            lines.push(line);
            true
        });
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].bytes, b"|t|1|");
        assert!(!lines[0].cut && lines[0].terminated);
        assert_eq!(lines[1].bytes.len(), MAX_LINE_BYTES);
        assert!(lines[1].cut && lines[1].terminated);
        assert_eq!(lines[2].bytes, b"last");
        assert!(!lines[2].cut && !lines[2].terminated);
    }
}
