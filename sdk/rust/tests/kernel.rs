//! The SDK on the real kernel: a BPF object compiled with clang, uprobes attached by symbol to a function of
//! this test binary, events read back through a ring buffer and a perf buffer. Needs root and clang: without
//! them it skips with the reason, and fails when `CI` is set.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ebpf_probe_sdk::libbpf_rs::{MapCore, Object, ObjectBuilder};
use ebpf_probe_sdk::{
    attach_uprobe, attach_uretprobe, poll_perf_buffer, poll_ring_buffer, request_stop,
    resolve_binary, Event,
};

/// The function the uprobes go on. `no_mangle` + `pub` keep the symbol in the binary's symbol table.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ebpf_probe_sdk_kernel_test_target(x: u64) -> u64 {
    black_box(x).wrapping_mul(3)
}

const TARGET_SYMBOL: &str = "ebpf_probe_sdk_kernel_test_target";
const MAGIC: u64 = 0x5344_4b2d_5445_5354;
const CALLS: usize = 3;

/// Written without system headers (helper ids and map types as numbers) so that only clang is needed.
/// The uprobe submits a 4-byte record before each event, which the reader must skip.
const BPF_SOURCE: &str = r#"
typedef unsigned int __u32;
typedef unsigned long long __u64;
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]

struct { __uint(type, 27 /* RINGBUF */); __uint(max_entries, 65536); } ring SEC(".maps");
struct { __uint(type, 4 /* PERF_EVENT_ARRAY */); __uint(key_size, 4); __uint(value_size, 4); } perf SEC(".maps");

static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_perf_event_output)(void *ctx, void *map, __u64 flags, void *data, __u64 size) = (void *)25;
static long (*bpf_ringbuf_output)(void *ringbuf, void *data, __u64 size, __u64 flags) = (void *)130;

struct event { __u32 tgid; __u32 kind; __u64 magic; };

SEC("uprobe") int on_entry(void *ctx)
{
    struct event e = { .tgid = bpf_get_current_pid_tgid() >> 32, .kind = 1, .magic = 0x53444b2d54455354ULL };
    __u32 short_record = e.tgid;

    bpf_ringbuf_output(&ring, &short_record, sizeof(short_record), 0);
    bpf_ringbuf_output(&ring, &e, sizeof(e), 0);
    return 0;
}

SEC("uretprobe") int on_return(void *ctx)
{
    struct event e = { .tgid = bpf_get_current_pid_tgid() >> 32, .kind = 2, .magic = 0x53444b2d54455354ULL };

    bpf_perf_event_output(ctx, &perf, 0xffffffffULL /* BPF_F_CURRENT_CPU */, &e, sizeof(e));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
"#;

#[derive(Clone, Copy, Debug)]
#[repr(C)]
struct TestEvent {
    tgid: u32,
    kind: u32,
    magic: u64,
}

// SAFETY: repr(C) integers only, laid out as `struct event` above.
unsafe impl Event for TestEvent {}

#[test]
fn uprobes_feed_ring_and_perf_buffers() {
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".to_string());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("loading BPF programs needs root");
    }
    if Command::new(&clang).arg("--version").output().is_err() {
        return skip(&format!("{clang} (CLANG) is not installed"));
    }
    ebpf_probe_sdk::init("sdk-kernel-test");

    let dir =
        std::env::temp_dir().join(format!("ebpf-probe-sdk-kernel-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let object_path = compile(&clang, &dir);
    let object = ObjectBuilder::default()
        .open_file(&object_path)
        .and_then(|open| open.load())
        .expect("the test BPF object loads");
    let _ = std::fs::remove_dir_all(&dir);

    let exe = std::env::current_exe().unwrap();
    let exe = resolve_binary(exe.to_str().unwrap()).unwrap();
    let entry = program(&object, "on_entry");
    let exit = program(&object, "on_return");

    let missing = attach_uprobe(&entry, &exe, "no_such_function_in_this_test", None).unwrap_err();
    let message = missing.to_string();
    assert!(
        message.contains("'on_entry'")
            && message.contains("'no_such_function_in_this_test'")
            && message.contains(&exe.display().to_string()),
        "the attach error names the program, symbol and binary: {message}"
    );
    let missing =
        attach_uprobe(&entry, Path::new("/no/such/elf"), TARGET_SYMBOL, None).unwrap_err();
    assert!(
        missing.to_string().contains("/no/such/elf does not exist"),
        "{missing}"
    );

    let _entry_link = attach_uprobe(&entry, &exe, TARGET_SYMBOL, None).unwrap();
    let pid = std::process::id() as i32;
    let _exit_link = attach_uretprobe(&exit, &exe, TARGET_SYMBOL, Some(pid)).unwrap();

    let ring = map(&object, "ring");
    let perf = map(&object, "perf");
    let wrong = poll_ring_buffer::<TestEvent>(&perf, |_| {}).unwrap_err();
    assert!(
        wrong.to_string().contains("use poll_perf_buffer"),
        "{wrong}"
    );

    // A perf buffer only receives records once its reader exists (creating it opens the per-CPU perf
    // events the map points to), so the calls come from another thread once polling has started.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(300));
        for call in 0..CALLS as u64 {
            black_box(ebpf_probe_sdk_kernel_test_target(call));
        }
    });
    // If events went missing the loop would never be told to stop: a watchdog ends it.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(10));
        request_stop();
    });
    let mut returns = Vec::new();
    let mut lost = 0;
    poll_perf_buffer(
        &perf,
        |_cpu, event: &TestEvent| {
            if event.magic == MAGIC && event.tgid == pid as u32 {
                returns.push(*event);
            }
            if returns.len() == CALLS {
                request_stop();
            }
        },
        |_cpu, count| lost += count,
    )
    .unwrap();
    assert_eq!(lost, 0);
    assert_eq!(
        returns.len(),
        CALLS,
        "uretprobe events through the perf buffer: {returns:?}"
    );
    assert!(returns.iter().all(|e| e.kind == 2), "{returns:?}");

    // The stop is already requested: the records already in the ring buffer are still delivered, and
    // the 4-byte records before each event are skipped.
    let mut entries = Vec::new();
    poll_ring_buffer(&ring, |event: &TestEvent| {
        if event.magic == MAGIC && event.tgid == pid as u32 {
            entries.push(*event);
        }
    })
    .unwrap();
    assert_eq!(
        entries.len(),
        CALLS,
        "uprobe events through the ring buffer: {entries:?}"
    );
    assert!(entries.iter().all(|e| e.kind == 1), "{entries:?}");
}

fn compile(clang: &str, dir: &Path) -> PathBuf {
    let source = dir.join("sdk_test.bpf.c");
    let object = dir.join("sdk_test.bpf.o");
    std::fs::write(&source, BPF_SOURCE).unwrap();
    let output = Command::new(clang)
        .args(["-g", "-O2", "-Wall", "-target", "bpf", "-c"])
        .arg(&source)
        .arg("-o")
        .arg(&object)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{clang} failed on {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    object
}

fn program<'obj>(object: &'obj Object, name: &str) -> ebpf_probe_sdk::libbpf_rs::ProgramMut<'obj> {
    object
        .progs_mut()
        .find(|prog| prog.name() == name)
        .unwrap_or_else(|| panic!("program {name} is in the test object"))
}

fn map<'obj>(object: &'obj Object, name: &str) -> ebpf_probe_sdk::libbpf_rs::Map<'obj> {
    object
        .maps()
        .find(|map| map.name() == name)
        .unwrap_or_else(|| panic!("map {name} is in the test object"))
}

/// Skips with the reason locally; under CI a skipped kernel test would hide a broken SDK, so it fails.
fn skip(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("the kernel test cannot run under CI: {reason}");
    }
    eprintln!("skipping the kernel test: {reason}");
}
