//! `new` and `init`: every attach kind this kernel runs goes new → -b → run with at least one valid line;
//! name and path abuse is refused with nothing written.

use crate::support::{
    ebpf_probe, program, require_build_tools, require_kernel, run_while_triggering, Workspace,
};

fn valid_lines(stderr: &str) -> usize {
    stderr
        .lines()
        .find_map(|l| {
            l.split(" valid line")
                .next()
                .and_then(|head| head.rsplit(' ').next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn new_build_run(name: &str, attach: Option<&str>, trigger: &[&str]) {
    let ws = Workspace::new().gen();
    let mut args = vec!["new", name];
    if let Some(attach) = attach {
        args.extend(["--attach", attach]);
    }
    ws.cmd(&args).success().stderr_contains("Created probe");
    for file in [".bpf.c", ".c", ".h", ".meta"] {
        assert!(
            ws.path(&format!("probes/{name}/{name}{file}")).is_file(),
            "{name}{file}"
        );
    }
    ws.cmd(&["-b", name]).success();
    let run = run_while_triggering(&ws, name, &[], trigger);
    run.assert_success();
    assert!(
        valid_lines(&run.stderr()) >= 1,
        "no valid |{name}| line\n{}",
        run.report()
    );
    assert!(
        run.stdout()
            .lines()
            .any(|l| l.starts_with(&format!("|{name}|"))),
        "{}",
        run.report()
    );
}

#[test]
fn new_default_tracepoint_probe_prints_lines_out_of_the_box() {
    if require_kernel() {
        new_build_run("execwatch", None, &["true"]);
    }
}

#[test]
fn new_raw_tracepoint_probe_prints_lines() {
    if require_kernel() {
        new_build_run(
            "rawwatch",
            Some("raw_tracepoint:sched_process_exec"),
            &["true"],
        );
    }
}

#[test]
fn new_uprobe_probe_prints_lines() {
    if require_kernel() {
        new_build_run(
            "pidwatch",
            Some("uprobe:libc.so.6:getpid"),
            &["python3", "-c", "import os; os.getpid()"],
        );
    }
}

#[test]
fn new_uretprobe_probe_prints_lines() {
    if require_kernel() {
        new_build_run(
            "lookupwatch",
            Some("uretprobe:libc.so.6:getaddrinfo"),
            &["getent", "ahosts", "localhost"],
        );
    }
}

#[test]
fn new_kprobe_probe_builds_and_passes_the_verifier() {
    if !require_kernel() {
        return;
    }
    let ws = Workspace::new().gen();
    ws.cmd(&[
        "new",
        "sleepwatch",
        "--attach",
        "kprobe:do_nanosleep",
        "--binary",
        "trace_sleep",
        // This CI kernel has no kprobes: `new` says so, and writes it only when forced.
        "--force",
    ])
    .success();
    let built = ws.cmd(&["-b"]).success();
    if !std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        built.stderr_contains(
            "program `bpf_do_nanosleep` is a kprobe on `do_nanosleep`, and this kernel has no kprobes",
        );
    }
    assert!(ws.path(".output/bin/trace_sleep").is_file());
    let pin_dir = format!("/sys/fs/bpf/ebpf-probe-new-{}", std::process::id());
    let loaded = program("bpftool")
        .args(["prog", "loadall"])
        .arg(ws.path(".output/sleepwatch/sleepwatch.bpf.o"))
        .arg(&pin_dir)
        .output();
    let _ = std::fs::remove_dir_all(&pin_dir);
    loaded.assert_success();
}

fn listing(ws: &Workspace) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(ws.path("probes"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn bad_names_are_refused_and_nothing_is_written() {
    let ws = Workspace::new().shipped_probe("killprobe");
    let before = listing(&ws);
    let too_long = "a".repeat(32);
    let cases: &[(&str, &str)] = &[
        ("../x", "is a path"),
        ("a/b", "is a path"),
        ("/etc/evil", "is a path"),
        ("", "empty"),
        ("2fast", "not a C identifier"),
        ("has-dash", "not a C identifier"),
        ("int", "reserved"),
        (&too_long, "at most 31"),
        ("killprobe", "already exists"),
    ];
    for (name, why) in cases {
        ws.cmd(&["new", name]).failure().stderr_contains(why);
    }
    ws.cmd(&["new", "ok_name", "--attach", "fentry:x"])
        .failure()
        .stderr_contains("unknown attach kind");
    ws.cmd(&["new", "ok_name", "--attach", "uprobe:/bin/x\"y:f"])
        .failure()
        .stderr_contains("not a usable binary");
    ws.cmd(&["new", "ok_name", "--binary", "../bin"])
        .failure()
        .stderr_contains("--binary");
    assert_eq!(listing(&ws), before, "a refused `new` writes nothing");
}

#[test]
fn new_into_an_unwritable_place_fails_cleanly() {
    // `probes` is a file here, so no probe directory can be created under it.
    let ws = Workspace::new();
    std::fs::remove_dir(ws.path("probes")).unwrap();
    std::fs::write(ws.path("probes"), "not a directory").unwrap();
    ws.cmd(&["new", "p"]).failure().stderr_contains("probes");
    assert_eq!(
        std::fs::read_to_string(ws.path("probes")).unwrap(),
        "not a directory"
    );
}

#[test]
fn init_and_dash_c_on_an_empty_directory_make_a_workspace_that_builds() {
    if !require_build_tools() || !require_kernel() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fresh");
    let root_arg = root.to_str().unwrap();
    ebpf_probe(&["-C", root_arg, "new", "first"])
        .tree_of(dir.path())
        .success();
    for file in [
        "ebpf-probe.toml",
        "include/bpf.h",
        "include/ext_def.h",
        "lib/probe_util.c",
        "probes/first/first.bpf.c",
        ".gitignore",
    ] {
        assert!(root.join(file).is_file(), "{file}");
    }
    ebpf_probe(&["-C", root_arg, "-g", "-b"])
        .tree_of(&root)
        .success();

    let other = dir.path().join("second");
    ebpf_probe(&["init", other.to_str().unwrap()])
        .tree_of(dir.path())
        .success();
    assert!(other.join("include/__libbpf.h").is_file());
    // A non-empty directory is not taken over.
    ebpf_probe(&["init", root.join("probes").to_str().unwrap()])
        .tree_of(dir.path())
        .failure()
        .stderr_contains("not empty");
}
