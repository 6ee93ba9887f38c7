//! {{name}}: Rust loader for {{attach}}; prints one `|{{table}}|pid|comm|{{value_name}}|` line per call.
//! `{{binary}} [-b PATH]` traces {{uprobe_symbol}} in PATH instead of `{{uprobe_binary}}`.
//!
//! What to edit next: add a field to `struct {{name}}_event` in {{name}}.h and fill it in {{name}}.bpf.c,
//! mirror it in `Event` below (same order, same widths), add it to {{name}}.meta, and `ebpf-probe -b` makes
//! `meta::{{Name}}` require it. To trace one process only, pass `Some(pid)` to the attach call.

mod skel {
    include!(concat!(env!("EBPF_PROBE_GENERATED"), "/{{name}}.skel.rs"));
}
#[allow(dead_code)] // `FIELDS`, and tables this binary does not print
mod meta {
    include!(concat!(env!("EBPF_PROBE_GENERATED"), "/meta.rs"));
}

use std::mem::MaybeUninit;

use ebpf_probe_sdk as sdk;

/// `struct {{name}}_event` of {{name}}.h: same fields, same order, same widths.
#[derive(Clone, Copy)]
#[repr(C)]
struct Event {
    value: u64,
    pid: u32,
    comm: [u8; 16],
}

// SAFETY: repr(C) of integers and bytes, as the C struct: every bit pattern is a valid Event.
unsafe impl sdk::Event for Event {}

fn main() -> Result<(), sdk::Error> {
    sdk::init("{{binary}}");
    let args: Vec<String> = std::env::args().collect();
    let target = match args.as_slice() {
        [_] => "{{uprobe_binary}}".to_string(),
        [_, flag, path] if flag == "-b" => path.clone(),
        _ => {
            eprintln!("usage: {{binary}} [-b PATH]   (traces {{uprobe_symbol}} in PATH, default {{uprobe_binary}})");
            std::process::exit(2);
        }
    };
    // A bare library name means the copy this process maps, i.e. the one the system uses.
    let binary = sdk::resolve_binary(&target)?;
    let mut storage = MaybeUninit::uninit();
    let skel = sdk::open_load(skel::{{Name}}SkelBuilder::default(), &mut storage)?;
    let _link = sdk::{{rust_attach_fn}}(&skel.progs.{{prog_name}}, &binary, "{{uprobe_symbol}}", None)?;
    sdk::ready("{{binary}}", &format!("tracing {{uprobe_symbol}} in {}", binary.display()));
    sdk::poll_ring_buffer(&skel.maps.events, |event: &Event| {
        let comm = String::from_utf8_lossy(event.comm.split(|&b| b == 0).next().unwrap_or_default());
        let line = meta::{{Name}} { pid: &event.pid, comm: &comm, {{value_name}}: &event.value };
        if let Err(error) = line.print() {
            eprintln!("{{binary}}: cannot print: {error}");
            sdk::request_stop();
        }
    })
}
