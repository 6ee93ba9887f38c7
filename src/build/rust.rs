//! The Rust-userland path: after the probe's `*.bpf.c` is compiled like any other, `ebpf-probe-skelgen`
//! (libbpf-cargo, pinned to the probes' libbpf-rs) turns each object into `<stem>.skel.rs`, the `.meta` becomes
//! `meta.rs` (one struct per table, so a line the meta does not describe does not compile), and one cargo
//! invocation builds every Rust probe in the shared workspace target directory.
//!
//! Both cargo runs (the generator, then the probes) select `--workspace` and pick their executables with `--bin`:
//! cargo unifies dependency features over the packages selected, so the two runs resolve libbpf-rs and its
//! dependencies alike and it compiles once (selecting `-p ebpf-probe-skelgen` alone gave `bitflags` the `std`
//! feature libbpf-cargo's `tempfile` turns on, and the probes' run, without it, compiled libbpf-rs again).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::core::fresh;
use crate::core::probe::Probe;
use crate::core::workspace::Workspace;
use crate::meta::Table;
use crate::names::{camel_case, rust_ident};
use crate::paths;
use crate::tool::{self, Cmd, ToolKind};

pub const SKELGEN_PACKAGE: &str = "ebpf-probe-skelgen";

/// The cargo target directory of the workspace (`CARGO_TARGET_DIR` wins, as for cargo itself).
fn target_dir(workspace: &Workspace) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.root.join(dir),
        None => workspace.root.join("target"),
    }
}

fn cargo() -> Result<tool::Tool> {
    tool::find(ToolKind::Cargo)
        .context("Rust probes are built with cargo; install the Rust toolchain (https://rustup.rs)")
}

/// What a cargo build depends on besides the sources its dep-info lists: the toolchain and the environment cargo
/// reads. The manifests and the lock file are inputs (see `cargo_inputs`).
fn cargo_fingerprint(cargo: &tool::Tool) -> String {
    let rustc = tool::find_program("rustc")
        .map(|p| crate::toolchain::tool_identity(&p))
        .unwrap_or_default();
    let env: Vec<String> = [
        "CARGO_TARGET_DIR",
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ]
    .iter()
    .map(|name| format!("{name}={}", std::env::var(name).unwrap_or_default()))
    .collect();
    format!(
        "cargo {}\nrustc {rustc}\n{}\n",
        crate::toolchain::tool_identity(&cargo.program),
        env.join(" ")
    )
}

/// The files a cargo build reads that its dep-info does not list: every manifest of the workspace's Rust
/// crates, the lock file, cargo's config.
fn cargo_inputs(workspace: &Workspace, probe_dir: Option<&Path>) -> Vec<PathBuf> {
    let root = &workspace.root;
    let mut inputs = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    let config = root.join(".cargo/config.toml");
    if config.is_file() {
        inputs.push(config);
    }
    for entry in std::fs::read_dir(root.join("sdk"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let manifest = entry.path().join("Cargo.toml");
        if manifest.is_file() {
            inputs.push(manifest);
        }
    }
    if let Some(dir) = probe_dir {
        inputs.push(dir.join("Cargo.toml"));
    }
    inputs
}

/// Whether cargo's `artifact` is up to date without starting cargo: the record beside it (written after every
/// successful cargo run) holds this fingerprint, and neither a file its dep-info (`<artifact>.d`) lists nor a
/// manifest changed since that run. (cargo leaves an artifact it found fresh untouched, so the run's time, not
/// the artifact's, is what inputs are compared with.)
fn artifact_is_current(artifact: &Path, fingerprint: &str, inputs: &[PathBuf]) -> bool {
    let record = fresh::command_record(artifact);
    let Some(checked) = paths::mtime(&record) else {
        return false;
    };
    if !artifact.is_file() || std::fs::read_to_string(&record).ok().as_deref() != Some(fingerprint)
    {
        return false;
    }
    let Ok(depinfo) = std::fs::read_to_string(artifact.with_extension("d")) else {
        return false;
    };
    inputs
        .iter()
        .cloned()
        .chain(fresh::parse_depfile(&depinfo))
        .all(|input| paths::mtime(&input).is_some_and(|changed| changed <= checked))
}

/// Builds the skeleton generator unless cargo's last build of it is current (then cargo is not started);
/// returns its path.
pub fn build_skelgen(workspace: &Workspace, verbose: bool) -> Result<PathBuf> {
    if !workspace.root.join("Cargo.toml").is_file() {
        bail!(
            "Rust probes need a cargo workspace at `{}` (Cargo.toml with the probes and sdk/ as members); \
             `ebpf-probe new NAME --userland rust` creates it",
            workspace.root.display()
        );
    }
    let cargo = cargo()?;
    let artifact = target_dir(workspace).join("release").join(SKELGEN_PACKAGE);
    let fingerprint = cargo_fingerprint(&cargo);
    let inputs = cargo_inputs(workspace, None);
    if artifact_is_current(&artifact, &fingerprint, &inputs) {
        return Ok(artifact);
    }
    // Same package selection as the probes' run (see the module doc): only the generator is built.
    let cmd = Cmd::new(&cargo).cwd(&workspace.root).args([
        "build",
        "--release",
        "--workspace",
        "--bin",
        SKELGEN_PACKAGE,
    ]);
    if verbose {
        eprintln!("     Running `{cmd}`");
    }
    // A cold build compiles libbpf-sys here (the probes reuse it): cargo's progress goes to the terminal.
    let output = cmd.output_with_inherited_stderr()?;
    if !output.status.success() {
        bail!("could not build the Rust skeleton generator: `{cmd}` failed ({}); its errors are above", output.status);
    }
    fresh::record(&artifact, &fingerprint)?;
    Ok(artifact)
}

/// The probes whose cargo output and `.output/bin/` copy are current: cargo need not start for them.
pub fn current_probes(
    workspace: &Workspace,
    probes: &[&Probe],
) -> Result<Vec<(String, CargoArtifact)>> {
    let cargo = cargo()?;
    let fingerprint = cargo_fingerprint(&cargo);
    let release = target_dir(workspace).join("release");
    let mut current = Vec::new();
    for probe in probes {
        let artifact = release.join(probe.binary_name());
        let copy = workspace.bin_dir().join(probe.binary_name());
        let inputs = cargo_inputs(workspace, Some(&probe.dir));
        if artifact_is_current(&artifact, &fingerprint, &inputs)
            && paths::mtime(&copy).is_some_and(|copied| Some(copied) >= paths::mtime(&artifact))
        {
            current.push((
                probe.name.clone(),
                CargoArtifact {
                    executable: artifact,
                    fresh: true,
                },
            ));
        }
    }
    Ok(current)
}

/// Generates `<stem>.skel.rs` for each BPF object and `meta.rs` from the probe's `.meta` into `out_dir`;
/// returns whether anything was rewritten.
pub fn generate(
    probe: &Probe,
    tables: &[Table],
    out_dir: &Path,
    objects: &[PathBuf],
    skelgen: &Path,
) -> Result<bool> {
    let mut wrote = false;
    for object in objects {
        let name = object.file_name().unwrap_or_default().to_string_lossy();
        let stem = name.strip_suffix(".bpf.o").unwrap_or(&name);
        let skeleton = out_dir.join(format!("{stem}.skel.rs"));
        let command_to = |output: &Path| Cmd::program(skelgen).arg(object).arg(output);
        let fingerprint = format!("{}\n", command_to(&skeleton));
        let inputs = [object.clone(), skelgen.to_path_buf()];
        // Written beside and renamed, so an interrupted run never leaves a half skeleton cargo would trust.
        wrote |= fresh::rebuild_unless_fresh(
            &fresh::Step {
                output: &skeleton,
                fingerprint: &fingerprint,
                inputs: &inputs,
                depfile: None,
                deps_base: out_dir,
                times: None,
            },
            |temp| command_to(temp).run().map(drop),
        )?;
    }
    if tables.is_empty() {
        bail!(
            "Rust probe `{}` has no .meta table; its line structs are generated from `{}.meta`",
            probe.name,
            probe.name
        );
    }
    let code = meta_rs(tables);
    let meta_rs_path = out_dir.join("meta.rs");
    // Rewriting identical text would make cargo rebuild the probe for nothing.
    if std::fs::read_to_string(&meta_rs_path).ok().as_deref() != Some(code.as_str()) {
        paths::write_atomic(&meta_rs_path, code.as_bytes())?;
        wrote = true;
    }
    Ok(wrote)
}

/// A Rust probe's executable as cargo left it, and whether cargo found it already up to date.
pub struct CargoArtifact {
    pub executable: PathBuf,
    pub fresh: bool,
}

/// The executables a Rust probe's `Cargo.toml` declares: its `[[bin]]` names, else (`src/main.rs`) the package's.
fn cargo_bin_names(probe_dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(probe_dir.join("Cargo.toml")) else {
        return Vec::new();
    };
    let Ok(manifest) = toml::from_str::<toml::Value>(&text) else {
        return Vec::new();
    };
    let bins: Vec<String> = manifest
        .get("bin")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
        .filter_map(|bin| Some(bin.get("name")?.as_str()?.to_string()))
        .collect();
    if !bins.is_empty() {
        return bins;
    }
    let package = manifest
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str());
    match package {
        Some(name) if probe_dir.join("src/main.rs").is_file() => vec![name.to_string()],
        _ => Vec::new(),
    }
}

/// Why a probe has no executable after cargo ran: it failed (its errors are above), or its manifest declares
/// no binary of the probe's name, so it was not asked for.
fn missing_bin(probe: &Probe, declared: bool) -> anyhow::Error {
    let why = if declared {
        "cargo did not build it; its errors are above"
    } else {
        "its Cargo.toml declares no such binary"
    };
    anyhow::anyhow!(
        "no binary `{}` for probe `{}` ({why}; the [[bin]] name in `{}` must be `{}`)",
        probe.binary_name(),
        probe.name,
        probe.dir.join("Cargo.toml").display(),
        probe.binary_name()
    )
}

/// Builds `probes` (all Rust) with one cargo invocation; returns each probe's executable or why it failed.
pub fn cargo_build(
    workspace: &Workspace,
    probes: &[&Probe],
    verbose: bool,
) -> Result<Vec<(String, Result<CargoArtifact>)>> {
    // The generator's package selection (see the module doc), narrowed to the probes' executables. A probe whose
    // manifest lacks its executable is left out: `--bin` naming it would fail the whole run.
    let mut cmd = Cmd::new(&cargo()?).cwd(&workspace.root).args([
        "build",
        "--release",
        "--workspace",
        "--keep-going",
        "--message-format=json-render-diagnostics",
    ]);
    let declared: Vec<bool> = probes
        .iter()
        .map(|probe| {
            cargo_bin_names(&probe.dir)
                .iter()
                .any(|b| b == probe.binary_name())
        })
        .collect();
    if !declared.contains(&true) {
        return Ok(probes
            .iter()
            .map(|probe| (probe.name.clone(), Err(missing_bin(probe, false))))
            .collect());
    }
    for (probe, _) in probes.iter().zip(&declared).filter(|(_, d)| **d) {
        cmd = cmd.args(["--bin", probe.binary_name()]);
    }
    if verbose {
        eprintln!("     Running `{cmd}`");
    }
    // cargo's progress and compiler errors go straight to the terminal; its JSON says what was built.
    let output = cmd.output_with_inherited_stderr()?;
    let mut artifacts: Vec<(String, PathBuf, bool)> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        if let (Some(name), Some(executable)) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) {
            artifacts.push((
                name.to_string(),
                PathBuf::from(executable),
                message["fresh"].as_bool().unwrap_or(false),
            ));
        }
    }
    let fingerprint = cargo_fingerprint(&cargo()?);
    Ok(probes
        .iter()
        .zip(declared)
        .map(|(probe, declared)| {
            let found = artifacts
                .iter()
                .find(|(name, _, _)| name == probe.binary_name());
            let result = match found {
                Some((_, executable, fresh)) => {
                    fresh::record(executable, &fingerprint).map(|()| CargoArtifact {
                        executable: executable.clone(),
                        fresh: *fresh,
                    })
                }
                None => Err(missing_bin(probe, declared)),
            };
            (probe.name.clone(), result)
        })
        .collect())
}

/// Rust source with one struct per table: fields in meta order, each a `&dyn Display`.
pub fn meta_rs(tables: &[Table]) -> String {
    let mut out = String::from(
        "// Generated by ebpf-probe from the probe's .meta; do not edit (edit the .meta and rebuild).\n\
         // One struct per table: building one needs every field, in meta order, so a line can only have the\n\
         // fields gala-gopher expects.\n",
    );
    for table in tables {
        let type_name = camel_case(&table.name);
        out.push_str(&format!(
            "\n/// `|{}|…|` lines (entity `{}`).\n",
            table.name, table.entity
        ));
        // A probe need not print every table, nor use FIELDS.
        out.push_str("#[allow(dead_code)]\n");
        out.push_str(&format!("pub struct {type_name}<'a> {{\n"));
        for field in &table.fields {
            let description = field.description.replace('\n', " ");
            out.push_str(&format!("    /// {description} ({})\n", field.kind));
            out.push_str(&format!(
                "    pub {}: &'a dyn std::fmt::Display,\n",
                rust_ident(&field.name)
            ));
        }
        out.push_str("}\n\n");
        out.push_str("#[allow(dead_code)]\n");
        out.push_str(&format!("impl {type_name}<'_> {{\n"));
        out.push_str(&format!(
            "    pub const TABLE: &'static str = {:?};\n",
            table.name
        ));
        let names: Vec<String> = table
            .fields
            .iter()
            .map(|f| format!("{:?}", f.name))
            .collect();
        out.push_str(&format!(
            "    pub const FIELDS: &'static [&'static str] = &[{}];\n\n",
            names.join(", ")
        ));
        out.push_str("    /// Prints the line and flushes stdout.\n");
        out.push_str("    pub fn print(&self) -> std::io::Result<()> {\n");
        let values: Vec<String> = table
            .fields
            .iter()
            .map(|f| format!("self.{}", rust_ident(&f.name)))
            .collect();
        out.push_str(&format!(
            "        ebpf_probe_sdk::line::print_line(Self::TABLE, &[{}])\n",
            values.join(", ")
        ));
        out.push_str("    }\n}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Field;

    fn field(name: &str, kind: &str) -> Field {
        Field {
            name: name.into(),
            kind: kind.into(),
            description: format!("the {name}"),
            line: 1,
        }
    }

    #[test]
    fn a_probes_executables_are_its_bin_targets_else_its_package() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[package]\nname = \"p\"\n[[bin]]\nname = \"a\"\n[[bin]]\nname = \"b\"\n",
        )
        .unwrap();
        assert_eq!(cargo_bin_names(dir.path()), ["a", "b"]);
        std::fs::write(&manifest, "[package]\nname = \"p\"\n").unwrap();
        assert!(cargo_bin_names(dir.path()).is_empty());
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
        assert_eq!(cargo_bin_names(dir.path()), ["p"]);
    }

    #[test]
    fn meta_rs_has_a_struct_per_table_with_fields_in_order() {
        let table = Table {
            name: "tcp_link".into(),
            entity: "tcp".into(),
            line: 1,
            fields: vec![
                field("tgid", "key"),
                field("type", "label"),
                field("rx-bytes", "counter"),
            ],
        };
        let code = meta_rs(&[table]);
        assert!(code.contains("pub struct TcpLink<'a> {"), "{code}");
        assert!(
            code.contains("pub r#type: &'a dyn std::fmt::Display,"),
            "{code}"
        );
        assert!(
            code.contains("pub rx_bytes: &'a dyn std::fmt::Display,"),
            "{code}"
        );
        assert!(
            code.contains(
                r#"pub const FIELDS: &'static [&'static str] = &["tgid", "type", "rx-bytes"];"#
            ),
            "{code}"
        );
        assert!(
            code.contains("print_line(Self::TABLE, &[self.tgid, self.r#type, self.rx_bytes])"),
            "{code}"
        );
    }
}
