/* Find the on-disk file behind a shared library this process has mapped, to attach uprobes to it. */
#ifndef __GOPHER_ELF_PATH_H__
#define __GOPHER_ELF_PATH_H__

#include <stddef.h>

/*
 * resolve_loaded_lib(lib_name, out, len): write to out the canonical path of the mapped file
 * whose name is lib_name, e.g. "libc.so.6" -> "/usr/lib/x86_64-linux-gnu/libc.so.6".
 *
 * Probing the file this process really loaded (same dynamic loader, same ld.so.cache, same
 * multiarch directory) finds the library the system's other programs use too, where a
 * hard-coded "/lib64/libc.so.6" is wrong on Debian and "/lib/x86_64-linux-gnu/..." on Fedora.
 * The kernel reports a soname symlink's target, so the name also matches that target's
 * usual spellings: "libc.so.6" -> "libc-2.31.so" (glibc < 2.34), "libbpf.so.1" ->
 * "libbpf.so.1.1.2", "libelf.so.1" -> "libelf-0.188.so".
 *
 * Returns 0, -ENOENT if nothing mapped matches, -ENAMETOOLONG if out is too small, or the
 * negative errno of reading /proc/self/maps.
 */
int resolve_loaded_lib(const char *lib_name, char *out, size_t len);

#endif /* __GOPHER_ELF_PATH_H__ */
