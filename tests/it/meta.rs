//! `.meta` validation through the CLI: each broken file gives its own precise error, `-b` refuses to build
//! with broken meta, and `run` counts good and bad lines.

use crate::support::{repo_root, Workspace};

fn with_meta(probe: &str, fixture: &str) -> Workspace {
    let text =
        std::fs::read_to_string(repo_root().join("tests/fixtures/meta").join(fixture)).unwrap();
    Workspace::new()
        .file(&format!("probes/{probe}/{probe}.bpf.c"), "")
        .file(&format!("probes/{probe}/{probe}.c"), "")
        .file(&format!("probes/{probe}/{fixture}"), &text)
}

#[test]
fn each_broken_meta_gives_its_own_error_with_file_and_line() {
    let cases = [
        (
            "missing_key.meta",
            "missing_key.meta:6: error: table `cpu_usage` has no field of type `key`",
        ),
        (
            "too_many_fields.meta",
            "has 65 fields; gala-gopher allows at most 64",
        ),
        ("bad_syntax.meta", "bad_syntax.meta:11:"),
        (
            "long_table_name.meta",
            "gala-gopher's IMDB keeps at most 31",
        ),
        ("missing_required.meta", "has no `entity_name`"),
    ];
    for (fixture, expected) in cases {
        let ws = with_meta("p", fixture);
        ws.cmd(&["check-meta"])
            .failure()
            .stderr_contains(expected)
            .stderr_contains("probes/p/");
        // A build validates meta first and stops before compiling anything.
        ws.cmd(&["-b"]).failure().stderr_contains(expected);
        assert!(!ws.path(".output/p").exists());
    }
}

#[test]
fn a_table_name_used_by_two_probes_is_an_error_naming_both() {
    let b = std::fs::read_to_string(repo_root().join("tests/fixtures/meta/dup_b.meta")).unwrap();
    let ws = with_meta("a", "dup_a.meta")
        .file("probes/b/b.bpf.c", "")
        .file("probes/b/b.c", "")
        .file("probes/b/dup_b.meta", &b);
    ws.cmd(&["check-meta"])
        .failure()
        .stderr_contains("is already used at probes/a/dup_a.meta:6");
}

#[test]
fn unknown_types_warn_but_pass_and_the_good_file_is_clean() {
    let ws = with_meta("p", "unknown_type.meta");
    ws.cmd(&["check-meta"])
        .success()
        .stderr_contains("warning: field `comm`");
    let ws = with_meta("p", "good.meta");
    let done = ws.cmd(&["check-meta"]).success();
    assert!(!done.stderr().contains("warning"), "{}", done.stderr());
}

#[test]
fn the_shipped_probes_meta_is_clean() {
    let ws = Workspace::new()
        .shipped_probe("killprobe")
        .shipped_probe("dnsprobe");
    let done = ws.cmd(&["check-meta"]).success();
    assert!(!done.stderr().contains("warning"), "{}", done.stderr());
}

#[test]
fn run_counts_valid_and_invalid_lines_against_the_meta() {
    if !crate::support::require_build_tools()
        || !crate::support::require(
            "kernel BTF",
            std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
        )
    {
        return;
    }
    let meta = "version = \"1.0.0\"\nmeasurements:\n(\n  {\n    table_name: \"t\",\n    entity_name: \"e\",\n    fields:\n    (\n      { description: \"k\", type: \"key\", name: \"k\" },\n      { description: \"v\", type: \"gauge\", name: \"v\" }\n    )\n  }\n)\n";
    // A userland that prints a fixed mix of lines and exits, so no BPF needs loading.
    let user = "#include <stdio.h>\nint main(void) {\n  puts(\"|t|1|2|\");\n  puts(\"|t|3|4|\");\n  puts(\"|t||4|\");\n  puts(\"|t|1|\");\n  puts(\"|nope|1|2|\");\n  puts(\"not a record\");\n  return 0;\n}\n";
    let bpf = "#include \"vmlinux.h\"\n#include <bpf/bpf_helpers.h>\nchar LICENSE[] SEC(\"license\") = \"GPL\";\n";
    let ws = Workspace::new()
        .file("probes/t/t.bpf.c", bpf)
        .file("probes/t/t.c", user)
        .file("probes/t/t.meta", meta)
        .gen();
    let done = ws.cmd(&["run", "t", "--seconds", "2"]).failure();
    done.stderr_contains("2 valid lines, 3 invalid, 1 not records")
        .stderr_contains("Key can't be null")
        .stderr_contains("table t has 2 fields, line has 1 values")
        .stderr_contains("unknown table `nope`")
        .stderr_contains("3 lines from `t` would be dropped by gala-gopher");
    done.stdout_contains("|t|1|2|");
}
