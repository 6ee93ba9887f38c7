//! The shipped probes and the SDK, end to end on the real kernel: build, run as root, trigger, read lines.
