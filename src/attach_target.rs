//! Whether an attach target exists on this machine, for `new --attach` to warn before it writes a probe that
//! could never attach here: tracepoints and raw tracepoints against tracefs, kprobes against the kernel's kprobe
//! support and its symbols, uprobes' binaries against the filesystem. Each check says what it found instead and
//! the nearest real names; what cannot be checked (tracefs not mounted, not root) is not a problem.

use std::path::{Path, PathBuf};

const EVENTS_DIRS: [&str; 2] = [
    "/sys/kernel/tracing/events",
    "/sys/kernel/debug/tracing/events",
];

fn events_dir() -> Option<PathBuf> {
    EVENTS_DIRS.iter().map(PathBuf::from).find(|d| d.is_dir())
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `tracepoint:CATEGORY/NAME`.
pub fn tracepoint_problem(category: &str, name: &str) -> Option<String> {
    let events = events_dir()?;
    let categories = names_in(&events);
    if !categories.iter().any(|c| c == category) {
        return Some(format!(
            "this kernel has no tracepoint category `{category}`{}",
            nearest_text(category, &categories)
        ));
    }
    let names = names_in(&events.join(category));
    if !names.iter().any(|n| n == name) {
        return Some(format!(
            "this kernel has no tracepoint `{category}/{name}`{}",
            nearest_text(name, &names)
        ));
    }
    None
}

/// `raw_tracepoint:NAME`: the name of a tracepoint event of any category.
pub fn raw_tracepoint_problem(name: &str) -> Option<String> {
    let events = events_dir()?;
    let all: Vec<String> = names_in(&events)
        .iter()
        .flat_map(|c| names_in(&events.join(c)))
        .collect();
    if all.iter().any(|n| n == name) {
        return None;
    }
    Some(format!(
        "this kernel has no tracepoint named `{name}` for a raw tracepoint{}",
        nearest_text(name, &all)
    ))
}

/// `kprobe:FUNC`: the kernel must support kprobes and have the function (`/proc/kallsyms`, as root).
pub fn kprobe_problem(function: &str) -> Option<String> {
    if !Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        let alternative = function
            .strip_prefix("__x64_sys_")
            .or_else(|| function.strip_prefix("__arm64_sys_"))
            .or_else(|| function.strip_prefix("__se_sys_"))
            .map(|call| format!("; the tracepoint `syscalls/sys_enter_{call}` sees the same calls"))
            .unwrap_or_default();
        return Some(format!(
            "this kernel has no kprobes (CONFIG_KPROBES off): the probe builds but cannot attach here{alternative}"
        ));
    }
    let symbols = std::fs::read_to_string("/proc/kallsyms").ok()?;
    let names: Vec<&str> = symbols
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    // Without root every address reads 0 but the names are there; an empty file tells nothing.
    if names.is_empty() || names.contains(&function) {
        return None;
    }
    let variants: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            n.strip_prefix(function).is_some_and(|rest| {
                rest.starts_with(".isra")
                    || rest.starts_with(".constprop")
                    || rest.starts_with(".part")
                    || rest.starts_with(".cold")
            })
        })
        .collect();
    if !variants.is_empty() {
        return Some(format!(
            "the kernel has `{function}` only as {} (inlined or specialised by the compiler): attach to that name",
            variants.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    let candidates: Vec<String> = names
        .iter()
        .filter(|n| n.get(..3) == function.get(..3))
        .map(|n| n.to_string())
        .collect();
    Some(format!(
        "the kernel has no function `{function}`{}",
        nearest_text(function, &candidates)
    ))
}

/// `uprobe:BINARY:SYMBOL`: the binary must exist (a bare name is looked up on PATH).
pub fn uprobe_binary_problem(binary: &str) -> Option<String> {
    let found = if binary.contains('/') {
        Path::new(binary).is_file()
    } else {
        crate::tool::find_program(binary).is_some()
    };
    (!found).then(|| format!("there is no binary `{binary}` here (a path, or a name on PATH)"))
}

fn nearest_text(wanted: &str, names: &[String]) -> String {
    let nearest = nearest(wanted, names, 3);
    if nearest.is_empty() {
        String::new()
    } else {
        format!(
            "; nearest: {}",
            nearest
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// The `count` names closest to `wanted` by edit distance (ties by name).
fn nearest(wanted: &str, names: &[String], count: usize) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|n| (edit_distance(wanted, n), n))
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(count)
        .map(|(_, n)| n.clone())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names_come_by_edit_distance() {
        let names: Vec<String> = ["sched_process_exec", "sched_process_exit", "sched_switch"]
            .map(String::from)
            .into();
        assert_eq!(
            nearest("sched_process_exc", &names, 2),
            ["sched_process_exec", "sched_process_exit"]
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
    }

    #[test]
    fn a_missing_uprobe_binary_is_named() {
        assert!(uprobe_binary_problem("/nonexistent/bin").is_some());
        assert!(uprobe_binary_problem("sh").is_none());
    }
}
