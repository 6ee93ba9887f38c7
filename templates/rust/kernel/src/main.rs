//! {{name}}: Rust loader for {{attach}}; prints one `|{{table}}|pid|comm|{{value_name}}|` line per event.
//!
//! What to edit next: add a field to `struct {{name}}_event` in {{name}}.h and fill it in {{name}}.bpf.c,
//! mirror it in `Event` below (same order, same widths), add it to {{name}}.meta, and `ebpf-probe -b` makes
//! `meta::{{Name}}` require it: a line the meta does not describe does not compile.

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
    let mut storage = MaybeUninit::uninit();
    let skel = sdk::open_load_attach(skel::{{Name}}SkelBuilder::default(), &mut storage)?;
    sdk::ready("{{binary}}", "printing |{{table}}| lines");
    sdk::poll_ring_buffer(&skel.maps.events, |event: &Event| {
        let comm = String::from_utf8_lossy(event.comm.split(|&b| b == 0).next().unwrap_or_default());
        let line = meta::{{Name}} { pid: &event.pid, comm: &comm, {{value_name}}: &event.value };
        if let Err(error) = line.print() {
            // stdout is gone (the reader exited): nothing left to report to.
            eprintln!("{{binary}}: cannot print: {error}");
            sdk::request_stop();
        }
    })
}
