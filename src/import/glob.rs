//! Globs as probe.toml writes them (`*`, `?`, `**` for any depth, no braces): matching a path, and finding
//! the files an absolute pattern names (to count them and to check what a translation covers).

use std::path::{Path, PathBuf};

/// Whether `path` matches `pattern`, segment by segment; `**` matches any number of segments, `*` and `?`
/// never match `/` nor a leading `.` (as the shell's and make's globs).
pub fn matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let path: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    segments_match(&pattern, &path)
}

fn segments_match(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| {
            path[..skip].iter().all(|s| !s.starts_with('.')) && segments_match(rest, &path[skip..])
        }),
        Some((first, rest)) => match path.split_first() {
            Some((segment, path_rest)) => {
                segment_matches(first, segment) && segments_match(rest, path_rest)
            }
            None => false,
        },
    }
}

fn segment_matches(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Classic backtracking over the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((star_pi, star_ni)) = star {
            pi = star_pi + 1;
            ni = star_ni + 1;
            star = Some((star_pi, star_ni + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The regular files an absolute, normalized pattern names, sorted.
pub fn files(pattern: &Path) -> Vec<PathBuf> {
    let text = pattern.to_string_lossy();
    let segments: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
    // Walk from the longest literal prefix.
    let literal = segments
        .iter()
        .take_while(|s| !s.contains(['*', '?']))
        .count();
    let mut base = PathBuf::from("/");
    for s in &segments[..literal] {
        base.push(s);
    }
    if literal == segments.len() {
        return if base.is_file() {
            vec![base]
        } else {
            Vec::new()
        };
    }
    let rest = &segments[literal..];
    let mut found = Vec::new();
    walk(&base, &mut found, 0);
    found.retain(|p| {
        let relative = p.strip_prefix(&base).unwrap_or(p).to_string_lossy();
        segments_match(rest, &relative.split('/').collect::<Vec<_>>())
    });
    found.sort();
    found
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, depth: usize) {
    if depth > 32 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk(&path, found, depth + 1);
        } else if path.is_file() {
            found.push(path);
        }
    }
}

/// How many directory levels below `dir` hold files matching `*.<extension>` (0: `dir` itself), the deepest.
pub fn deepest_file(dir: &Path, extension: &str) -> Option<usize> {
    let suffix = format!(".{extension}");
    let base = dir.to_path_buf();
    let mut found = Vec::new();
    walk(&base, &mut found, 0);
    found
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(&suffix))
        .filter_map(|p| p.strip_prefix(&base).ok())
        .map(|p| p.components().count() - 1)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        assert!(matches("*.c", "x.c"));
        assert!(!matches("*.c", "a/x.c"));
        assert!(!matches("*.c", ".x.c"));
        assert!(matches("protocol/**/*.c", "protocol/x.c"));
        assert!(matches("protocol/**/*.c", "protocol/a/b/x.c"));
        assert!(!matches("protocol/**/*.c", "other/x.c"));
        assert!(matches("stack_bpf/*.bpf.c", "stack_bpf/mem.bpf.c"));
        assert!(matches("t?.c", "t1.c"));
        assert!(!matches("*.bpf.c", "x.c"));
        assert!(matches("*a*b", "xaybzb"));
    }

    #[test]
    fn files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in ["a.c", "b.bpf.c", "p/x.c", "p/q/y.c", "p/q/r/z.c", "p/q/z.h"] {
            let path = root.join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        let names = |pattern: &str| -> Vec<String> {
            files(&root.join(pattern))
                .iter()
                .map(|p| p.strip_prefix(root).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names("*.c"), vec!["a.c", "b.bpf.c"]);
        assert_eq!(names("p/**/*.c"), vec!["p/q/r/z.c", "p/q/y.c", "p/x.c"]);
        assert_eq!(names("a.c"), vec!["a.c"]);
        assert_eq!(deepest_file(&root.join("p"), "c"), Some(2));
        assert_eq!(deepest_file(&root.join("p/q/r"), "h"), None);
    }
}
