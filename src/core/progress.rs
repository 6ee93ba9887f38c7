//! What a build shows while it runs: on a terminal, an overall bar plus one line per worker naming its current
//! step; elsewhere (CI, pipes), one plain line per step that did work. Messages go above the bars. With
//! `--message-format json`, machine-readable records (steps, diagnostics, the result) also go to stdout, one
//! JSON object per line.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where build messages are printed; cloned into everything that prints while bars may be drawn.
#[derive(Clone)]
pub struct Console {
    bars: Option<MultiProgress>,
    /// `--message-format json`: records go to stdout as JSON lines.
    json: bool,
}

thread_local! {
    /// The commands the current step ran on this worker thread (a step runs on one thread from start to end).
    static STEP_COMMANDS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Console {
    /// Bars when stderr is a terminal (and `TERM` is not `dumb`), plain lines otherwise.
    pub fn detect() -> Console {
        let terminal = std::io::stderr().is_terminal()
            && std::env::var("TERM").map_or(true, |term| term != "dumb");
        if terminal {
            Console {
                bars: Some(MultiProgress::with_draw_target(
                    ProgressDrawTarget::stderr_with_hz(10),
                )),
                json: false,
            }
        } else {
            Console::plain()
        }
    }

    pub fn plain() -> Console {
        Console {
            bars: None,
            json: false,
        }
    }

    /// With `json`, `record` and `diagnostics` write JSON lines to stdout; human output is unchanged.
    pub fn with_json(mut self, json: bool) -> Console {
        self.json = json;
        self
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// Writes `record` as one line of stdout when JSON messages are on. One `write_all` of a whole line under
    /// stdout's lock, so lines from parallel steps never interleave.
    pub fn record(&self, record: &serde_json::Value) {
        if !self.json {
            return;
        }
        let mut line = json_line(record);
        line.push('\n');
        // A closed stdout (`| head`) must not abort the build.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }

    /// A compiler's stderr: each `file:line:col: severity: message` in it as a `diagnostic` record.
    pub fn diagnostics(&self, stderr: &str) {
        if !self.json {
            return;
        }
        for diagnostic in crate::core::diagnostic::parse_diagnostics(stderr) {
            let mut record = serde_json::to_value(&diagnostic).unwrap_or_default();
            record["reason"] = "diagnostic".into();
            self.record(&record);
        }
    }

    /// Notes a command the current step ran (for its `step` record).
    pub fn ran_command(&self, command: &str) {
        if self.json {
            STEP_COMMANDS.with(|c| c.borrow_mut().push(command.to_string()));
        }
    }

    /// The commands this thread's step ran since the last call, and forgets them.
    pub fn take_step_commands(&self) -> Vec<String> {
        STEP_COMMANDS.with(|c| std::mem::take(&mut *c.borrow_mut()))
    }

    /// Prints `text` (one or more lines) to stderr, above the bars when they are drawn.
    pub fn println(&self, text: &str) {
        let text = text.strip_suffix('\n').unwrap_or(text);
        match &self.bars {
            Some(bars) if !bars.is_hidden() => {
                let _ = bars.println(text);
            }
            // A closed stderr (`ebpf-probe -b | head`) must not abort the build.
            _ => {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
        }
    }
}

/// `record` as compact JSON with `reason` first, as cargo writes it (the other keys keep serde_json's order), so
/// `grep '^{"reason":"step"'` works.
fn json_line(record: &serde_json::Value) -> String {
    let Some(fields) = record.as_object() else {
        return record.to_string();
    };
    let reason = fields.get("reason").map(|r| format!("\"reason\":{r}"));
    let others = fields
        .iter()
        .filter(|(key, _)| *key != "reason")
        .map(|(key, value)| format!("{}:{value}", serde_json::Value::from(key.as_str())));
    let parts: Vec<String> = reason.into_iter().chain(others).collect();
    format!("{{{}}}", parts.join(","))
}

pub struct Progress {
    output: Console,
    overall: Option<ProgressBar>,
    workers: Vec<ProgressBar>,
    /// Per worker: the step it runs, since when, and when it was last reported as slow.
    running: std::sync::Mutex<Vec<Option<Running>>>,
}

struct Running {
    label: String,
    since: std::time::Instant,
    reported: Option<std::time::Instant>,
}

impl Progress {
    pub fn new(output: &Console, steps: usize, jobs: usize) -> Progress {
        let Some(bars) = &output.bars else {
            return Progress {
                output: output.clone(),
                overall: None,
                workers: Vec::new(),
                running: std::sync::Mutex::new((0..jobs).map(|_| None).collect()),
            };
        };
        let overall = bars.add(ProgressBar::new(steps as u64));
        overall.set_style(
            ProgressStyle::with_template("    Building [{bar:30}] {pos}/{len} steps {elapsed}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        let worker_style =
            ProgressStyle::with_template("  {spinner} {wide_msg}").expect("the template is valid");
        let workers = (0..jobs)
            .map(|_| {
                let bar = bars.add(ProgressBar::new_spinner());
                bar.set_style(worker_style.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            })
            .collect();
        Progress {
            output: output.clone(),
            overall: Some(overall),
            workers,
            running: std::sync::Mutex::new((0..jobs).map(|_| None).collect()),
        }
    }

    /// Names every step that has run longer than `slow` (a hung compiler, a tool waiting on a lock), once per
    /// `slow`, so a stuck build says what it is stuck on; called periodically while the graph runs.
    pub fn report_slow_steps(&self, slow: Duration) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        let now = std::time::Instant::now();
        for step in running.iter_mut().flatten() {
            let due = step.reported.map_or(step.since, |at| at) + slow;
            if now >= due {
                step.reported = Some(now);
                self.output.println(&format!(
                    "     Waiting on {} (running for {} s)",
                    step.label,
                    now.duration_since(step.since).as_secs()
                ));
            }
        }
    }

    pub fn started(&self, worker: usize, label: &str) {
        if let Some(bar) = self.workers.get(worker) {
            bar.set_message(label.to_string());
        }
        if let Some(slot) = self
            .running
            .lock()
            .ok()
            .as_mut()
            .and_then(|r| r.get_mut(worker))
        {
            *slot = Some(Running {
                label: label.to_string(),
                since: std::time::Instant::now(),
                reported: None,
            });
        }
    }

    /// A step is over. Plain output gets one line for a step that did work; fresh steps are not worth a line.
    pub fn finished(&self, verb: &str, label: &str, ran: bool, elapsed: Duration) {
        match &self.overall {
            Some(overall) => overall.inc(1),
            None if ran => {
                let _ = writeln!(
                    std::io::stderr(),
                    "{verb:>12} {label} ({:.2}s)",
                    elapsed.as_secs_f64()
                );
            }
            None => {}
        }
    }

    pub fn idle(&self, worker: usize) {
        if let Some(bar) = self.workers.get(worker) {
            bar.set_message("");
        }
        if let Some(slot) = self
            .running
            .lock()
            .ok()
            .as_mut()
            .and_then(|r| r.get_mut(worker))
        {
            *slot = None;
        }
    }

    pub fn println(&self, text: &str) {
        self.output.println(text);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        for bar in self.workers.iter().chain(&self.overall) {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::json_line;

    #[test]
    fn a_record_is_one_line_of_json_with_its_reason_first() {
        let record = serde_json::json!({"a": "x\ny", "reason": "step", "z": null, "b": [1, 2]});
        let line = json_line(&record);
        assert!(line.starts_with(r#"{"reason":"step","#), "{line}");
        assert!(!line.contains('\n'), "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, record);
    }
}
