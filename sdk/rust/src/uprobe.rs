//! Attach a bare `uprobe`/`uretprobe` program to a function of an executable or shared library by symbol
//! name (what the C SDK's `UBPF_ATTACH`/`UBPF_RET_ATTACH` do).

use std::path::Path;

use libbpf_rs::{Link, ProgramMut, UprobeOpts};

use crate::error::{common_hint, Error};

/// Attaches `program` (e.g. `&skel.progs.ubpf_getaddrinfo`) to the entry of function `symbol` in the ELF
/// `binary`, for process `pid` or for every process (`None`). libbpf finds the symbol itself, in
/// `.symtab` or `.dynsym`, in PIE executables and shared libraries; `symbol` may be versioned
/// (`"getaddrinfo@GLIBC_2.2.5"`). Use [`resolve_binary`](crate::resolve_binary) to turn "libc.so.6" or
/// "nginx" into a path.
///
/// Keep the returned [`Link`]: dropping it detaches the probe. For an entry/return pair, attach the entry
/// half first and let `?` drop it if the return half fails, so no half-pair stays attached.
pub fn attach_uprobe(
    program: &ProgramMut<'_>,
    binary: &Path,
    symbol: &str,
    pid: Option<i32>,
) -> Result<Link, Error> {
    attach(program, binary, symbol, pid, false)
}

/// As [`attach_uprobe`], on the function's return (a `uretprobe` program).
pub fn attach_uretprobe(
    program: &ProgramMut<'_>,
    binary: &Path,
    symbol: &str,
    pid: Option<i32>,
) -> Result<Link, Error> {
    attach(program, binary, symbol, pid, true)
}

fn attach(
    program: &ProgramMut<'_>,
    binary: &Path,
    symbol: &str,
    pid: Option<i32>,
    retprobe: bool,
) -> Result<Link, Error> {
    let kind = if retprobe { "uretprobe" } else { "uprobe" };
    let what = format!(
        "failed to attach {kind} program '{}' to function '{symbol}' in {}{}",
        program.name().to_string_lossy(),
        binary.display(),
        match pid {
            Some(pid) => format!(" for pid {pid}"),
            None => String::new(),
        }
    );
    if symbol.is_empty() {
        return Err(Error::new(format!(
            "{what}: the function name is empty; give the symbol to probe"
        )));
    }
    // libbpf would say ENOENT for both a missing file and a missing symbol; tell them apart here.
    if !binary.exists() {
        return Err(Error::new(format!(
            "{what}: {} does not exist; resolve_binary finds libraries this process maps and executables \
             in PATH by name",
            binary.display()
        )));
    }
    let opts = UprobeOpts {
        func_name: Some(symbol.to_string()),
        retprobe,
        ..UprobeOpts::default()
    };
    // Offset 0 with a function name means the function's entry; pid -1 means every process.
    program
        .attach_uprobe_with_opts(pid.unwrap_or(-1), binary, 0, opts)
        .map_err(|error| {
            let error = Error::libbpf(&what, &error);
            let hint = match error.raw_os_error() {
                Some(libc::ENOENT) => Some(format!(
                    "is '{symbol}' a function of that file? (`nm -D` lists a library's functions, `nm` an \
                     executable's; libbpf's message above says where it looked)"
                )),
                Some(libc::ESRCH) => Some(format!(
                    "process {} does not exist (any more)",
                    pid.unwrap_or(-1)
                )),
                os_error => common_hint(os_error),
            };
            error.with_hint(hint)
        })
}
