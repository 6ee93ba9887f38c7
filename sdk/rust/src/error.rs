//! The SDK's error: one message saying what failed, on which object, map, program or binary, why, and what to do.

use std::ffi::CStr;
use std::fmt;
use std::io;

use crate::line::LineError;

/// An SDK failure, already phrased for the person running the probe. `Display` is the whole message
/// (the cause included), so `eprintln!("{app}: {error}")` is enough; `source()` is therefore `None`, so
/// that anyhow's `{:#}` does not print the cause twice.
pub struct Error {
    message: String,
    os_error: Option<i32>,
}

/// libbpf's own error codes (`LIBBPF_ERRNO__*`) start here; `strerror` calls them "Unknown error".
const LIBBPF_ERRNO_START: i32 = 4000;

impl Error {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            os_error: None,
        }
    }

    /// `what` (e.g. "failed to load BPF object 'x'") failed because of `error`.
    pub(crate) fn libbpf(what: impl fmt::Display, error: &libbpf_rs::Error) -> Self {
        let (reason, os_error) = libbpf_reason(error);
        Error {
            message: format!("{what}: {reason}"),
            os_error,
        }
    }

    /// Appends advice (what to do about it) when there is some.
    pub(crate) fn with_hint(mut self, hint: Option<String>) -> Self {
        if let Some(hint) = hint {
            self.message.push_str("; ");
            self.message.push_str(&hint);
        }
        self
    }

    /// The errno behind the failure when there is one (positive, e.g. `libc::EPERM`), for probes that
    /// react to a particular cause (fall back to another attach point on `ENOENT`, say).
    pub fn raw_os_error(&self) -> Option<i32> {
        self.os_error
    }
}

/// The advice for errno values that mean the same thing at every step.
pub(crate) fn common_hint(os_error: Option<i32>) -> Option<String> {
    match os_error? {
        libc::EPERM => Some(
            "run the probe as root (it needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)"
                .to_string(),
        ),
        _ => None,
    }
}

/// The innermost cause of a libbpf-rs error (its outer layers are libbpf-rs's own "failed to …" context,
/// which our message replaces) and its errno. libbpf-rs keeps the errno inside a private type, so it is
/// read back from io::Error's "(os error N)" suffix.
fn libbpf_reason(error: &libbpf_rs::Error) -> (String, Option<i32>) {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let reason = innermost.to_string();
    let os_error = reason
        .strip_suffix(')')
        .and_then(|rest| rest.rsplit_once("(os error "))
        .and_then(|(_, code)| code.parse::<i32>().ok());
    match os_error {
        // "Unknown error 4003" helps nobody; libbpf knows what its own codes mean.
        Some(code) if code >= LIBBPF_ERRNO_START => (
            format!("{} (libbpf error {code})", libbpf_strerror(code)),
            Some(code),
        ),
        _ => (reason, os_error),
    }
}

fn libbpf_strerror(code: i32) -> String {
    let mut buffer = [0 as libc::c_char; 128];
    // SAFETY: the buffer and its length are valid; libbpf_strerror always NUL-terminates within them.
    unsafe {
        libbpf_rs::libbpf_sys::libbpf_strerror(code, buffer.as_mut_ptr(), buffer.len() as _);
        CStr::from_ptr(buffer.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The message itself, so that `fn main() -> Result<(), Error>` prints something readable.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<libbpf_rs::Error> for Error {
    fn from(error: libbpf_rs::Error) -> Self {
        Error::libbpf("libbpf", &error)
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error {
            message: error.to_string(),
            os_error: error.raw_os_error(),
        }
    }
}

impl From<LineError> for Error {
    fn from(error: LineError) -> Self {
        Error::new(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libbpf_errors_keep_the_innermost_reason_and_errno() {
        let error = Error::libbpf(
            "failed to load BPF object 'x'",
            &libbpf_rs::Error::from_raw_os_error(libc::EPERM),
        );
        assert_eq!(error.raw_os_error(), Some(libc::EPERM));
        assert!(
            error
                .to_string()
                .starts_with("failed to load BPF object 'x': Operation not permitted"),
            "{error}"
        );
    }

    #[test]
    fn libbpf_own_codes_are_explained_by_libbpf() {
        // 4003 is LIBBPF_ERRNO__FORMAT.
        let error = Error::libbpf("x", &libbpf_rs::Error::from_raw_os_error(4003));
        assert!(!error.to_string().contains("Unknown error"), "{error}");
        assert!(error.to_string().contains("libbpf error 4003"), "{error}");
    }
}
