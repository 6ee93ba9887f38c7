//! "Did you mean": the real names closest to a wanted one by edit distance, for errors about attach targets,
//! kernel functions, tracepoints, types and fields that do not exist.

/// The `count` names closest to `wanted` (ties by name), among those close enough to be a plausible typo or
/// rename: within half the wanted name's length.
pub fn nearest<'a>(
    wanted: &str,
    names: impl IntoIterator<Item = &'a str>,
    count: usize,
) -> Vec<String> {
    let limit = wanted.chars().count().div_ceil(2).max(2);
    let mut scored: Vec<(usize, &str)> = names
        .into_iter()
        .filter(|n| n.len().abs_diff(wanted.len()) <= limit)
        .map(|n| (edit_distance(wanted, n), n))
        .filter(|(distance, _)| *distance <= limit)
        .collect();
    scored.sort();
    scored.dedup();
    scored
        .into_iter()
        .take(count)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// `"; nearest: `a`, `b`"`, or nothing when no name is close.
pub fn nearest_text<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    let nearest = nearest(wanted, names, 3);
    if nearest.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = nearest.iter().map(|n| format!("`{n}`")).collect();
    format!("; nearest: {}", quoted.join(", "))
}

pub fn edit_distance(a: &str, b: &str) -> usize {
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
        let names = [
            "sched_process_exec",
            "sched_process_exit",
            "sched_switch",
            "x",
        ];
        assert_eq!(
            nearest("sched_process_exc", names, 2),
            ["sched_process_exec", "sched_process_exit"]
        );
        assert!(nearest("tcp_sendmsg", ["completely_different_name"], 3).is_empty());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
    }
}
