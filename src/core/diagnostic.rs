//! Compiler diagnostics read from clang's and gcc's stderr (`file:line:col: severity: message`), for
//! `--message-format json`.

use serde::Serialize;

/// One `file:line[:col]: error|warning|note: message` line of a compiler's stderr.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    pub line: u32,
    /// gcc leaves it out with `-fno-show-column`; clang always gives it.
    pub column: Option<u32>,
    /// `error`, `warning` or `note` (`fatal error` is an `error`).
    pub severity: &'static str,
    pub message: String,
}

/// The diagnostics in `stderr`, in order; every other line (source excerpts, carets, `In file included from`,
/// the linker's) is left out.
pub fn parse_diagnostics(stderr: &str) -> Vec<Diagnostic> {
    stderr.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Diagnostic> {
    const SEVERITIES: [(&str, &str); 4] = [
        (": fatal error: ", "error"),
        (": error: ", "error"),
        (": warning: ", "warning"),
        (": note: ", "note"),
    ];
    // The earliest marker: a message may itself quote `: error: `.
    let (at, marker, severity) = SEVERITIES
        .iter()
        .filter_map(|(marker, severity)| line.find(marker).map(|at| (at, *marker, *severity)))
        .min_by_key(|(at, _, _)| *at)?;
    let location = &line[..at];
    let message = line[at + marker.len()..].to_string();
    // `file:line:col` or `file:line`; the file may itself hold colons, so numbers are taken from the right.
    let mut parts = location.rsplitn(3, ':');
    let last: u32 = parts.next()?.parse().ok()?;
    let middle = parts.next()?;
    let (file, line_number, column) = match middle.parse::<u32>() {
        Ok(line_number) => (parts.next()?, line_number, Some(last)),
        Err(_) => {
            let file = match parts.next() {
                Some(head) => &location[..head.len() + 1 + middle.len()],
                None => middle,
            };
            (file, last, None)
        }
    };
    if file.is_empty() {
        return None;
    }
    Some(Diagnostic {
        file: file.to_string(),
        line: line_number,
        column,
        severity,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clang_errors_warnings_and_notes_are_read_with_their_location() {
        let stderr = "\
In file included from probes/p/p.bpf.c:2:
probes/p/p.bpf.c:3:10: error: expected ')'
    3 | int oops( {
      |          ^
probes/p/p.bpf.c:3:9: note: to match this '('
include/x.h:12:5: warning: unused variable 'v' [-Wunused-variable]
1 error generated.
";
        assert_eq!(
            parse_diagnostics(stderr),
            vec![
                Diagnostic {
                    file: "probes/p/p.bpf.c".into(),
                    line: 3,
                    column: Some(10),
                    severity: "error",
                    message: "expected ')'".into(),
                },
                Diagnostic {
                    file: "probes/p/p.bpf.c".into(),
                    line: 3,
                    column: Some(9),
                    severity: "note",
                    message: "to match this '('".into(),
                },
                Diagnostic {
                    file: "include/x.h".into(),
                    line: 12,
                    column: Some(5),
                    severity: "warning",
                    message: "unused variable 'v' [-Wunused-variable]".into(),
                },
            ]
        );
    }

    #[test]
    fn gcc_without_a_column_and_fatal_errors_are_read() {
        let found = parse_diagnostics(
            "p.c:7: error: 'x' undeclared\np.c:1:10: fatal error: nosuch.h: No such file or directory\n",
        );
        assert_eq!(found[0].file, "p.c");
        assert_eq!((found[0].line, found[0].column), (7, None));
        assert_eq!(found[0].message, "'x' undeclared");
        assert_eq!(found[1].severity, "error");
        assert_eq!(found[1].message, "nosuch.h: No such file or directory");
    }

    #[test]
    fn a_file_name_with_colons_and_a_message_quoting_a_marker_keep_their_parts() {
        let found = parse_diagnostics("dir:a/p.c:4:2: warning: text: error: inside\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].file, "dir:a/p.c");
        assert_eq!((found[0].line, found[0].column), (4, Some(2)));
        assert_eq!(found[0].severity, "warning");
        assert_eq!(found[0].message, "text: error: inside");
    }

    #[test]
    fn other_lines_are_not_diagnostics() {
        let stderr = "\
/usr/bin/ld: p.o: in function `main':
p.c:(.text+0x1a): undefined reference to `f'
collect2: error: ld returned 1 exit status
error: something without a place
1 warning generated.
";
        assert_eq!(parse_diagnostics(stderr), Vec::new());
    }
}
