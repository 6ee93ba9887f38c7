//! What ebpf-probe supplies itself, so import never writes it: the base compiler flags, the defines it computes
//! for the build machine (target arch, libbpf and clang versions, kernel version, debug), the libraries it
//! always links (its own libbpf, libelf, zlib, pthread), and `$BUILD_OPTS`.

use super::eval::Opaque;

/// Every BPF compile gets these (src/build/compile.rs).
pub const BPF_BASE: [&str; 3] = ["-g", "-O2", "-Wall"];
/// Every userland compile gets these.
pub const CC_BASE: [&str; 4] = ["-g", "-O2", "-Wall", "-fPIC"];
/// Linked into every probe, after its own libraries; `-lbpf` is whichever libbpf `--libbpf` chose.
pub const TOOL_LIBS: [&str; 4] = ["bpf", "elf", "z", "pthread"];

/// A define the tool computes for the machine it builds on (`-D__TARGET_ARCH_x86`, `-DLIBBPF_VER_MAJOR=1`, …).
pub fn is_tool_define(define: &str) -> bool {
    let name = define.split('=').next().unwrap_or_default();
    name.starts_with("__TARGET_ARCH_")
        || name.starts_with("KER_VER_")
        || matches!(
            name,
            "LIBBPF_VER_MAJOR"
                | "LIBBPF_VER_MINOR"
                | "CLANG_VER_MAJOR"
                | "KER_RELEASE"
                | "GOPHER_DEBUG"
        )
}

/// `-D__BTF_ENABLE_ON`/`OFF`: chosen per probe by `BTF_ENABLE_OVERRIDE`, else by the tool's rule.
pub fn is_btf_define(define: &str) -> bool {
    define.starts_with("__BTF_ENABLE_")
}

/// An opaque value that stands for `$(BUILD_OPTS)`, which the tool appends to every compile from the environment.
pub fn is_build_opts(opaque: &Opaque) -> bool {
    opaque.construct.contains("BUILD_OPTS")
}

/// An opaque value that stands for the JDK's directory (`$(JAVA_HOME)`): `jni = true` finds the JNI headers.
pub fn is_java_home(opaque: &Opaque) -> bool {
    opaque.variable.as_deref() == Some("JAVA_HOME") || opaque.construct.contains("JAVA_HOME")
}

/// `list` without the words in `minus` (order kept, duplicates dropped).
pub fn without(list: &[String], minus: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in list {
        if !minus.contains(item) && !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_defines() {
        assert!(is_tool_define("__TARGET_ARCH_x86"));
        assert!(is_tool_define("LIBBPF_VER_MAJOR=1"));
        assert!(is_tool_define("CLANG_VER_MAJOR"));
        assert!(!is_tool_define("BPF_NO_GLOBAL_DATA"));
        assert!(is_btf_define("__BTF_ENABLE_ON"));
        assert_eq!(
            without(
                &strings(&["-g", "-std=gnu11", "-g", "-Wunused"]),
                &strings(&["-g"])
            ),
            strings(&["-std=gnu11", "-Wunused"])
        );
    }
}
