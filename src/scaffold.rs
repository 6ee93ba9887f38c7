//! `new <probe>` and `init DIR`: a new probe rendered from `templates/`, and a new workspace with the C SDK.
//! Both build the result in a hidden temp directory and rename it into place, so an interrupted or failed
//! run leaves nothing half-written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::core::probe::Userland;
use crate::core::workspace::{Workspace, MARKER};
use crate::embedded;
use crate::paths;
use crate::tool::{self, Cmd, ToolKind};

/// gala-gopher's IMDB keeps table names in 32 bytes with the NUL; the probe name is the table name.
pub const MAX_NAME_LEN: usize = 31;

/// Where the generated probe attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    Tracepoint { category: String, name: String },
    RawTracepoint { name: String },
    Kprobe { function: String },
    Uprobe { binary: String, symbol: String },
    Uretprobe { binary: String, symbol: String },
}

impl Attach {
    /// The target as `compat` resolves it (a uretprobe attaches where a uprobe does).
    pub fn target(&self) -> crate::targets::needs::Attach {
        use crate::targets::needs::Attach as Target;
        match self.clone() {
            Attach::Tracepoint { category, name } => Target::Tracepoint { category, name },
            Attach::RawTracepoint { name } => Target::RawTracepoint { name },
            Attach::Kprobe { function } => Target::Kprobe { function },
            Attach::Uprobe { binary, symbol } | Attach::Uretprobe { binary, symbol } => {
                Target::Uprobe { binary, symbol }
            }
        }
    }

    pub fn parse(spec: &str) -> Result<Attach> {
        let usage = "expected tracepoint:CATEGORY/NAME, raw_tracepoint:NAME, kprobe:FUNC, uprobe:BINARY:SYMBOL or uretprobe:BINARY:SYMBOL";
        let Some((kind, target)) = spec.split_once(':') else {
            bail!("`{spec}` is not an attach point: {usage}");
        };
        let ident = |what: &str, s: &str| -> Result<String> {
            if is_c_identifier(s) {
                Ok(s.to_string())
            } else {
                bail!("`{s}` is not a valid {what} in `{spec}` (letters, digits and `_`): {usage}")
            }
        };
        Ok(match kind {
            "tracepoint" | "tp" => {
                let Some((category, name)) = target.split_once('/') else {
                    bail!("`{spec}` needs CATEGORY/NAME, e.g. tracepoint:sched/sched_process_exec");
                };
                Attach::Tracepoint {
                    category: ident("tracepoint category", category)?,
                    name: ident("tracepoint name", name)?,
                }
            }
            "raw_tracepoint" | "raw_tp" => Attach::RawTracepoint {
                name: ident("raw tracepoint", target)?,
            },
            "kprobe" => Attach::Kprobe {
                function: ident("kernel function", target)?,
            },
            "uprobe" | "uretprobe" => {
                let Some((binary, symbol)) = target.rsplit_once(':') else {
                    bail!("`{spec}` needs BINARY:SYMBOL, e.g. {kind}:libc.so.6:getaddrinfo");
                };
                if binary.is_empty() || binary.contains(['"', '\\', '\n', '*', '%']) {
                    bail!("`{binary}` is not a usable binary path in `{spec}`");
                }
                let symbol_ok = !symbol.is_empty()
                    && symbol
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@'));
                if !symbol_ok {
                    bail!("`{symbol}` is not a symbol name in `{spec}`");
                }
                let (binary, symbol) = (binary.to_string(), symbol.to_string());
                if kind == "uprobe" {
                    Attach::Uprobe { binary, symbol }
                } else {
                    Attach::Uretprobe { binary, symbol }
                }
            }
            other => bail!("unknown attach kind `{other}` in `{spec}`: {usage}"),
        })
    }

    /// The template directories rendered, in order (see templates/README.md): the shared C header and meta,
    /// the loader (C or Rust; `kernel` for auto-attached kinds, `user` for uprobes), the kind's `.bpf.c`.
    fn template_dirs(&self, userland: Userland) -> Vec<&'static str> {
        let (loader, kind) = match self {
            Attach::Tracepoint { .. } => ("kernel", "c/tracepoint"),
            Attach::RawTracepoint { .. } => ("kernel", "c/raw_tracepoint"),
            Attach::Kprobe { .. } => ("kernel", "c/kprobe"),
            Attach::Uprobe { .. } => ("user", "c/uprobe"),
            Attach::Uretprobe { .. } => ("user", "c/uretprobe"),
        };
        match (userland, loader) {
            (Userland::C, "kernel") => vec!["c/common", "c/kernel", kind],
            (Userland::C, _) => vec!["c/common", "c/user", kind],
            (Userland::Rust, "kernel") => vec!["c/common", "rust/common", "rust/kernel", kind],
            (Userland::Rust, _) => vec!["c/common", "rust/common", "rust/user", kind],
        }
    }

    fn placeholders(&self, values: &mut BTreeMap<&'static str, String>) {
        let (value_name, value_description) = match self {
            Attach::Tracepoint { .. } => ("cpu", "CPU the tracepoint fired on"),
            Attach::RawTracepoint { .. } => {
                ("arg0", "first raw tracepoint argument (ctx->args[0])")
            }
            Attach::Kprobe { .. } => ("arg1", "first argument of the kernel function"),
            Attach::Uprobe { .. } => ("arg1", "first argument of the traced function"),
            Attach::Uretprobe { .. } => ("ret", "return value of the traced function"),
        };
        values.insert("value_name", value_name.into());
        values.insert("value_description", value_description.into());
        match self {
            Attach::Tracepoint { category, name } => {
                values.insert("tp_category", category.clone());
                values.insert("tp_name", name.clone());
            }
            Attach::RawTracepoint { name } => {
                values.insert("raw_tp", name.clone());
            }
            Attach::Kprobe { function } => {
                values.insert("kprobe_func", function.clone());
            }
            Attach::Uprobe { binary, symbol } | Attach::Uretprobe { binary, symbol } => {
                values.insert("uprobe_binary", binary.clone());
                values.insert("uprobe_symbol", symbol.clone());
                let is_entry = matches!(self, Attach::Uprobe { .. });
                let (attach_macro, rust_attach_fn, prog_prefix) = if is_entry {
                    ("UBPF_ATTACH", "attach_uprobe", "ubpf_")
                } else {
                    ("UBPF_RET_ATTACH", "attach_uretprobe", "ubpf_ret_")
                };
                values.insert("attach_macro", attach_macro.into());
                values.insert("rust_attach_fn", rust_attach_fn.into());
                let name = values.get("name").cloned().unwrap_or_default();
                values.insert("prog_name", format!("{prog_prefix}{name}"));
            }
        }
    }
}

pub struct NewOptions {
    pub name: String,
    pub userland: Userland,
    pub attach: Attach,
    /// The attach point as the user wrote it, for comments in the generated files.
    pub attach_spec: String,
    pub binary: Option<String>,
}

/// C keywords, and names that would clash with the SDK, libbpf or the layout.
const RESERVED: &[&str] = &[
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "bool",
    "true",
    "false",
    "asm",
    "typeof",
    "main",
    "bpf",
    "vmlinux",
    "libbpf",
    "include",
    "lib",
    "probes",
    "templates",
    "ext_def",
    "probe_util",
    "elf_path",
];

pub fn is_c_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Why `name` cannot be a probe name, if it cannot.
pub fn validate_probe_name(name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("the probe name is empty");
    }
    if name.contains('/') || name.contains("..") || name.starts_with('.') {
        bail!("`{name}` is a path, not a name: give a plain name such as `killprobe2` (the probe goes to probes/<name>/)");
    }
    if !is_c_identifier(name) {
        bail!("`{name}` is not a C identifier (letters, digits and `_`, not starting with a digit); it names C symbols such as `struct {name}_bpf`");
    }
    if name.len() > MAX_NAME_LEN {
        bail!(
            "`{name}` is {} characters; gala-gopher table names hold at most {MAX_NAME_LEN}, and the probe name is its table name",
            name.len()
        );
    }
    if name.contains("__") || name.ends_with('_') {
        bail!("`{name}` has `__` or ends with `_`; such names map to clashing Rust type names (`a__b`, `a_`): pick another");
    }
    if RESERVED.contains(&name) {
        bail!("`{name}` is reserved (a C keyword or a name the SDK, libbpf or the workspace layout uses); pick another");
    }
    Ok(())
}

/// Creates `probes/<name>/` from the templates; returns the new directory.
pub fn new_probe(workspace: &Workspace, options: &NewOptions) -> Result<PathBuf> {
    validate_probe_name(&options.name)?;
    if let Some(binary) = &options.binary {
        crate::core::probe::validate_binary_name(binary).context("invalid `--binary`")?;
    }
    let probes_dir = workspace.probes_dir();
    let target = probes_dir.join(&options.name);
    if std::fs::symlink_metadata(&target).is_ok() {
        bail!(
            "`{}` already exists; choose another name or remove it first",
            target.display()
        );
    }
    if workspace
        .probes()?
        .iter()
        .any(|p| p.binary_name() == options.binary.as_deref().unwrap_or(&options.name))
    {
        bail!(
            "another probe already builds a binary named `{}`; pass `--binary NAME`",
            options.binary.as_deref().unwrap_or(&options.name)
        );
    }

    let mut values = BTreeMap::new();
    values.insert("name", options.name.clone());
    values.insert("NAME", options.name.to_ascii_uppercase());
    // The Rust type names libbpf-cargo and the meta generator derive from the name (`exec_watch` → `ExecWatch`).
    values.insert("Name", crate::names::camel_case(&options.name));
    values.insert("table", options.name.clone());
    values.insert(
        "binary",
        options
            .binary
            .clone()
            .unwrap_or_else(|| options.name.clone()),
    );
    values.insert("attach", options.attach_spec.clone());
    options.attach.placeholders(&mut values);

    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for dir in options.attach.template_dirs(options.userland) {
        let prefix = format!("{dir}/");
        for (path, contents) in embedded::TEMPLATES
            .iter()
            .filter(|(p, _)| p.starts_with(&prefix))
        {
            let relative = path[prefix.len()..].replace("__name__", &options.name);
            let text = std::str::from_utf8(contents)
                .with_context(|| format!("template `{path}` is not UTF-8"))?;
            files.push((
                relative,
                render(text, &values)
                    .with_context(|| format!("in template `templates/{path}`"))?
                    .into_bytes(),
            ));
        }
    }
    if files.is_empty() {
        bail!(
            "this ebpf-probe has no templates for `{}` built in",
            options.attach_spec
        );
    }
    if let Some(binary) = &options.binary {
        files.push((
            "probe.toml".into(),
            format!(
                "# Per-probe build settings (see README: probe.toml).\nbinary = \"{binary}\"\n"
            )
            .into_bytes(),
        ));
    }
    paths::create_dir_all(probes_dir)?;
    if options.userland == Userland::C {
        create_dir_atomically(&target, &files)?;
        return Ok(target);
    }
    // A Rust probe joins the cargo workspace; if the directory cannot be created, Cargo.toml is put back.
    let cargo_toml = workspace.root.join("Cargo.toml");
    let before = std::fs::read_to_string(&cargo_toml).ok();
    add_rust_workspace_member(workspace, &format!("probes/{}", options.name))?;
    if let Err(error) = create_dir_atomically(&target, &files) {
        match &before {
            Some(text) => paths::write_atomic(&cargo_toml, text.as_bytes())?,
            None => paths::remove_file_if_exists(&cargo_toml)?,
        }
        return Err(error);
    }
    Ok(target)
}

/// Adds `member` to the workspace's cargo `members`, creating the cargo workspace (root Cargo.toml and the Rust
/// SDK crates under `sdk/`) when this probe tree has none yet.
fn add_rust_workspace_member(workspace: &Workspace, member: &str) -> Result<()> {
    let cargo_toml = workspace.root.join("Cargo.toml");
    for (path, contents) in embedded::SDK_CRATES {
        let target = workspace.root.join("sdk").join(path);
        if !target.exists() {
            paths::write_atomic(&target, contents)?;
        }
    }
    if !cargo_toml.exists() {
        let text = format!(
            "# Cargo workspace of this probe tree's Rust userlands and the ebpf-probe Rust SDK (written by `ebpf-probe new`).\n\
             [workspace]\nmembers = [\"sdk/libconfig\", \"sdk/rust\", \"sdk/skelgen\", \"{member}\"]\nresolver = \"2\"\n\n\
             [workspace.dependencies]\n# libbpf-cargo generates the skeletons libbpf-rs loads: the same exact version.\n\
             libbpf-rs = \"=0.27.2\"\nlibbpf-cargo = \"=0.27.2\"\nlibc = \"0.2\"\n"
        );
        return paths::write_atomic(&cargo_toml, text.as_bytes());
    }
    let text = paths::read_to_string(&cargo_toml)?;
    let parsed: toml::Value = toml::from_str(&text).with_context(|| {
        format!(
            "cannot read `{}` to add the probe to its workspace",
            cargo_toml.display()
        )
    })?;
    let Some(members) = parsed
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
    else {
        bail!(
            "`{}` has no [workspace] members list; add `members = [\"{member}\"]` under [workspace] and run `new` again",
            cargo_toml.display()
        );
    };
    if members.iter().any(|m| m.as_str() == Some(member)) {
        return Ok(());
    }
    let Some(at) = text
        .find("members")
        .and_then(|m| text[m..].find('[').map(|b| m + b + 1))
    else {
        bail!(
            "cannot find the `members = [` list in `{}`",
            cargo_toml.display()
        );
    };
    let updated = format!("{}\"{member}\", {}", &text[..at], &text[at..]);
    paths::write_atomic(&cargo_toml, updated.as_bytes())
}

/// Replaces every `{{key}}`; a placeholder without a value is an error, so templates cannot silently ship `{{x}}`.
pub fn render(template: &str, values: &BTreeMap<&'static str, String>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bail!("unclosed `{{{{` placeholder");
        };
        let key = &after[..end];
        match values.get(key) {
            Some(value) => out.push_str(value),
            None => bail!("placeholder `{{{{{key}}}}}` has no value for this kind of probe"),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Writes `files` into a hidden sibling of `target`, then renames it to `target`.
fn create_dir_atomically(target: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    if let Some(parent) = target.parent() {
        // What an interrupted `new` left here.
        paths::remove_abandoned_temp_files(parent);
    }
    let staging_dir = paths::temp_dir_beside(target)?;
    let staging = staging_dir.path().to_path_buf();
    let result = (|| -> Result<()> {
        for (relative, contents) in files {
            let path = staging.join(relative);
            if let Some(parent) = path.parent() {
                paths::create_dir_all(parent)?;
            }
            std::fs::write(&path, contents)
                .with_context(|| format!("failed to write `{}`", path.display()))?;
        }
        format_rust_sources(&staging, files);
        // A staging dir is made 0700; the probe dir is an ordinary one.
        paths::set_mode(&staging, 0o755)?;
        // rename(2) onto an existing non-empty directory fails, so a concurrent `new` cannot be clobbered.
        std::fs::rename(&staging, target)
            .with_context(|| format!("failed to move the new files into `{}`", target.display()))
    })();
    if result.is_ok() {
        // Renamed into place: nothing is left for the guard to remove.
        let _ = staging_dir.keep();
    }
    result
}

/// Rendered Rust is laid out by rustfmt, as `cargo new` does, so a new probe passes `cargo fmt --check` whatever
/// the length of its name. rustfmt is optional: without it the files are kept as rendered, with a warning.
fn format_rust_sources(dir: &Path, files: &[(String, Vec<u8>)]) {
    let sources: Vec<PathBuf> = files
        .iter()
        .filter(|(p, _)| p.ends_with(".rs"))
        .map(|(p, _)| dir.join(p))
        .collect();
    if sources.is_empty() {
        return;
    }
    let formatted = tool::find(ToolKind::Rustfmt).and_then(|rustfmt| {
        Cmd::new(&rustfmt)
            .args(["--edition", "2021"])
            .args(&sources)
            .run()
            .map(|_| ())
    });
    if let Err(error) = formatted {
        eprintln!(
            "warning: the new Rust files were not formatted (rustfmt: {error:#}); run `cargo fmt`"
        );
    }
}

/// `init DIR` (or `-C DIR` on an empty directory): the marker, the C SDK, `lib/`, `probes/`, a .gitignore.
pub fn init_workspace(dir: &Path) -> Result<Workspace> {
    if dir.join(MARKER).exists() {
        bail!("`{}` is already an ebpf-probe workspace", dir.display());
    }
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "`{}` is not empty; create the workspace in an empty or new directory (or add an `{MARKER}` file yourself)",
                dir.display()
            );
        }
    }
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (MARKER.into(), b"# Marks the root of an ebpf-probe workspace: include/ (C SDK), lib/ (shared userland C), probes/.\n".to_vec()),
        (
            ".gitignore".into(),
            b"/.output\n/include/linux_*.h\n/include/vmlinux.h\n/compile_commands.json\n".to_vec(),
        ),
        ("probes/.keep".into(), Vec::new()),
    ];
    files.extend(
        embedded::SDK_INCLUDE
            .iter()
            .map(|(p, c)| (format!("include/{p}"), c.to_vec())),
    );
    files.extend(
        embedded::SDK_LIB
            .iter()
            .map(|(p, c)| (format!("lib/{p}"), c.to_vec())),
    );
    if dir.exists() {
        // An empty directory given by the user: fill it in place (it may be a mount point or owned by them).
        for (relative, contents) in &files {
            paths::write_atomic(&dir.join(relative), contents)?;
        }
    } else {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            paths::create_dir_all(parent)?;
        }
        create_dir_atomically(dir, &files)?;
    }
    Workspace::find(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_are_short_c_identifiers_that_clash_with_nothing() {
        assert!(validate_probe_name("killprobe2").is_ok());
        for bad in [
            "",
            "../x",
            "a/b",
            "/etc/passwd",
            "2fast",
            "has-dash",
            "with space",
            "int",
            "main",
            "__x",
            ".hidden",
        ] {
            assert!(validate_probe_name(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(validate_probe_name(&"a".repeat(31)).is_ok());
        assert!(validate_probe_name(&"a".repeat(32))
            .unwrap_err()
            .to_string()
            .contains("31"));
    }

    #[test]
    fn attach_specs_parse() {
        assert_eq!(
            Attach::parse("tracepoint:sched/sched_process_exec").unwrap(),
            Attach::Tracepoint {
                category: "sched".into(),
                name: "sched_process_exec".into()
            }
        );
        assert_eq!(
            Attach::parse("raw_tracepoint:sys_enter").unwrap(),
            Attach::RawTracepoint {
                name: "sys_enter".into()
            }
        );
        assert_eq!(
            Attach::parse("kprobe:do_nanosleep").unwrap(),
            Attach::Kprobe {
                function: "do_nanosleep".into()
            }
        );
        assert_eq!(
            Attach::parse("uretprobe:/usr/lib/x86_64-linux-gnu/libc.so.6:getaddrinfo").unwrap(),
            Attach::Uretprobe {
                binary: "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
                symbol: "getaddrinfo".into()
            }
        );
        for bad in [
            "tracepoint:sched",
            "fentry:x",
            "kprobe:a b",
            "uprobe:libc.so.6",
            "nothing",
        ] {
            assert!(Attach::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn render_fills_placeholders_and_refuses_unknown_ones() {
        let mut values = BTreeMap::new();
        values.insert("name", "p".to_string());
        assert_eq!(render("a {{name}} b {{name}}", &values).unwrap(), "a p b p");
        assert!(render("{{nope}}", &values).is_err());
        assert!(render("{{name", &values).is_err());
    }

    #[test]
    fn every_template_kind_has_files_and_no_unknown_placeholders() {
        for spec in [
            "tracepoint:a/b",
            "raw_tracepoint:c",
            "kprobe:d",
            "uprobe:e:f",
            "uretprobe:g:h",
        ] {
            let attach = Attach::parse(spec).unwrap();
            let mut values = BTreeMap::new();
            for key in ["name", "NAME", "Name", "table", "binary", "attach"] {
                values.insert(key, "x".to_string());
            }
            attach.placeholders(&mut values);
            let mut count = 0;
            for dir in attach
                .template_dirs(Userland::C)
                .into_iter()
                .chain(attach.template_dirs(Userland::Rust))
            {
                for (path, contents) in embedded::TEMPLATES
                    .iter()
                    .filter(|(p, _)| p.starts_with(&format!("{dir}/")))
                {
                    render(std::str::from_utf8(contents).unwrap(), &values)
                        .unwrap_or_else(|e| panic!("{path}: {e}"));
                    count += 1;
                }
            }
            assert!(
                count >= 8,
                "{spec}: {count} template files (C and Rust loaders)"
            );
        }
    }
}
