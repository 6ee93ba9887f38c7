//! `run <probe>`: starts a built probe, shows its lines, and checks each `|table|…|` line against the probe's
//! `.meta` the way a gala-gopher daemon would read it (known table, exact field count, non-empty key).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::meta::{self, Table};
use crate::tool::{self, Cmd, ToolKind};

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
    let cmd = Cmd::program(binary).args(&options.args);
    let mut child = cmd.spawn_reading_stdout()?;
    let stdout = child
        .stdout
        .take()
        .context("the probe's stdout was not captured")?;
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    eprintln!(
        "     Running `{cmd}` for {}s, checking its lines against its .meta",
        options.seconds
    );

    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.seconds);
    let (mut valid, mut invalid, mut ignored) = (0usize, 0usize, 0usize);
    let mut per_table: BTreeMap<String, usize> = BTreeMap::new();
    let mut early_exit = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match lines.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => {
                println!("{line}");
                if !line.starts_with('|') {
                    // gala-gopher ignores lines that are not records (it only logs them).
                    ignored += 1;
                    continue;
                }
                match meta::check_line(tables, &line) {
                    Ok(table) => {
                        valid += 1;
                        *per_table.entry(table.name.clone()).or_default() += 1;
                    }
                    Err(reason) => {
                        invalid += 1;
                        eprintln!("invalid line ({reason}): {line}");
                    }
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Some(status) = child.try_wait()? {
                    early_exit = Some(status);
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                early_exit = Some(child.wait()?);
                break;
            }
        }
    }
    let status = match early_exit {
        Some(status) => status,
        None => stop(&mut child)?,
    };
    eprintln!(
        "     {probe_name} ran {:.1}s: {valid} valid line{}, {invalid} invalid, {ignored} not records",
        started.elapsed().as_secs_f64(),
        if valid == 1 { "" } else { "s" }
    );
    for (table, count) in &per_table {
        eprintln!("       {table}: {count}");
    }
    if early_exit.is_some() && !status.success() {
        bail!(
            "probe `{probe_name}` exited early ({status}); its messages are above (BPF needs root)"
        );
    }
    if invalid > 0 {
        bail!(
            "{invalid} line{} from `{probe_name}` would be dropped by gala-gopher (see above)",
            if invalid == 1 { "" } else { "s" }
        );
    }
    if valid == 0 {
        eprintln!("warning: no records in {}s; trigger the probe's event while it runs, or pass --seconds", options.seconds);
    }
    Ok(())
}

/// SIGTERM (probes unload and exit on it), then SIGKILL if it has not exited within 5 s.
fn stop(child: &mut std::process::Child) -> Result<std::process::ExitStatus> {
    let kill = tool::find(ToolKind::Kill)?;
    let _ = Cmd::new(&kill)
        .args(["-TERM", &child.id().to_string()])
        .output();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("warning: the probe did not exit within 5s of SIGTERM; killing it");
    child.kill()?;
    Ok(child.wait()?)
}
