//! The Rust counterpart of ebpf-probe's C loader SDK (`include/__libbpf.h`, `lib/`): start-up, skeleton
//! load/attach, uprobe attach, ring/perf buffer polling and gala-gopher's `|table|v1|…|` line protocol.
//!
//! A probe's `main` calls [`init`] first, loads its generated skeleton with [`open_load_attach`], attaches
//! its bare `uprobe` sections with [`attach_uprobe`]/[`attach_uretprobe`], says [`ready`], then hands its
//! events map to [`poll_ring_buffer`] or [`poll_perf_buffer`] and prints one line per event with the
//! generated `meta.rs` structs (which call [`line::print_line`]). SIGINT/SIGTERM end the poll loop, the
//! skeleton is dropped (detaching everything) and the probe exits 0.
//!
//! stdout carries only protocol lines; every message of this crate and of libbpf goes to stderr.

mod app;
mod binary;
mod btf;
mod error;
mod event;
pub mod line;
mod skeleton;
mod uprobe;

/// The libbpf-rs this SDK is built against: probes use it (and its generated skeletons) through this
/// re-export, or through a `libbpf-rs` dependency pinned to the same version, never a different one.
pub use libbpf_rs;

pub use app::{init, ready, request_stop, stop_requested};
pub use binary::{find_loaded_library, resolve_binary};
pub use btf::{btf_custom_path, DEFAULT_BTF_DIR};
pub use error::Error;
pub use event::{poll_perf_buffer, poll_ring_buffer, Event};
pub use skeleton::{attach_skeleton, load_skeleton, open_load, open_load_attach, open_skeleton};
pub use uprobe::{attach_uprobe, attach_uretprobe};
