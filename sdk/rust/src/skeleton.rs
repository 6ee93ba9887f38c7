//! Open, load and attach a generated libbpf-rs skeleton, each step failing with a message that names it
//! (what the C SDK's `LOAD` does).

use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{AsRawLibbpf, Object, OpenObject};

use crate::error::{common_hint, Error};

/// Opens, loads (the verifier runs here) and attaches the skeleton: every program whose section names
/// its target (`tracepoint/…`, `raw_tracepoint/…`, `kprobe/…`) is attached by libbpf; bare `uprobe` /
/// `uretprobe` sections are skipped, for [`attach_uprobe`](crate::attach_uprobe) to attach.
///
/// Dropping the returned skeleton detaches and unloads everything. `storage` must outlive it, hence a
/// `let mut storage = MaybeUninit::uninit();` in `main` before the call.
pub fn open_load_attach<'obj, B>(
    builder: B,
    storage: &'obj mut MaybeUninit<OpenObject>,
) -> Result<<B::Output as OpenSkel<'obj>>::Output, Error>
where
    B: SkelBuilder<'obj>,
{
    let mut skel = open_load(builder, storage)?;
    attach_skeleton(&mut skel)?;
    Ok(skel)
}

/// Opens and loads the skeleton without attaching anything: for probes that attach every program
/// themselves (or call [`attach_skeleton`] after some manual attaches).
pub fn open_load<'obj, B>(
    builder: B,
    storage: &'obj mut MaybeUninit<OpenObject>,
) -> Result<<B::Output as OpenSkel<'obj>>::Output, Error>
where
    B: SkelBuilder<'obj>,
{
    load_skeleton(open_skeleton(builder, storage)?)
}

/// Step 1 alone: opens the skeleton's embedded BPF object, with libbpf's `btf_custom_path` set as
/// [`btf_custom_path`](crate::btf_custom_path) says (a minimized BTF from `ebpf-probe btfgen` on kernels
/// without `/sys/kernel/btf/vmlinux`). Between this and [`load_skeleton`] a probe can
/// set `rodata`/`bss` values (a pid filter, say) or turn programs off with `set_autoload(false)`.
pub fn open_skeleton<'obj, B>(
    builder: B,
    storage: &'obj mut MaybeUninit<OpenObject>,
) -> Result<B::Output, Error>
where
    B: SkelBuilder<'obj>,
{
    // Nothing but the Rust type names the object before it is open.
    let skeleton = skeleton_name::<B>();
    let mut builder = builder;
    if let Some(path) = crate::btf::btf_custom_path(skeleton) {
        builder
            .object_builder_mut()
            .btf_custom_path(&path)
            .map_err(|error| {
                Error::libbpf(
                    format!("kernel BTF path `{}` is unusable", path.display()),
                    &error,
                )
            })?;
    }
    builder.open(storage).map_err(|error| {
        Error::libbpf(format!("failed to open the BPF object of {skeleton}"), &error).with_hint(Some(
            "the skeleton embeds the object ebpf-probe compiled: rebuild the probe with `ebpf-probe -b`"
                .to_string(),
        ))
    })
}

/// Step 2 alone: creates the maps and loads the programs into the kernel (the verifier runs here).
pub fn load_skeleton<'obj, O>(open: O) -> Result<O::Output, Error>
where
    O: OpenSkel<'obj>,
{
    let object = open
        .open_object()
        .name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "(unnamed)".to_string());
    open.load().map_err(|error| {
        let error = Error::libbpf(
            format!("failed to load BPF object '{object}' (verifier output is above)"),
            &error,
        );
        let hint = match error.raw_os_error() {
            // EACCES/EINVAL from a program load are the verifier refusing it; its log says which insn.
            Some(libc::EACCES) | Some(libc::EINVAL) => Some(
                "the verifier log above ends with the reason; fix the .bpf.c and rebuild"
                    .to_string(),
            ),
            os_error => common_hint(os_error),
        };
        error.with_hint(hint)
    })
}

/// Step 3 alone: auto-attaches every program whose section names its target (skeleton attach). Bare
/// `uprobe`/`uretprobe`/`usdt` sections have no target and are skipped by libbpf.
pub fn attach_skeleton<'obj, S>(skel: &mut S) -> Result<(), Error>
where
    S: Skel<'obj>,
{
    // libbpf-cargo generates no `attach` for an object without programs (the trait's default panics),
    // and there is nothing to attach anyway.
    if skel.object().progs().next().is_none() {
        return Ok(());
    }
    match skel.attach() {
        Ok(()) => Ok(()),
        Err(error) => Err(attach_error(skel.object(), &error)),
    }
}

/// libbpf stops at the first program that fails and names it only in its own warning ("prog 'x': failed
/// to auto-attach"), printed above; the links that would say which one are private to the generated
/// skeleton. So the message points there and lists the programs that were being attached.
fn attach_error(object: &Object, error: &libbpf_rs::Error) -> Error {
    let name = object
        .name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "(unnamed)".to_string());
    let candidates: Vec<String> = object
        .progs()
        .filter(|prog| {
            // SAFETY: the pointer is a live bpf_program of the loaded object borrowed above.
            let autoattach = unsafe {
                libbpf_rs::libbpf_sys::bpf_program__autoattach(prog.as_libbpf_object().as_ptr())
            };
            prog.autoload() && autoattach && prog.section().to_string_lossy().contains('/')
        })
        .map(|prog| {
            format!(
                "'{}' ({})",
                prog.name().to_string_lossy(),
                prog.section().to_string_lossy()
            )
        })
        .collect();
    let error = Error::libbpf(
        format!(
            "failed to attach BPF object '{name}' (libbpf's \"failed to auto-attach\" line above names \
             the program that failed, of those attached in this order: {})",
            if candidates.is_empty() {
                "none".to_string()
            } else {
                candidates.join(", ")
            }
        ),
        error,
    );
    let hint = match error.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) => Some(
            "check that this kernel has the attach point (tracefs events for tracepoints, \
             /proc/kallsyms for kprobes); `ebpf-probe check` lists the attach kinds that work here"
                .to_string(),
        ),
        os_error => common_hint(os_error),
    };
    error.with_hint(hint)
}

/// `KillprobeSkelBuilder` from `killprobe::skel::KillprobeSkelBuilder`.
fn skeleton_name<B>() -> &'static str {
    let full = std::any::type_name::<B>();
    // Generic arguments (none in generated builders) would contain `::` too; cut them off first.
    let path = full.split('<').next().unwrap_or(full);
    path.rsplit("::").next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    mod killprobe_skel {
        pub struct KillprobeSkelBuilder;
    }

    #[test]
    fn skeleton_name_is_the_builder_type() {
        assert_eq!(
            skeleton_name::<killprobe_skel::KillprobeSkelBuilder>(),
            "KillprobeSkelBuilder"
        );
    }
}
