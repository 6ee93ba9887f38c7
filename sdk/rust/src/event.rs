//! Typed events from a ring buffer or perf buffer map, polled until SIGINT/SIGTERM (the C SDK's
//! `create_rb`/`poll_rb` and `create_pref_buffer`/`poll_pb`).

use std::marker::PhantomData;
use std::mem::size_of;
use std::time::Duration;

use libbpf_rs::{ErrorKind, MapCore, MapType, PerfBufferBuilder, RingBufferBuilder};

use crate::app::{app_name, stop_requested};
use crate::error::Error;

/// How late a stop is noticed at most when no event and no signal wakes the poll (a signal interrupts
/// it at once).
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Per-CPU pages of a perf buffer, as the C SDK's `PERF_BUFFER_PAGES` (a power of two).
const PERF_BUFFER_PAGES: usize = 8;

/// A record a BPF program submits, as the probe's userland reads it: the `#[repr(C)]` Rust mirror of the
/// C struct in the probe's header.
///
/// # Safety
///
/// Implement it only for plain data: a `#[repr(C)]` struct (or array, or integer) made of integers,
/// floats, arrays of them and other such structs, with the same layout as the C struct the BPF side
/// submits. Every bit pattern must be a valid value, because records are copied from kernel memory with
/// no checks: no `bool`, `char`, enums, references, pointers, `NonZero*` or niche-carrying types
/// (use `u8` for a C `bool`, `[u8; N]` for a `char[N]`).
pub unsafe trait Event: Copy + 'static {}

/// Calls `on_event` with each record of the ring buffer map `map` (`&skel.maps.events`, a
/// `BPF_MAP_TYPE_RINGBUF`) until [`stop_requested`](crate::stop_requested), then delivers the records
/// already in the buffer and returns `Ok(())`. A record shorter than `T` (a C/Rust struct mismatch) is
/// skipped, with one warning on stderr. Returns an error when `map` is not a ring buffer or a poll fails
/// for another reason than a signal.
pub fn poll_ring_buffer<T: Event>(
    map: &impl MapCore,
    mut on_event: impl FnMut(&T),
) -> Result<(), Error> {
    let name = map.name().to_string_lossy().into_owned();
    if map.map_type() != MapType::RingBuf {
        return Err(wrong_map_type(
            &name,
            map.map_type(),
            "ring buffer (BPF_MAP_TYPE_RINGBUF)",
            "for a BPF_MAP_TYPE_PERF_EVENT_ARRAY use poll_perf_buffer",
        ));
    }
    let mut reader = RecordReader::<T>::new("ring buffer", &name);
    let mut builder = RingBufferBuilder::new();
    builder
        .add(map, |data: &[u8]| {
            if let Some(event) = reader.read(data) {
                on_event(&event);
            }
            0
        })
        .map_err(|error| {
            Error::libbpf(
                format!("failed to create a ring buffer reader on map '{name}'"),
                &error,
            )
        })?;
    let ring = builder.build().map_err(|error| {
        Error::libbpf(
            format!("failed to create a ring buffer reader on map '{name}'"),
            &error,
        )
    })?;
    while !stop_requested() {
        match ring.poll(POLL_TIMEOUT) {
            Ok(()) => {}
            // A signal: the loop condition decides whether it was a stop.
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(Error::libbpf(
                    format!("failed to poll ring buffer map '{name}'"),
                    &error,
                ));
            }
        }
    }
    // What the BPF side submitted before the stop is still printed: a probe flushes every line it owes.
    ring.consume().map_err(|error| {
        Error::libbpf(
            format!("failed to read the last records of ring buffer map '{name}'"),
            &error,
        )
    })
}

/// Calls `on_event(cpu, &event)` with each record of the perf buffer map `map` (`&skel.maps.events`, a
/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`) and `on_lost(cpu, count)` when the kernel dropped records because
/// the buffer was full, until [`stop_requested`](crate::stop_requested); then delivers the records
/// already in the buffers and returns `Ok(())`. Short records are skipped as in [`poll_ring_buffer`].
pub fn poll_perf_buffer<T: Event>(
    map: &impl MapCore,
    mut on_event: impl FnMut(i32, &T),
    on_lost: impl FnMut(i32, u64),
) -> Result<(), Error> {
    let name = map.name().to_string_lossy().into_owned();
    if map.map_type() != MapType::PerfEventArray {
        return Err(wrong_map_type(
            &name,
            map.map_type(),
            "perf buffer (BPF_MAP_TYPE_PERF_EVENT_ARRAY)",
            "for a BPF_MAP_TYPE_RINGBUF use poll_ring_buffer",
        ));
    }
    let mut reader = RecordReader::<T>::new("perf buffer", &name);
    let perf = PerfBufferBuilder::new(map)
        .pages(PERF_BUFFER_PAGES)
        .sample_cb(move |cpu, data: &[u8]| {
            if let Some(event) = reader.read(data) {
                on_event(cpu, &event);
            }
        })
        .lost_cb(on_lost)
        .build()
        .map_err(|error| {
            Error::libbpf(
                format!("failed to create a perf buffer reader on map '{name}'"),
                &error,
            )
        })?;
    while !stop_requested() {
        match perf.poll(POLL_TIMEOUT) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => {
                return Err(Error::libbpf(
                    format!("failed to poll perf buffer map '{name}'"),
                    &error,
                ));
            }
        }
    }
    perf.consume().map_err(|error| {
        Error::libbpf(
            format!("failed to read the last records of perf buffer map '{name}'"),
            &error,
        )
    })
}

fn wrong_map_type(name: &str, actual: MapType, wanted: &str, hint: &str) -> Error {
    Error::new(format!(
        "map '{name}' is a {actual:?} map, not a {wanted}: pass the events map, or {hint}"
    ))
}

/// Copies records out as `T`, warning once about records too short to be one.
struct RecordReader<T> {
    buffer_kind: &'static str,
    map: String,
    warned: bool,
    event: PhantomData<T>,
}

impl<T: Event> RecordReader<T> {
    fn new(buffer_kind: &'static str, map: &str) -> Self {
        RecordReader {
            buffer_kind,
            map: map.to_string(),
            warned: false,
            event: PhantomData,
        }
    }

    fn read(&mut self, data: &[u8]) -> Option<T> {
        if data.len() < size_of::<T>() {
            if !self.warned {
                self.warned = true;
                eprintln!(
                    "{}: skipped a {}-byte record of {} map '{}': {} is {} bytes (does the #[repr(C)] struct \
                     match the C struct the BPF program submits?); further short records are skipped silently",
                    app_name(),
                    data.len(),
                    self.buffer_kind,
                    self.map,
                    std::any::type_name::<T>(),
                    size_of::<T>()
                );
            }
            return None;
        }
        // SAFETY: the slice holds at least size_of::<T>() bytes; read_unaligned copes with the record's
        // alignment (perf records are only 4-byte aligned); Event promises every bit pattern is a valid T.
        Some(unsafe { std::ptr::read_unaligned(data.as_ptr().cast::<T>()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    struct KillEvent {
        killer_pid: u32,
        signal: i32,
        killed_pid: i32,
        comm: [u8; 4],
    }

    unsafe impl Event for KillEvent {}

    #[test]
    fn records_are_copied_even_when_unaligned_and_longer() {
        let mut bytes = vec![0u8; 1];
        for word in [7u32, 9, 42] {
            bytes.extend_from_slice(&word.to_ne_bytes());
        }
        bytes.extend_from_slice(b"sh\0\0");
        // Perf records carry padding after the struct.
        bytes.extend_from_slice(&[0xff; 4]);
        let mut reader = RecordReader::<KillEvent>::new("perf buffer", "events");
        let event = reader.read(&bytes[1..]).unwrap();
        assert_eq!(
            event,
            KillEvent {
                killer_pid: 7,
                signal: 9,
                killed_pid: 42,
                comm: *b"sh\0\0"
            }
        );
    }

    #[test]
    fn short_records_are_skipped_with_one_warning() {
        let mut reader = RecordReader::<KillEvent>::new("ring buffer", "events");
        assert_eq!(reader.read(&[0u8; 8]), None);
        assert!(reader.warned);
        assert_eq!(reader.read(&[0u8; 15]), None);
        assert!(reader.read(&[0u8; 16]).is_some());
    }
}
