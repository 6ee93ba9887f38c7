//! tcpprobe userland: loads tcpprobe.bpf.c and prints one `|tcp_link|…|` line per TCP connection that closes.

use std::fmt;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;

mod skel {
    include!(concat!(env!("EBPF_PROBE_GENERATED"), "/tcpprobe.skel.rs"));
}
// Generated for every table; this probe does not need each item (FIELDS).
#[allow(dead_code)]
mod meta {
    include!(concat!(env!("EBPF_PROBE_GENERATED"), "/meta.rs"));
}

const APP: &str = "tcpprobe";

/// `TCPPROBE_COMM_LEN` in tcpprobe.h.
const COMM_LEN: usize = 16;

/// `TCPPROBE_ROLE_*` in tcpprobe.h.
const ROLE_CLIENT: u8 = 1;
const ROLE_SERVER: u8 = 2;

/// Linux address families (include/linux/socket.h).
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// `struct tcp_link_event` of tcpprobe.h, field for field.
#[repr(C)]
#[derive(Clone, Copy)]
struct TcpLinkEvent {
    rx_bytes: u64,
    acked_bytes: u64,
    lifetime_ns: u64,
    tgid: u32,
    srtt_us: u32,
    retrans: u32,
    family: u16,
    sport: u16,
    dport: u16,
    role: u8,
    pad: [u8; 5],
    saddr: [u8; 16],
    daddr: [u8; 16],
    comm: [u8; COMM_LEN],
}

// The C struct has no implicit padding and is 96 bytes; a field added on one side only fails here.
const _: () = assert!(std::mem::size_of::<TcpLinkEvent>() == 96);

// SAFETY: #[repr(C)], integers and byte arrays only, the layout of struct tcp_link_event.
unsafe impl ebpf_probe_sdk::Event for TcpLinkEvent {}

impl TcpLinkEvent {
    fn role(&self) -> &'static str {
        match self.role {
            ROLE_CLIENT => "client",
            ROLE_SERVER => "server",
            _ => "unknown",
        }
    }

    fn family(&self) -> &'static str {
        match self.family {
            AF_INET => "ipv4",
            AF_INET6 => "ipv6",
            _ => "unknown",
        }
    }

    fn comm(&self) -> String {
        let end = self.comm.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
        String::from_utf8_lossy(&self.comm[..end]).into_owned()
    }
}

/// An address as the kernel stored it (network byte order): IPv4 in the first four bytes.
fn ip_address(family: u16, bytes: &[u8; 16]) -> IpAddr {
    if family == AF_INET6 {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    } else {
        IpAddr::V4(Ipv4Addr::from(u32::from_be_bytes([
            bytes[0], bytes[1], bytes[2], bytes[3],
        ])))
    }
}

/// Nanoseconds shown as milliseconds with three decimals: loopback connections live well under 1 ms.
struct Millis(u64);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1_000_000, self.0 / 1_000 % 1_000)
    }
}

fn print_event(event: &TcpLinkEvent) -> std::io::Result<()> {
    meta::TcpLink {
        tgid: &event.tgid,
        role: &event.role(),
        saddr: &ip_address(event.family, &event.saddr),
        sport: &event.sport,
        daddr: &ip_address(event.family, &event.daddr),
        dport: &event.dport,
        family: &event.family(),
        comm: &event.comm(),
        rx_bytes: &event.rx_bytes,
        acked_bytes: &event.acked_bytes,
        srtt_us: &event.srtt_us,
        retrans: &event.retrans,
        lifetime_ms: &Millis(event.lifetime_ns),
    }
    .print()
}

fn run() -> Result<(), String> {
    ebpf_probe_sdk::init(APP);
    let mut storage = MaybeUninit::uninit();
    let skel = ebpf_probe_sdk::open_load_attach(skel::TcpprobeSkelBuilder::default(), &mut storage)
        .map_err(|error| error.to_string())?;
    ebpf_probe_sdk::ready(APP, "reporting closed TCP connections");

    let mut print_error = None;
    ebpf_probe_sdk::poll_ring_buffer(&skel.maps.tcp_link_events, |event: &TcpLinkEvent| {
        if print_error.is_some() {
            return;
        }
        // stdout gone (the reader exited): nothing more can be reported, so stop like on SIGTERM.
        if let Err(error) = print_event(event) {
            print_error = Some(error);
            ebpf_probe_sdk::request_stop();
        }
    })
    .map_err(|error| error.to_string())?;
    match print_error {
        Some(error) => Err(format!("cannot write to stdout: {error}")),
        None => Ok(()),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{APP}: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_in_network_order() {
        let mut v4 = [0u8; 16];
        v4[..4].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(ip_address(AF_INET, &v4).to_string(), "127.0.0.1");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(ip_address(AF_INET6, &v6).to_string(), "::1");
    }

    #[test]
    fn lifetimes_print_as_milliseconds_with_microseconds() {
        assert_eq!(Millis(0).to_string(), "0.000");
        assert_eq!(Millis(1_234_567).to_string(), "1.234");
        assert_eq!(Millis(42_000_999_999).to_string(), "42000.999");
    }
}
