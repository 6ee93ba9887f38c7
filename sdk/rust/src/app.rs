//! Process start-up and shutdown: libbpf's messages to stderr, the SIGINT/SIGTERM stop flag, the ready line.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use libbpf_rs::PrintLevel;

/// Set by the SIGINT/SIGTERM handler (and [`request_stop`]); the poll loops return when they see it.
/// An atomic store is async-signal-safe, which is all a handler may do.
static STOP: AtomicBool = AtomicBool::new(false);

/// The probe's name for messages. libbpf's print callback is a plain `fn` (no closure state), so the
/// prefix it needs has to live in a static.
static APP: OnceLock<&'static str> = OnceLock::new();

/// Environment variable that turns on libbpf's debug trace (the counterpart of the C SDK's `-d` build).
const DEBUG_ENV: &str = "EBPF_PROBE_DEBUG";

/// The name given to [`init`], or a generic one when a helper is used without it (tests, libraries).
pub(crate) fn app_name() -> &'static str {
    APP.get().copied().unwrap_or("ebpf-probe")
}

/// Call once, first thing in `main`: routes libbpf's warnings and info messages to stderr, each line
/// prefixed `"{app}: libbpf: "` (its debug trace too when `EBPF_PROBE_DEBUG` is set), and makes SIGINT
/// and SIGTERM set the stop flag instead of killing the probe, so it can detach and exit 0.
///
/// Unlike the C `INIT_BPF_APP` there is no RLIMIT_MEMLOCK step: libbpf ≥ 1.0 raises the limit itself
/// on kernels that still charge BPF memory to it.
pub fn init(app: &'static str) {
    // A second call keeps the first name: messages of one process should not change prefix midway.
    let _ = APP.set(app);
    let level = if std::env::var_os(DEBUG_ENV).is_some() {
        PrintLevel::Debug
    } else {
        // Debug output is the whole relocation/attach trace: only useful when asked for.
        PrintLevel::Info
    };
    libbpf_rs::set_print(Some((level, print_libbpf_message)));
    if let Err(error) = install_stop_handlers() {
        eprintln!(
            "{}: failed to install the SIGINT/SIGTERM handlers: {error}; \
             those signals will kill the probe without detaching cleanly",
            app_name()
        );
    }
}

/// Whether SIGINT/SIGTERM arrived (or [`request_stop`] was called). Long-running loops of a probe
/// should test it, as the poll helpers do.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Ask the poll loops to return, as SIGTERM would: for other threads of a probe, and for tests.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Prints `"{app}: ready, {what}"` to stderr once everything is attached. Tests and gala-gopher's logs
/// wait for this line, so print it after the last attach and before polling.
pub fn ready(app: &str, what: &str) {
    eprintln!("{app}: ready, {what}");
}

/// libbpf's print callback. Every line gets the prefix (the verifier log is one message of many lines,
/// and a log reader greps by probe), and the message goes out in one write so concurrent stderr output
/// cannot split it.
fn print_libbpf_message(_level: PrintLevel, message: String) {
    // libbpf starts its own messages with "libbpf: " (the verifier log's lines it does not).
    let message = message.strip_prefix("libbpf: ").unwrap_or(&message);
    let out = prefix_lines(&format!("{}: libbpf: ", app_name()), message);
    // Nowhere left to report a failed write to stderr.
    let _ = io::stderr().lock().write_all(out.as_bytes());
}

fn prefix_lines(prefix: &str, message: &str) -> String {
    let mut out = String::with_capacity(message.len() + prefix.len() * 4);
    for line in message.lines() {
        out.push_str(prefix);
        out.push_str(line);
        out.push('\n');
    }
    out
}

extern "C" fn on_stop_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_stop_handlers() -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler only performs an
    // atomic store, which is async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        // No SA_RESTART: a poll blocked in epoll_wait must return EINTR so the loop sees the flag now,
        // not at the next timeout.
        action.sa_flags = 0;
        for signal in [libc::SIGINT, libc::SIGTERM] {
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigterm_sets_the_stop_flag_instead_of_killing() {
        init("sdk-unit-test");
        // SAFETY: raise only sends a signal to this thread; the handler installed above catches it.
        let sent = unsafe { libc::raise(libc::SIGTERM) };
        assert_eq!(sent, 0);
        // A signal sent to the calling thread is handled before raise returns.
        assert!(stop_requested());
    }

    #[test]
    fn libbpf_messages_are_prefixed_per_line() {
        assert_eq!(
            prefix_lines("p: libbpf: ", "-- BEGIN PROG LOAD LOG --\n0: R1=ctx\n"),
            "p: libbpf: -- BEGIN PROG LOAD LOG --\np: libbpf: 0: R1=ctx\n"
        );
        // libbpf messages normally end in a newline; one that does not still ends the line.
        assert_eq!(prefix_lines("p: ", "no newline"), "p: no newline\n");
    }
}
