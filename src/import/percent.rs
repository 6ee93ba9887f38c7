//! Make's `%` patterns (patsubst, filter, pattern and static pattern rules), applied to plain words and to
//! globs alike: a glob's pattern is matched as text, so `%.bpf.c → %.bpf.o` turns `*.bpf.c` into `*.bpf.o`.

use super::token;

/// The stem `word` gives `pattern` (`%.c` and `a/x.c` → `a/x`), or `None`. A pattern without `%` must equal the word.
pub fn stem<'a>(pattern: &str, word: &'a str) -> Option<&'a str> {
    match pattern.split_once('%') {
        None => (pattern == word).then_some(""),
        Some((prefix, suffix)) => {
            if word.len() >= prefix.len() + suffix.len()
                && word.starts_with(prefix)
                && word.ends_with(suffix)
            {
                Some(&word[prefix.len()..word.len() - suffix.len()])
            } else {
                None
            }
        }
    }
}

/// `pattern` with its first `%` replaced by `stem` (a pattern without `%` stays as it is).
pub fn substitute(pattern: &str, stem: &str) -> String {
    match pattern.split_once('%') {
        None => pattern.to_string(),
        Some((prefix, suffix)) => format!("{prefix}{stem}{suffix}"),
    }
}

/// `$(patsubst pattern,replacement,word)` for one word; a glob stays a glob.
pub fn patsubst_word(pattern: &str, replacement: &str, word: &str) -> String {
    if let Some(glob) = token::as_glob(word) {
        return match stem(pattern, glob) {
            Some(s) => token::glob(&substitute(replacement, s)),
            None => word.to_string(),
        };
    }
    match stem(pattern, word) {
        Some(s) => substitute(replacement, s),
        None => word.to_string(),
    }
}

/// Whether `word` (or a glob's pattern) matches `pattern` as `$(filter)` does.
pub fn matches(pattern: &str, word: &str) -> bool {
    let pattern = token::unglob(pattern);
    let word = token::unglob(word);
    stem(&pattern, &word).is_some()
}

/// For a pattern rule's target pattern: the stem and the directory make puts back in front of each prerequisite
/// (when the pattern has no `/`, make matches only the file name part).
pub fn rule_stem(pattern: &str, target: &str) -> Option<(String, String)> {
    let text = token::unglob(target);
    if pattern.contains('/') {
        return stem(pattern, &text).map(|s| (s.to_string(), String::new()));
    }
    let (dir, name) = match text.rfind('/') {
        Some(at) => (&text[..=at], &text[at + 1..]),
        None => ("", text.as_str()),
    };
    stem(pattern, name).map(|s| (s.to_string(), dir.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_and_substitution() {
        assert_eq!(stem("%.c", "a/x.c"), Some("a/x"));
        assert_eq!(stem("%.bpf.c", "x.c"), None);
        assert_eq!(stem("x.c", "x.c"), Some(""));
        assert_eq!(substitute("%.o", "a/x"), "a/x.o");
        assert_eq!(patsubst_word("%.bpf.c", "%.bpf.o", "k.bpf.c"), "k.bpf.o");
        assert_eq!(
            patsubst_word("%.bpf.c", "%.skel.h", &token::glob("stack_bpf/*.bpf.c")),
            token::glob("stack_bpf/*.skel.h")
        );
        assert_eq!(patsubst_word("%.cpp", "%.o", "x.c"), "x.c");
        assert!(matches("%.c", &token::glob("*.bpf.c")));
        assert!(!matches("%.c", "x.h"));
    }

    #[test]
    fn rule_stems_keep_the_directory_when_the_pattern_has_none() {
        assert_eq!(
            rule_stem("lib%.o", "sub/libx.o"),
            Some(("x".to_string(), "sub/".to_string()))
        );
        assert_eq!(
            rule_stem("%.bpf.o", &token::glob("bpf/*.bpf.o")),
            Some(("*".to_string(), "bpf/".to_string()))
        );
        assert_eq!(
            rule_stem("src/%.o", "src/a.o"),
            Some(("a".into(), "".into()))
        );
        assert_eq!(rule_stem("%.o", "a.c"), None);
    }
}
