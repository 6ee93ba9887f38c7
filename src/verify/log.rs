//! Reading a verifier log: the line that says why a program was rejected, the `.bpf.c` line it points at (the
//! kernel prints `; <source> @ <file>:<line>` from the object's BTF line info) and the tail worth showing.

/// What a rejected program's log says, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The verifier's own message (`R0 invalid mem access 'map_value_or_null'`), when the log has one.
    pub message: Option<String>,
    /// The source line the last instruction before the error came from: file as logged, line, and its text.
    pub source: Option<SourceLine>,
    /// The last lines of the log, up to and including the message.
    pub tail: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    pub file: String,
    pub line: u32,
    pub text: String,
}

/// How many log lines a rejection shows.
pub const TAIL_LINES: usize = 10;

/// Lines the verifier prints after its verdict, which say nothing about why.
fn is_summary(line: &str) -> bool {
    line.starts_with("processed ")
        || line.starts_with("verification time")
        || line.starts_with("stack depth")
        || line.starts_with("-- END PROG LOAD LOG --")
}

/// A traced instruction (`7: (79) r1 = …`) or the register state after one (`7: R0=…`).
fn is_instruction(line: &str) -> bool {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && line[digits..].starts_with(':')
}

/// `; <text> @ <file>:<line>` → the source line (kernels since 6.4 print the file and line; older ones only text).
pub fn parse_line_info(line: &str) -> Option<SourceLine> {
    let rest = line.strip_prefix(';')?;
    let (text, location) = rest.rsplit_once(" @ ")?;
    let (file, number) = location.trim().rsplit_once(':')?;
    let line = number.parse().ok()?;
    if line == 0 {
        return None;
    }
    Some(SourceLine {
        file: file.to_string(),
        line,
        text: text.trim().to_string(),
    })
}

pub fn read_rejection(log: &str) -> Rejection {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let message_index = lines
        .iter()
        .rposition(|l| !is_summary(l) && !is_instruction(l) && !l.starts_with(';'));
    let end = message_index.map_or(lines.len(), |i| i + 1);
    let source = lines[..end].iter().rev().find_map(|l| parse_line_info(l));
    let tail = lines[end.saturating_sub(TAIL_LINES)..end]
        .iter()
        .map(|l| l.to_string())
        .collect();
    Rejection {
        message: message_index.map(|i| lines[i].to_string()),
        source,
        tail,
    }
}

/// A load the kernel refused before verifying (no log): what an EPERM on a trampoline program means.
pub fn refused_load_hint(section: &str, errno: &str) -> Option<String> {
    let trampoline = ["fentry", "fexit", "fmod_ret", "lsm", "freplace", "iter"]
        .iter()
        .any(|kind| section.starts_with(kind));
    (trampoline && errno.starts_with("EPERM")).then(|| {
        format!(
            "this kernel refuses `{}` programs even to root (no BPF trampoline, or lockdown); when that is \
             expected here, name the program in `verify_skip` in probe.toml with the reason",
            section.split('/').next().unwrap_or(section)
        )
    })
}

/// Undoes the helper's escaping of a log (`\n`, `\t`, `\\`).
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "arg#0 reference type('UNKNOWN ') size cannot be determined: -22\n0: R1=ctx() R10=fp0\n\
; int unchecked_lookup(void *ctx) @ bad.bpf.c:24\n0: (b7) r1 = 0                        ; R1=0\n\
; u64 *value = bpf_map_lookup_elem(&counts, &key); @ bad.bpf.c:27\n\
6: (85) call bpf_map_lookup_elem#1    ; R0=map_value_or_null(id=1,map=counts,ks=4,vs=8)\n\
; *value += 1; @ bad.bpf.c:28\n7: (79) r1 = *(u64 *)(r0 +0)\nR0 invalid mem access 'map_value_or_null'\n\
processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";

    #[test]
    fn the_message_and_its_source_line_are_found() {
        let rejection = read_rejection(LOG);
        assert_eq!(
            rejection.message.as_deref(),
            Some("R0 invalid mem access 'map_value_or_null'")
        );
        assert_eq!(
            rejection.source,
            Some(SourceLine {
                file: "bad.bpf.c".into(),
                line: 28,
                text: "*value += 1;".into()
            })
        );
        assert_eq!(
            rejection.tail.last().map(String::as_str),
            Some("R0 invalid mem access 'map_value_or_null'")
        );
        assert!(rejection.tail.len() <= TAIL_LINES);
    }

    #[test]
    fn line_zero_and_old_kernels_give_no_location() {
        assert_eq!(parse_line_info(";  @ bad.bpf.c:0"), None);
        assert_eq!(parse_line_info("; *value += 1;"), None);
    }

    #[test]
    fn the_message_is_the_last_line_before_the_summary() {
        let rejection = read_rejection("5: (71) r1 = *(u8 *)(r2 +0)\nR2 unbounded memory access, make sure to bounds check any such access\nprocessed 6 insns\n");
        assert_eq!(
            rejection.message.as_deref(),
            Some("R2 unbounded memory access, make sure to bounds check any such access")
        );
    }

    #[test]
    fn an_eperm_on_fentry_points_at_verify_skip() {
        let hint = refused_load_hint("fentry/do_sys_openat2", "EPERM (Operation not permitted)");
        assert!(hint.unwrap().contains("verify_skip"));
        assert_eq!(
            refused_load_hint("kprobe/x", "EPERM (Operation not permitted)"),
            None
        );
    }

    #[test]
    fn escapes_round_trip() {
        assert_eq!(unescape("a\\nb\\tc\\\\d"), "a\nb\tc\\d");
    }
}
