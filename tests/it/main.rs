//! One integration test binary (one link step), a module per command; see `support` for the workspace builder.

mod arch;
mod btfgen;
mod build;
mod check;
mod cli;
mod compat;
mod fast;
mod gen;
mod graph;
mod http;
mod import;
mod install;
mod layout;
mod libbpf;
mod meta;
mod probes;
mod run;
mod rust;
mod safety;
mod scaffold;
mod support;
mod tcpprobe;
mod tidy;
mod verify;
