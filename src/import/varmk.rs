//! Translating the Makefile fragment every probe includes (gala-gopher's `src/mk/var.mk`) into ebpf-probe.toml:
//! [layout] (where probes, SDK headers and the kernel header are), [build] (what every probe's compiles and
//! links get) and [sources] (the shared `lib` and `common` sets), by the variable names the convention uses.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::eval::{Evaluation, Location};
use super::explain::Explainer;
use super::flags::{self, without, BPF_BASE, CC_BASE, TOOL_LIBS};
use super::model::{Build, SourceSet, WorkspaceFile};
use super::recipe::{self, Flags};
use super::{relpath, token};

/// Where the fragment sits in a gala-gopher tree, relative to `src/`.
pub const VAR_MK: &str = "mk/var.mk";

/// What probes inherit from the fragment, for their translation to leave out of probe.toml.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    pub var_mk: Option<PathBuf>,
    pub clang: Flags,
    pub c: Flags,
    pub cxx: Flags,
    pub link: Flags,
    /// The `-I` values of BASE_INC as the compile lines spell them.
    pub base_includes: Vec<String>,
    /// [layout] include, absolute.
    pub layout_dirs: Vec<PathBuf>,
    pub sets: Vec<SetPatterns>,
    pub build: Build,
}

/// A shared source set's patterns, absolute and normalized, as probes' link lines name them.
#[derive(Debug, Clone, Default)]
pub struct SetPatterns {
    pub name: String,
    pub c: Vec<PathBuf>,
    pub cxx: Vec<PathBuf>,
}

impl Shared {
    /// The set whose patterns include `pattern` (absolute, normalized).
    pub fn set_of(&self, pattern: &Path) -> Option<&str> {
        self.sets
            .iter()
            .find(|s| s.c.iter().chain(&s.cxx).any(|p| p == pattern))
            .map(|s| s.name.as_str())
    }
}

/// Shell words of a flags variable: quoting removed as the shell running the recipe would.
pub fn shell_words(text: &str) -> Vec<String> {
    match recipe::commands(text) {
        Ok(commands) => commands.concat(),
        Err(_) => token::words(text).into_iter().map(String::from).collect(),
    }
}

/// Reads `src/mk/var.mk` (when there is one) and writes the workspace part of the translation.
pub fn translate(root: &Path, src: &Path, probes: &[String]) -> Result<(WorkspaceFile, Shared)> {
    let mut file = WorkspaceFile {
        probes: relpath::text(&relpath::relative(src, root)),
        skip: non_probe_dirs(src, probes)?,
        ..WorkspaceFile::default()
    };
    let mut shared = Shared::default();
    let mut explainer = Explainer::new(root);
    let var_mk = src.join(VAR_MK);
    if !var_mk.is_file() {
        file.notes.push(format!(
            "There is no {}: every flag and library is per probe.",
            relpath::text(&relpath::relative(&var_mk, root))
        ));
        return Ok((file, shared));
    }
    let mut eval = Evaluation::new(src);
    eval.read(&var_mk, VAR_MK)?;
    shared.var_mk = Some(var_mk.clone());
    for unread in eval.unread.clone() {
        explainer.unread(&unread);
    }
    installer_defaults(&eval.installer_assignments, &mut explainer);

    let value_words = |eval: &mut Evaluation, name: &str| -> (Vec<String>, Option<Location>) {
        let at = eval.defined_at(name);
        (
            eval.value(name)
                .map(|v| shell_words(&v))
                .unwrap_or_default(),
            at,
        )
    };
    let (clang_words, clang_at) = value_words(&mut eval, "CLANGFLAGS");
    let (c_words, c_at) = value_words(&mut eval, "CFLAGS");
    let (cxx_words, cxx_at) = value_words(&mut eval, "CXXFLAGS");
    let (ld_words, _) = value_words(&mut eval, "LDFLAGS");
    let (link_words, _) = value_words(&mut eval, "LINK_TARGET");
    let (base_inc_words, base_inc_at) = value_words(&mut eval, "BASE_INC");
    shared.clang = recipe::flags(&clang_words);
    shared.c = recipe::flags(&c_words);
    shared.cxx = recipe::flags(&cxx_words);
    shared.link = recipe::flags(&[ld_words, link_words].concat());
    let base_inc = recipe::flags(&base_inc_words);
    shared.base_includes = base_inc.includes.clone();

    let mut tool_defines = Vec::new();
    let mut btf = false;
    let bpf_defines = sort_defines(
        &eval,
        &shared.clang,
        &mut tool_defines,
        &mut btf,
        &mut explainer,
        "a define in CLANGFLAGS",
    );
    let c_defines = sort_defines(
        &eval,
        &shared.c,
        &mut tool_defines,
        &mut btf,
        &mut explainer,
        "a define in CFLAGS",
    );
    let build = &mut file.build;
    build.defines = bpf_defines
        .iter()
        .filter(|d| c_defines.contains(d))
        .cloned()
        .collect();
    build.bpf_flags = without(&shared.clang.other, &flags::strings(&BPF_BASE));
    build.bpf_flags.extend(
        without(&bpf_defines, &build.defines)
            .iter()
            .map(|d| format!("-D{d}")),
    );
    build.cflags = without(&shared.c.other, &flags::strings(&CC_BASE));
    build.cflags.extend(
        without(&c_defines, &build.defines)
            .iter()
            .map(|d| format!("-D{d}")),
    );
    build.cxxflags = without(&shared.cxx.other, &flags::strings(&CC_BASE));
    build.libs = without(&shared.link.libs, &flags::strings(&TOOL_LIBS));
    build.ldflags = shared.link.link_flags.clone();
    let mut build_opts = false;
    for (words, at) in [
        (&shared.clang.unknown, &clang_at),
        (&shared.c.unknown, &c_at),
        (&shared.cxx.unknown, &cxx_at),
    ] {
        for word in words.iter() {
            let ids = token::opaque_ids(word);
            if ids.len() == 1 && flags::is_build_opts(&eval.opaques[ids[0]]) {
                build_opts = true;
            } else if token::opaque_ids(word).is_empty() {
                if let Some(at) = at {
                    explainer.at(at, word, "a compiler argument import cannot place");
                }
            } else {
                explainer.words(&eval, std::slice::from_ref(word), "a compiler flag");
            }
        }
    }

    shared_sets(root, src, &mut eval, &mut file, &mut shared, &mut explainer);
    file.build.shared = shared.sets.iter().map(|s| s.name.clone()).collect();
    let set_dirs: Vec<PathBuf> = shared
        .sets
        .iter()
        .flat_map(|s| s.c.iter().chain(&s.cxx))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();

    // Include dirs: in the tree → [layout] include; system ones → system_includes. A shared set's directory
    // stays even when missing: the set's entry already says so, and both are needed once it is there.
    let mut includes = base_inc.includes.clone();
    for more in [&shared.clang.includes, &shared.c.includes] {
        includes.extend(more.iter().cloned());
    }
    let base_inc_at = base_inc_at.unwrap_or(Location {
        file: var_mk.clone(),
        line: 1,
    });
    let mut unknown_includes = Vec::new();
    for dir in includes {
        if !token::is_known(&dir) || token::has_glob(&dir) {
            // var.mk's CXXABI_INCLUDE_DIR: the C++ library's dirs, for C sources that include <cxxabi.h>.
            if dir.starts_with("/usr/include/c++/") {
                file.build.cxx_headers_in_c = true;
            } else {
                unknown_includes.push(format!("-I{dir}"));
            }
            continue;
        }
        if !dir.starts_with('/') {
            explainer.at(
                &base_inc_at,
                &format!("-I{dir}"),
                "a relative include dir in the shared fragment means each probe's own directory; ebpf-probe adds the probe directory itself",
            );
            continue;
        }
        let abs = relpath::normalize(Path::new(&dir));
        if abs == Path::new("/usr/include") {
            file.notes.push(
                "-I/usr/include is left out: it is the compilers' own search path.".to_string(),
            );
        } else if is_system_dir(&abs) {
            push_unique(&mut file.build.system_includes, relpath::text(&abs));
        } else if abs.is_dir() || set_dirs.contains(&abs) {
            if !shared.layout_dirs.contains(&abs) {
                shared.layout_dirs.push(abs.clone());
                file.include
                    .push(relpath::text(&relpath::relative(&abs, root)));
            }
        } else {
            explainer.at(
                &base_inc_at,
                &format!("-I{}", relpath::text(&relpath::relative(&abs, root))),
                "an include dir that does not exist in this tree; left out",
            );
        }
    }
    explainer.words(&eval, &unknown_includes, "include dirs");

    // The kernel header: where VMLINUX points.
    if let Some(vmlinux) = eval.value("VMLINUX").filter(|v| token::is_known(v)) {
        let path = relpath::normalize(&src.join(vmlinux.trim()));
        if let Some(dir) = path.parent().filter(|d| d.is_dir()) {
            file.kernel_header_dir = Some(relpath::text(&relpath::relative(dir, root)));
            file.ext_def = dir.join("ext_def.h").is_file();
        }
    }
    if file.kernel_header_dir.is_none() {
        file.ext_def = shared
            .layout_dirs
            .first()
            .is_some_and(|d| d.join("ext_def.h").is_file());
    }

    if !tool_defines.is_empty() || build_opts || !shared.link.libs.is_empty() {
        let mut left = Vec::new();
        if !tool_defines.is_empty() {
            left.push(format!(
                "{} (computed for the build machine)",
                tool_defines
                    .iter()
                    .map(|d| format!("-D{d}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        if build_opts {
            left.push("$(BUILD_OPTS) (read from the environment)".to_string());
        }
        let tool_libs: Vec<String> = shared
            .link
            .libs
            .iter()
            .filter(|l| TOOL_LIBS.contains(&l.as_str()))
            .map(|l| format!("-l{l}"))
            .collect();
        if !tool_libs.is_empty() {
            left.push(format!(
                "{} (always linked; -lbpf is the libbpf --libbpf chose)",
                tool_libs.join(" ")
            ));
        }
        file.notes
            .push(format!("Left to ebpf-probe: {}.", left.join("; ")));
    }
    if btf {
        file.notes.push(
            "-D__BTF_ENABLE_ON/OFF is per probe (its BTF_ENABLE_OVERRIDE); a probe that sets neither gets \
             btf_defines' choice: the first when the target kernel has BTF, as var.mk computed when make ran."
                .to_string(),
        );
        file.build.btf_defines = vec![
            "__BTF_ENABLE_ON".to_string(),
            "__BTF_ENABLE_OFF".to_string(),
        ];
    }
    if file.build.libs.iter().any(|l| l == "jsoncpp") {
        // Debian and Ubuntu keep json/json.h there; elsewhere the dir does not exist, which is harmless.
        push_unique(
            &mut file.build.system_includes,
            "/usr/include/jsoncpp".to_string(),
        );
    }
    shared.build = file.build.clone();
    file.untranslated = explainer.entries;
    Ok((file, shared))
}

/// The defines of `flags` that [build] or a probe can take as they are; the tool's own are collected by name.
pub fn sort_defines(
    eval: &Evaluation,
    flags: &Flags,
    tool_defines: &mut Vec<String>,
    btf: &mut bool,
    explainer: &mut Explainer,
    role: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for define in &flags.defines {
        if flags::is_tool_define(define) {
            // `__TARGET_ARCH_$(TYPE)` is named `__TARGET_ARCH_*`.
            let name: String = token::pieces(define.split('=').next().unwrap_or_default())
                .into_iter()
                .map(|p| match p {
                    token::Piece::Text(t) => t.to_string(),
                    _ => "*".to_string(),
                })
                .collect();
            push_unique(tool_defines, name);
        } else if flags::is_btf_define(define) {
            *btf = true;
        } else if !token::is_known(define) {
            explainer.words(eval, &[format!("-D{define}")], role);
        } else {
            push_unique(&mut out, define.clone());
        }
    }
    out
}

/// CFILES and CPLUSFILES, grouped by directory into named sets (`lib`, `common`).
fn shared_sets(
    root: &Path,
    src: &Path,
    eval: &mut Evaluation,
    file: &mut WorkspaceFile,
    shared: &mut Shared,
    explainer: &mut Explainer,
) {
    for (variable, cxx) in [("CFILES", false), ("CPLUSFILES", true)] {
        let at = eval.defined_at(variable);
        let Some(value) = eval.value(variable) else {
            continue;
        };
        for word in token::words(&value) {
            if !token::is_known(word) {
                explainer.words(eval, &[word.to_string()], "shared sources");
                continue;
            }
            let pattern = relpath::normalize(&src.join(token::unglob(word)));
            let dir = pattern.parent().unwrap_or(Path::new("/")).to_path_buf();
            let index = match shared
                .sets
                .iter()
                .position(|s| s.c.iter().chain(&s.cxx).any(|p| p.parent() == Some(&dir)))
            {
                Some(index) => index,
                None => {
                    let base = dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "shared".into());
                    let mut name = base.clone();
                    let mut n = 2;
                    while shared.sets.iter().any(|s| s.name == name) {
                        name = format!("{base}{n}");
                        n += 1;
                    }
                    shared.sets.push(SetPatterns {
                        name: name.clone(),
                        ..SetPatterns::default()
                    });
                    file.sources.push(SourceSet {
                        name,
                        ..SourceSet::default()
                    });
                    if !dir.is_dir() {
                        let named = directory_variable(eval, &dir)
                            .map(|v| format!(" ({v})"))
                            .unwrap_or_default();
                        if let Some(at) = &at {
                            explainer.at(
                                at,
                                &relpath::text(&relpath::relative(&pattern, root)),
                                &format!(
                                    "the shared sources are expected in `{}`{named}, which does not exist; \
                                     the set is written anyway, and builds need that directory (gala-gopher's \
                                     src/common when this is its ebpf.probe tree)",
                                    relpath::text(&relpath::relative(&dir, root))
                                ),
                            );
                        }
                    }
                    shared.sets.len() - 1
                }
            };
            let relative = relpath::text(&relpath::relative(&pattern, root));
            if cxx {
                shared.sets[index].cxx.push(pattern);
                file.sources[index].cxx.push(relative);
            } else {
                shared.sets[index].c.push(pattern);
                file.sources[index].c.push(relative);
            }
        }
    }
}

/// The variable of the fragment whose value is `dir` (GOPHER_COMMON_DIR), for messages.
fn directory_variable(eval: &mut Evaluation, dir: &Path) -> Option<String> {
    for name in ["GOPHER_COMMON_DIR", "LIB_DIR", "COMMON_DIR"] {
        if let Some(value) = eval.value(name) {
            if token::is_known(&value) && relpath::normalize(&eval.cwd.join(value.trim())) == dir {
                return Some(name.to_string());
            }
        }
    }
    None
}

/// Installer directories given values other than ebpf-probe install's defaults.
pub fn installer_defaults(assignments: &[(Location, String, String)], explainer: &mut Explainer) {
    for (at, name, value) in assignments {
        let default = match name.as_str() {
            "INSTALL_DIR" => crate::core::artifacts::DEFAULT_BIN_DIR,
            "META_INSTALL_DIR" => crate::core::artifacts::DEFAULT_META_DIR,
            _ => crate::core::artifacts::DEFAULT_CONF_DIR,
        };
        if value != default {
            explainer.at(
                at,
                &format!("{name}={value}"),
                &format!(
                    "install.sh passes {name} on make's command line, which wins over this; \
                     `ebpf-probe install` takes the directory from -b/-m/-c (default {default})"
                ),
            );
        }
    }
}

fn is_system_dir(dir: &Path) -> bool {
    ["/usr", "/opt", "/lib", "/lib64"]
        .iter()
        .any(|prefix| dir.starts_with(prefix))
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Directories under `src/` that are not probes, sorted.
fn non_probe_dirs(src: &Path, probes: &[String]) -> Result<Vec<String>> {
    let mut skip = Vec::new();
    for entry in std::fs::read_dir(src)
        .map_err(|e| anyhow::anyhow!("failed to list `{}`: {e}", src.display()))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !name.starts_with('.') && !probes.contains(&name) {
            skip.push(name);
        }
    }
    skip.sort();
    Ok(skip)
}
