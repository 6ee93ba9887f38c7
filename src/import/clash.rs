//! Two probes whose Makefiles install different objects under one name (gala-gopher's ksliprobe and pgsliprobe
//! both `cp tc_tstamp.bpf.o $(INSTALL_DIR)`): make lets the last copy win, by directory order, so one probe loads
//! the other's program. `install` refuses such a clash, so import keeps the first probe's install (the one
//! make's `find` order usually runs first), drops the later one's and lists it, instead of guessing.

use std::path::Path;

use super::model::{ProbeFile, Untranslated};

/// Drops the installs of objects that an earlier probe (in name order) already installs under the same name with
/// other bytes, and returns what it dropped, each pointing at the Makefile's install line.
pub fn drop_clashing_installs(
    root: &Path,
    src: &Path,
    files: &mut [ProbeFile],
) -> Vec<Untranslated> {
    let mut taken: Vec<(String, String, Vec<u8>)> = Vec::new();
    let mut dropped = Vec::new();
    for file in files.iter_mut() {
        let dir = src.join(&file.name);
        for object in file.objects.iter_mut() {
            let Some(install) = object.install.clone() else {
                continue;
            };
            let sources = crate::paths::glob_files(&dir, std::slice::from_ref(&object.source))
                .unwrap_or_default();
            let mut clash = None;
            for source in &sources {
                let name = source.file_name().unwrap_or_default().to_string_lossy();
                let object_name = format!("{}.bpf.o", name.trim_end_matches(".bpf.c"));
                let destination = match install.as_str() {
                    "." => object_name,
                    dir => format!("{dir}/{object_name}"),
                };
                let bytes = std::fs::read(source).unwrap_or_default();
                match taken.iter().find(|(d, _, _)| *d == destination) {
                    Some((_, owner, theirs)) if *theirs != bytes => {
                        clash = Some((destination, owner.clone()));
                    }
                    Some(_) => {}
                    None => taken.push((destination, file.name.clone(), bytes)),
                }
            }
            if let Some((destination, owner)) = clash {
                object.install = None;
                let makefile = dir.join("Makefile");
                dropped.push(Untranslated {
                    line: install_line(&makefile),
                    file: makefile.strip_prefix(root).unwrap_or(&makefile).to_path_buf(),
                    construct: format!("install of {} to {destination}", object.source),
                    why: format!(
                        "probe `{owner}` installs a different {destination} to the same place (make's last copy \
                         wins, by directory order, and one probe then loads the other's program); not installed \
                         for this probe: give it its own `install` subdirectory and the path its loader opens"
                    ),
                });
            }
        }
    }
    dropped
}

/// The Makefile line that copies a BPF object into the install dir (the first such `cp`), or 1.
fn install_line(makefile: &Path) -> usize {
    let text = std::fs::read_to_string(makefile).unwrap_or_default();
    text.lines()
        .position(|l| {
            let l = l.trim();
            l.starts_with("cp ")
                && l.contains("INSTALL_DIR")
                && !l.contains("$(APP)")
                && !l.contains("META")
        })
        .map_or(1, |i| i + 1)
}
