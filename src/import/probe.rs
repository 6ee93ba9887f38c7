//! Translating one probe's Makefile into its probe.toml: the recipes its default goal reaches (BPF compiles,
//! skeletons, C++ compiles, the program's link, shared libraries) and its `install` rule, less what every
//! probe gets from ebpf-probe.toml or from the tool itself.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::eval::{Evaluation, Location};
use super::explain::Explainer;
use super::flags::{self, without, BPF_BASE, CC_BASE, TOOL_LIBS};
use super::model::{Counts, Library, Object, ProbeFile};
use super::recipe::{self, Command, Flags};
use super::varmk::{self, Shared};
use super::{glob, relpath, rules, token};

/// One compile or link a recipe line runs, with where it is written.
#[derive(Debug, Clone)]
struct Run {
    at: Location,
    target: String,
    flags: Flags,
}

/// Everything the default goal's recipes do, sorted by kind.
#[derive(Debug, Default)]
struct Recipes {
    bpf: Vec<Run>,
    skeletons: Vec<String>,
    cxx: Vec<Run>,
    c_objects: Vec<Run>,
    programs: Vec<Run>,
    libraries: Vec<Run>,
}

struct Translation<'a> {
    dir: PathBuf,
    makefile: PathBuf,
    shared: &'a Shared,
    eval: Evaluation,
    explainer: Explainer,
    file: ProbeFile,
}

pub fn translate(root: &Path, src: &Path, name: &str, shared: &Shared) -> Result<ProbeFile> {
    let dir = src.join(name);
    let makefile = dir.join("Makefile");
    let mut eval = Evaluation::new(&dir);
    eval.read(&makefile, "Makefile")?;
    let mut t = Translation {
        dir,
        makefile,
        shared,
        eval,
        explainer: Explainer::new(root),
        file: ProbeFile {
            name: name.to_string(),
            ..ProbeFile::default()
        },
    };
    t.own_unread();
    let Some(goal) = t.eval.default_goal.clone() else {
        let at = t.location(1);
        t.explainer.at(
            &at,
            "Makefile",
            "no rule to build: the probe gets only the defaults",
        );
        t.file.untranslated = t.explainer.entries;
        return Ok(t.file);
    };
    let recipes = t.recipes(&goal);
    t.program(&recipes);
    t.bpf(&recipes);
    t.libraries(&recipes);
    t.install(&recipes);
    t.dir_trees();
    t.counts();
    t.file.untranslated = t.explainer.entries;
    Ok(t.file)
}

impl Translation<'_> {
    fn location(&self, line: usize) -> Location {
        Location {
            file: self.makefile.clone(),
            line,
        }
    }

    fn in_var_mk(&self, at: &Location) -> bool {
        self.shared.var_mk.as_deref() == Some(at.file.as_path())
    }

    /// Statements of the probe's own files that were not applied (var.mk's are reported once, for the workspace).
    fn own_unread(&mut self) {
        for unread in self.eval.unread.clone() {
            if !self.in_var_mk(&unread.at) {
                self.explainer.unread(&unread);
            }
        }
        let mine: Vec<_> = self
            .eval
            .installer_assignments
            .iter()
            .filter(|(at, _, _)| !self.in_var_mk(at))
            .cloned()
            .collect();
        varmk::installer_defaults(&mine, &mut self.explainer);
    }

    fn recipes(&mut self, goal: &str) -> Recipes {
        let mut out = Recipes::default();
        for step in rules::reach(&self.eval, goal) {
            let Some(index) = step.recipe_rule else {
                continue;
            };
            let rule = self.eval.rules[index].clone();
            let lines = self
                .eval
                .expand_recipe(&rule, &step.target, &step.prereqs, &step.stem);
            for ((at, expanded), (_, raw)) in lines.iter().zip(&rule.recipe) {
                let line = recipe::without_prefixes(expanded);
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let commands = match recipe::commands(line) {
                    Ok(c) => c,
                    Err(why) => {
                        self.explainer
                            .at(at, raw, &format!("a recipe line with {why}"));
                        continue;
                    }
                };
                for words in commands {
                    let run = |flags: Flags| Run {
                        at: at.clone(),
                        target: step.target.clone(),
                        flags,
                    };
                    match recipe::classify(&words) {
                        Command::BpfCompile(f) => out.bpf.push(run(f)),
                        Command::Skeleton { object } => out.skeletons.push(object),
                        Command::CxxCompile(f) => out.cxx.push(run(f)),
                        Command::CcBuild(f) if f.compile_only => out.c_objects.push(run(f)),
                        Command::CcBuild(f) if f.shared => out.libraries.push(run(f)),
                        Command::CcBuild(f) => out.programs.push(run(f)),
                        Command::Ignored => {}
                        Command::Copy { .. } => self.explainer.at(
                            at,
                            raw,
                            "a copy while building: probe.toml has no step for it",
                        ),
                        Command::Other => {
                            self.explainer
                                .at(at, raw, "a command import does not translate")
                        }
                    }
                }
            }
        }
        out
    }

    /// A word as probe.toml writes a path: relative to the probe directory (globs kept), or `None` when it
    /// holds a value known only when make runs.
    fn relative(&self, word: &str) -> Option<String> {
        if !token::is_known(word) {
            return None;
        }
        let absolute = self.absolute(word);
        Some(relpath::text(&relpath::relative(&absolute, &self.dir)))
    }

    fn absolute(&self, word: &str) -> PathBuf {
        relpath::normalize(&self.dir.join(token::unglob(word)))
    }

    /// The program: its name, sources, shared sets, and the flags and libraries beyond [build]'s.
    fn program(&mut self, recipes: &Recipes) {
        let Some(link) = recipes.programs.first().cloned() else {
            let at = self.location(1);
            self.explainer.at(
                &at,
                "Makefile",
                "no recipe links a program: probe.toml names no binary",
            );
            return;
        };
        for extra in &recipes.programs[1..] {
            let name = token::unglob(&extra.target);
            self.explainer.at(
                &extra.at,
                &name,
                "a second program: a probe builds one binary",
            );
        }
        let binary = token::unglob(link.flags.output.as_deref().unwrap_or(&link.target));
        let binary = binary.rsplit('/').next().unwrap_or(&binary).to_string();
        if let Some(app) = self.eval.value("APP") {
            if token::is_known(&app) && app.trim() != binary {
                self.file.notes.push(format!(
                    "APP is `{}` but the link writes `{binary}`; binary follows the link.",
                    app.trim()
                ));
            }
        }
        self.file.binary = Some(binary);

        let compiles: Vec<Run> = recipes
            .c_objects
            .iter()
            .chain(&recipes.cxx)
            .cloned()
            .collect();
        for input in &link.flags.inputs {
            let plain = token::unglob(input);
            if plain.ends_with(".c") {
                self.source(input, false, &link.at);
            } else if plain.ends_with(".o") {
                let made_by = compiles
                    .iter()
                    .find(|c| c.flags.output.as_deref().unwrap_or(&c.target) == input.as_str());
                match made_by {
                    Some(compile) => {
                        for source in compile.flags.inputs.clone() {
                            let cxx = !token::unglob(&source).ends_with(".c");
                            self.source(&source, cxx, &compile.at);
                        }
                    }
                    None => self.explainer.at(
                        &link.at,
                        &token::unglob(input),
                        "an object no recipe reached from the default goal makes",
                    ),
                }
            } else if !plain.ends_with(".h") {
                self.explainer.at(
                    &link.at,
                    &super::explain::render(&self.eval, input),
                    "a link input that is not a C source or an object",
                );
            }
        }
        drop_covered(&mut self.file.sources);
        drop_covered(&mut self.file.cxx_sources);
        self.file.shared = self
            .shared
            .sets
            .iter()
            .map(|s| s.name.clone())
            .filter(|name| self.file.shared.contains(name))
            .collect();

        // Flags: every compile that goes into the program.
        let mut compile_flags: Vec<Flags> = vec![link.flags.clone()];
        compile_flags.extend(recipes.c_objects.iter().map(|r| r.flags.clone()));
        let bpf_flags: Vec<Flags> = recipes.bpf.iter().map(|r| r.flags.clone()).collect();
        let bpf_defines = self.defines(&bpf_flags, &link.at);
        let c_defines = self.defines(&compile_flags, &link.at);
        for define in &bpf_defines {
            if c_defines.contains(define) {
                push_unique(&mut self.file.defines, define.clone());
            } else {
                push_unique(&mut self.file.clang_flags, format!("-D{define}"));
            }
        }
        for define in without(&c_defines, &bpf_defines) {
            push_unique(&mut self.file.cflags, format!("-D{define}"));
        }
        let mut clang_other: Vec<String> = bpf_flags.iter().flat_map(|f| f.other.clone()).collect();
        clang_other = without(&clang_other, &self.shared.clang.other);
        self.file
            .clang_flags
            .splice(0..0, without(&clang_other, &flags::strings(&BPF_BASE)));
        let c_other: Vec<String> = compile_flags.iter().flat_map(|f| f.other.clone()).collect();
        let c_other = without(&c_other, &self.shared.c.other);
        self.file
            .cflags
            .splice(0..0, without(&c_other, &flags::strings(&CC_BASE)));
        let cxx_other: Vec<String> = recipes
            .cxx
            .iter()
            .flat_map(|r| r.flags.other.clone())
            .collect();
        let cxx_other = without(&cxx_other, &self.shared.cxx.other);
        self.file.cxxflags = without(&cxx_other, &flags::strings(&CC_BASE));
        let libs = without(&link.flags.libs, &self.shared.link.libs);
        self.file.libs = without(&libs, &flags::strings(&TOOL_LIBS));
        for flag in without(&link.flags.link_flags, &self.shared.link.link_flags) {
            push_unique(&mut self.file.libs, flag);
        }

        // Include dirs beyond the SDK's, from every compile.
        let mut all: Vec<Flags> = compile_flags;
        all.extend(bpf_flags);
        all.extend(recipes.cxx.iter().map(|r| r.flags.clone()));
        let mut includes = Vec::new();
        for f in &all {
            includes.extend(self.includes(f, &link.at, None));
        }
        self.file.includes = without(&includes, &[]);
        let mut unknown = Vec::new();
        for f in &all {
            for word in &f.unknown {
                if !self.is_inherited_unknown(word) {
                    unknown.push(word.clone());
                }
            }
        }
        self.explainer
            .words(&self.eval, &without(&unknown, &[]), "a compiler argument");
    }

    /// Whether an opaque word is one every probe gets from the shared fragment or the tool ($(BUILD_OPTS)).
    fn is_inherited_unknown(&self, word: &str) -> bool {
        let ids = token::opaque_ids(word);
        self.shared.c.unknown.contains(&word.to_string())
            || self.shared.clang.unknown.contains(&word.to_string())
            || (ids.len() == 1 && flags::is_build_opts(&self.eval.opaques[ids[0]]))
    }

    /// The defines of these compiles beyond [build]'s, BTF's handled by BTF_ENABLE_OVERRIDE.
    fn defines(&mut self, compiles: &[Flags], at: &Location) -> Vec<String> {
        let mut out = Vec::new();
        for f in compiles {
            let mut ignored = Vec::new();
            let mut btf = false;
            let defines = varmk::sort_defines(
                &self.eval,
                f,
                &mut ignored,
                &mut btf,
                &mut self.explainer,
                "a define",
            );
            if btf {
                self.btf(f, at);
            }
            for define in defines {
                let shared_flag = format!("-D{define}");
                if !self.shared.build.defines.contains(&define)
                    && !self.shared.build.bpf_flags.contains(&shared_flag)
                    && !self.shared.build.cflags.contains(&shared_flag)
                {
                    push_unique(&mut out, define);
                }
            }
        }
        out
    }

    /// `-D__BTF_ENABLE_…`: a value written out is kept; one var.mk computes comes from BTF_ENABLE_OVERRIDE.
    fn btf(&mut self, f: &Flags, at: &Location) {
        for define in f.defines.iter().filter(|d| flags::is_btf_define(d)) {
            if token::is_known(define) {
                push_unique(&mut self.file.defines, define.clone());
                continue;
            }
            if self.file.defines.iter().any(|d| flags::is_btf_define(d))
                || self
                    .file
                    .notes
                    .iter()
                    .any(|n| n.contains("BTF_ENABLE_OVERRIDE"))
            {
                continue;
            }
            match self.eval.value("BTF_ENABLE_OVERRIDE").map(|v| v.trim().to_string()) {
                Some(value) if value == "ON" || value == "OFF" => {
                    self.file.defines.push(format!("__BTF_ENABLE_{value}"));
                    self.file
                        .notes
                        .push(format!("defines: __BTF_ENABLE_{value} from BTF_ENABLE_OVERRIDE := {value}."));
                }
                Some(value) => {
                    let at = self.eval.defined_at("BTF_ENABLE_OVERRIDE").unwrap_or(at.clone());
                    self.explainer.at(
                        &at,
                        &format!("BTF_ENABLE_OVERRIDE := {value}"),
                        "a value other than ON or OFF",
                    );
                }
                None => self.file.notes.push(
                    "BTF_ENABLE_OVERRIDE is not set: no __BTF_ENABLE_* define here, so ebpf-probe's rule \
                     applies: __BTF_ENABLE_ON when /sys/kernel/btf/vmlinux exists, as var.mk computed it."
                        .to_string(),
                ),
            }
        }
    }

    /// The include dirs of one compile beyond the SDK's, relative to the probe; the JDK's make `jni` true.
    fn includes(&mut self, f: &Flags, at: &Location, mut jni: Option<&mut bool>) -> Vec<String> {
        let mut out = Vec::new();
        let mut unknown = Vec::new();
        for dir in &f.includes {
            if self.shared.base_includes.contains(dir) {
                continue;
            }
            if !token::is_known(dir) || token::has_glob(dir) {
                let ids = token::opaque_ids(dir);
                let java = !ids.is_empty()
                    && ids
                        .iter()
                        .all(|&i| flags::is_java_home(&self.eval.opaques[i]));
                match (&mut jni, java) {
                    (Some(flag), true) => **flag = true,
                    _ => unknown.push(format!("-I{dir}")),
                }
                continue;
            }
            let absolute = self.absolute(dir);
            if self.shared.layout_dirs.contains(&absolute) {
                continue;
            }
            if !absolute.is_dir() {
                self.explainer.at(
                    at,
                    &format!("-I{dir}"),
                    "an include dir that does not exist; left out",
                );
                continue;
            }
            push_unique(
                &mut out,
                relpath::text(&relpath::relative(&absolute, &self.dir)),
            );
        }
        self.explainer.words(&self.eval, &unknown, "an include dir");
        out
    }

    /// One source of the program: a shared set's pattern, or a probe source (C or C++).
    fn source(&mut self, word: &str, cxx: bool, at: &Location) {
        let Some(relative) = self.relative(word) else {
            self.explainer
                .words(&self.eval, &[word.to_string()], "a source");
            return;
        };
        if let Some(set) = self.shared.set_of(&self.absolute(word)) {
            push_unique(&mut self.file.shared, set.to_string());
            return;
        }
        if !token::has_glob(word) && !self.absolute(word).is_file() {
            self.explainer
                .at(at, &relative, "a source that does not exist; left out");
            return;
        }
        let list = if cxx {
            &mut self.file.cxx_sources
        } else {
            &mut self.file.sources
        };
        push_unique(list, relative);
    }

    /// BPF sources, and [[object]] entries for objects without a skeleton.
    fn bpf(&mut self, recipes: &Recipes) {
        for run in &recipes.bpf {
            let output = run.flags.output.clone().unwrap_or(run.target.clone());
            for input in &run.flags.inputs {
                if !token::unglob(input).ends_with(".c") {
                    continue;
                }
                let Some(source) = self.relative(input) else {
                    self.explainer
                        .words(&self.eval, std::slice::from_ref(input), "a BPF source");
                    continue;
                };
                push_unique(&mut self.file.bpf, source.clone());
                let skeleton = recipes.skeletons.iter().any(|s| {
                    s == &output || glob::matches(&token::unglob(s), &token::unglob(&output))
                });
                if !skeleton && !self.file.objects.iter().any(|o| o.source == source) {
                    self.file.objects.push(Object {
                        source,
                        skeleton: false,
                        install: None,
                    });
                }
            }
        }
        drop_covered(&mut self.file.bpf);
    }

    fn libraries(&mut self, recipes: &Recipes) {
        for run in &recipes.libraries {
            let name = token::unglob(run.flags.output.as_deref().unwrap_or(&run.target));
            let mut library = Library {
                name: name.rsplit('/').next().unwrap_or(&name).to_string(),
                ..Library::default()
            };
            for input in &run.flags.inputs {
                match self.relative(input) {
                    Some(source) if token::unglob(input).ends_with(".c") => {
                        push_unique(&mut library.sources, source)
                    }
                    _ => self.explainer.at(
                        &run.at,
                        &super::explain::render(&self.eval, input),
                        "a library input that is not a C source",
                    ),
                }
            }
            let mut jni = false;
            library.includes = self.includes(&run.flags, &run.at, Some(&mut jni));
            library.jni = jni;
            let other = without(&run.flags.other, &self.shared.c.other);
            library.cflags = without(&other, &flags::strings(&CC_BASE));
            let defines = self.defines(std::slice::from_ref(&run.flags), &run.at);
            for define in defines {
                if !self.file.defines.contains(&define) {
                    library.cflags.push(format!("-D{define}"));
                }
            }
            let extra_link: Vec<String> =
                without(&run.flags.link_flags, &self.shared.link.link_flags)
                    .into_iter()
                    .chain(run.flags.libs.iter().map(|l| format!("-l{l}")))
                    .collect();
            if !extra_link.is_empty() {
                self.explainer.at(
                    &run.at,
                    &extra_link.join(" "),
                    "link flags of a shared library: [[library]] has no key for them",
                );
            }
            let unknown: Vec<String> = run
                .flags
                .unknown
                .iter()
                .filter(|w| !self.is_inherited_unknown(w))
                .cloned()
                .collect();
            self.explainer
                .words(&self.eval, &unknown, "a compiler argument of a library");
            self.file.libraries.push(library);
        }
    }

    /// The `install` rule: which files go where (the binary and .meta files are what `ebpf-probe install`
    /// installs anyway; objects and libraries get their `install` key).
    fn install(&mut self, recipes: &Recipes) {
        let Some(step) = rules::find(&self.eval, "install") else {
            return;
        };
        let Some(index) = step.recipe_rule else {
            return;
        };
        let rule = self.eval.rules[index].clone();
        let lines = self.eval.expand_recipe(&rule, "install", &step.prereqs, "");
        let mut meta = Vec::new();
        for ((at, expanded), (_, raw)) in lines.iter().zip(&rule.recipe) {
            let Ok(commands) = recipe::commands(recipe::without_prefixes(expanded)) else {
                self.explainer
                    .at(at, raw, "an install line import cannot read");
                continue;
            };
            for words in commands {
                match recipe::classify(&words) {
                    Command::Copy {
                        sources,
                        destination,
                    } => self.copy(at, raw, &sources, &destination, recipes, &mut meta),
                    Command::Ignored => {}
                    _ => self
                        .explainer
                        .at(at, raw, "an install command import does not translate"),
                }
            }
        }
        let on_disk = glob::files(&self.dir.join("*.meta"));
        if !meta.is_empty() || !on_disk.is_empty() {
            if meta.is_empty() {
                self.file.notes.push(
                    "The install rule copies no .meta file: meta = [] (so none is installed)."
                        .to_string(),
                );
            }
            self.file.meta = Some(meta);
        }
    }

    fn copy(
        &mut self,
        at: &Location,
        raw: &str,
        sources: &[String],
        destination: &str,
        recipes: &Recipes,
        meta: &mut Vec<String>,
    ) {
        let pieces = token::pieces(destination);
        let (variable, subdir) = match pieces.as_slice() {
            [token::Piece::Symbol(v)] => (*v, ".".to_string()),
            [token::Piece::Symbol(v), token::Piece::Text(rest)] if rest.starts_with('/') => {
                let sub = rest.trim_matches('/');
                (
                    *v,
                    if sub.is_empty() {
                        ".".into()
                    } else {
                        sub.to_string()
                    },
                )
            }
            _ => {
                return self.explainer.at(
                    at,
                    raw,
                    "copies to a fixed path, not into $(INSTALL_DIR) or $(META_INSTALL_DIR)",
                )
            }
        };
        for source in sources {
            let name = token::unglob(source);
            match variable {
                "META_INSTALL_DIR" if subdir == "." && name.ends_with(".meta") => {
                    if let Some(relative) = self.relative(source) {
                        push_unique(meta, relative);
                    }
                }
                "INSTALL_DIR" => self.install_into(at, raw, source, &subdir, recipes),
                _ => self.explainer.at(
                    at,
                    raw,
                    "installs into a directory probe.toml does not describe (conf files go from the probe's conf/)",
                ),
            }
        }
    }

    fn install_into(
        &mut self,
        at: &Location,
        raw: &str,
        source: &str,
        subdir: &str,
        recipes: &Recipes,
    ) {
        let name = token::unglob(source);
        if self.file.binary.as_deref() == Some(name.as_str()) {
            if subdir != "." {
                self.explainer.at(
                    at,
                    raw,
                    "the binary goes into a subdirectory of the bin dir",
                );
            }
            return;
        }
        if let Some(library) = self.file.libraries.iter_mut().find(|l| l.name == name) {
            library.install = Some(subdir.to_string());
            return;
        }
        // A BPF object: the compile that writes it, directly or as one of a glob's files.
        let compile = recipes.bpf.iter().find(|r| {
            let output = token::unglob(r.flags.output.as_deref().unwrap_or(&r.target));
            output == name || glob::matches(&output, &name)
        });
        let Some(compile) = compile else {
            return self.explainer.at(
                at,
                raw,
                &format!("installs `{name}`, which no recipe of the default goal builds"),
            );
        };
        let output = token::unglob(compile.flags.output.as_deref().unwrap_or(&compile.target));
        let sources: Vec<String> = compile
            .flags
            .inputs
            .iter()
            .filter(|i| token::unglob(i).ends_with(".c"))
            .cloned()
            .collect();
        let source = if output == name {
            sources.first().and_then(|s| self.relative(s))
        } else {
            // `tc_tstamp.bpf.o` out of the `*.bpf.o` glob: its own source.
            rules::find(&self.eval, &name).and_then(|step| {
                step.prereqs
                    .iter()
                    .find(|p| p.ends_with(".c"))
                    .and_then(|p| self.relative(p))
            })
        };
        let Some(source) = source else {
            return self.explainer.at(
                at,
                raw,
                "installs a BPF object whose source import cannot name",
            );
        };
        let skeleton = !self
            .file
            .objects
            .iter()
            .any(|o| !o.skeleton && (o.source == source || glob::matches(&o.source, &source)));
        match self.file.objects.iter_mut().find(|o| o.source == source) {
            Some(object) => object.install = Some(subdir.to_string()),
            None => self.file.objects.push(Object {
                source,
                skeleton,
                install: Some(subdir.to_string()),
            }),
        }
    }

    /// `$(shell find DIR -maxdepth N -type d)` read as `DIR/**`: say so when files lie deeper than N.
    fn dir_trees(&mut self) {
        for tree in self.eval.dir_trees.clone() {
            if self.in_var_mk(&tree.at) {
                continue;
            }
            let Some(max_depth) = tree.max_depth else {
                continue;
            };
            let dir = self.absolute(&tree.dir);
            if let Some(deepest) = glob::deepest_file(&dir, "c") {
                if deepest > max_depth {
                    let relative = relpath::text(&relpath::relative(&dir, &self.dir));
                    self.explainer.at(
                        &tree.at,
                        &format!("$(shell find {} -maxdepth {max_depth} -type d)", tree.dir),
                        &format!(
                            "`{relative}/**` also takes the .c files deeper than {max_depth} levels that make leaves out"
                        ),
                    );
                }
            }
        }
    }

    fn counts(&mut self) {
        // The files a list of globs finds, once each; `*.bpf.c` never counts as a userland source.
        let count = |list: &[String], skip_bpf: bool| -> usize {
            let mut files: Vec<PathBuf> = list
                .iter()
                .flat_map(|p| glob::files(&relpath::normalize(&self.dir.join(p))))
                .filter(|f| !(skip_bpf && f.to_string_lossy().ends_with(".bpf.c")))
                .collect();
            files.sort();
            files.dedup();
            files.len()
        };
        self.file.counts = Counts {
            bpf: count(&self.file.bpf, false),
            sources: count(&self.file.sources, true),
            meta: count(self.file.meta.as_deref().unwrap_or_default(), false),
        };
    }
}

/// Drops plain paths a glob in the same list already covers (`endpoint.c` beside `*.c`).
fn drop_covered(list: &mut Vec<String>) {
    let globs: Vec<String> = list
        .iter()
        .filter(|p| p.contains(['*', '?']))
        .cloned()
        .collect();
    list.retain(|p| p.contains(['*', '?']) || !globs.iter().any(|g| glob::matches(g, p)));
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAR_MK: &str = "\
ROOT_DIR := $(dir $(abspath $(lastword $(MAKEFILE_LIST))))
COMMON := $(ROOT_DIR)../../../common
CFILES := $(wildcard $(ROOT_DIR)../lib/*.c) $(wildcard $(COMMON)/*.c)
CPLUSFILES := $(wildcard $(COMMON)/*.cpp)
CFLAGS := -g -O2 -Wall -fPIC -std=gnu11 -DLIBBPF_VER_MAJOR=$(shell echo 1) -D__BTF_ENABLE_$(shell echo $(BTF_ENABLE_OVERRIDE))
CLANGFLAGS := $(CFLAGS)
CXXFLAGS := -std=c++11
LINK_TARGET ?= -lbpf -lelf -lconfig
BASE_INC := -I$(ROOT_DIR)../include -I$(COMMON)
";

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn translate_probe(dir: &Path, name: &str) -> (crate::import::model::WorkspaceFile, ProbeFile) {
        let root = dir.join("e");
        let src = root.join("src");
        let (workspace, shared) = varmk::translate(&root, &src, &[name.to_string()]).unwrap();
        let file = translate(&root, &src, name, &shared).unwrap();
        (workspace, file)
    }

    #[test]
    fn static_patterns_installed_objects_without_skeletons_and_extra_clang_flags() {
        let dir = tree(&[
            ("e/src/mk/var.mk", VAR_MK),
            ("e/src/include/bpf.h", ""),
            ("e/src/lib/a.c", ""),
            ("common/c.c", ""),
            ("common/j.cpp", ""),
            ("e/src/kp/kp.c", ""),
            ("e/src/kp/kp.bpf.c", ""),
            ("e/src/kp/x.meta", ""),
            (
                "e/src/kp/Makefile",
                "BTF_ENABLE_OVERRIDE := ON\ninclude ../mk/var.mk\nAPP := kp\nBPF_C := $(wildcard *.bpf.c)\n\
                 SRC_C := $(filter-out $(BPF_C), $(wildcard *.c)) $(CFILES)\nOBJ_KERN := $(patsubst %.c, %.o, $(BPF_C))\n\
                 OBJ_CPLUS = $(patsubst %.cpp, %.o, $(abspath $(CPLUSFILES)))\nBPF_CFLAGS := -Wno-x -target bpf\n\
                 all: $(APP) $(OBJ_KERN)\n$(OBJ_CPLUS): %.o: %.cpp\n\tg++ -c $^ $(CXXFLAGS) $(BASE_INC) -o $@\n\
                 $(APP): $(SRC_C) $(OBJ_CPLUS)\n\t$(CC) $(CFLAGS) $(BASE_INC) $(LINK_TARGET) -lcurl -o $@ $^\n\
                 $(OBJ_KERN): $(BPF_C)\n\tclang $(CLANGFLAGS) $(BPF_CFLAGS) $(BASE_INC) -c $(filter %.c,$^) -o $@\n\
                 \tllvm-strip -g $@\ninstall:\n\tmkdir -p $(INSTALL_DIR)\n\tcp $(APP) $(INSTALL_DIR)\n\
                 \tcp $(OBJ_KERN) $(INSTALL_DIR)/kp_bpf\n\tcp $(wildcard *.meta) $(META_INSTALL_DIR)\n",
            ),
        ]);
        let (workspace, file) = translate_probe(dir.path(), "kp");
        assert_eq!(workspace.include, vec!["src/include", "../common"]);
        assert_eq!(workspace.build.libs, vec!["config"]);
        assert_eq!(workspace.build.bpf_flags, vec!["-fPIC", "-std=gnu11"]);
        assert!(
            workspace.untranslated.is_empty(),
            "{:?}",
            workspace.untranslated
        );
        assert_eq!(file.binary.as_deref(), Some("kp"));
        assert_eq!(file.defines, vec!["__BTF_ENABLE_ON"]);
        assert_eq!(file.clang_flags, vec!["-Wno-x"]);
        assert_eq!(file.libs, vec!["curl"]);
        assert_eq!(file.sources, vec!["*.c"]);
        assert_eq!(file.shared, vec!["lib", "common"]);
        assert_eq!(file.meta, Some(vec!["*.meta".to_string()]));
        assert_eq!(
            file.objects,
            vec![Object {
                source: "*.bpf.c".into(),
                skeleton: false,
                install: Some("kp_bpf".into())
            }]
        );
        assert!(file.untranslated.is_empty(), "{:?}", file.untranslated);
    }

    #[test]
    fn an_agent_with_jni_a_find_loop_and_what_is_left_untranslated() {
        let dir = tree(&[
            ("e/src/mk/var.mk", VAR_MK),
            ("e/src/include/bpf.h", ""),
            ("e/src/lib/a.c", ""),
            ("e/src/sp/sp.c", ""),
            ("e/src/sp/b/k.bpf.c", ""),
            ("e/src/sp/proto/x/y/z/deep.c", ""),
            ("e/src/sp/jvmti/agent.c", ""),
            (
                "e/src/sp/Makefile",
                "include ../mk/var.mk\nINCLUDES = $(BASE_INC) -I$(ROOT_DIR)/../sp/proto\nAPP := sp\nAGENT := agent.so\n\
                 BPF_C := $(wildcard b/*.bpf.c)\nDIRS = $(shell find ./proto -maxdepth 2 -type d)\n\
                 SRC_C := $(wildcard *.c) $(foreach d, $(DIRS), $(wildcard $(d)/*.c)) $(CFILES)\n\
                 ifndef JAVA_HOME\n\tJAVA_HOME := $(abspath $(dir $(realpath $(shell which javac)))/..)\nendif\n\
                 JNI := -I$(JAVA_HOME)/include -I$(JAVA_HOME)/include/linux\n\
                 all: $(patsubst %.bpf.c, %.skel.h, $(BPF_C)) app agent\n\
                 %.bpf.o: %.bpf.c\n\tclang $(CLANGFLAGS) -target bpf $(INCLUDES) -c $< -o $@\n\
                 %.skel.h: %.bpf.o\n\tbpftool gen skeleton $< > $@\n\tpython3 fix.py $@\n\
                 app: $(APP)\n%: %.c $(SRC_C)\n\t$(CC) $(CFLAGS) $(INCLUDES) $^ $(LINK_TARGET) -o $@\n\
                 agent: $(AGENT)\n$(AGENT): jvmti/agent.c\n\t$(CC) $(CFLAGS) -shared $(INCLUDES) $(JNI) $^ -o $@\n\
                 install:\n\tcp $(APP) $(AGENT) $(INSTALL_DIR)\n\tcp x.conf /etc/x\n",
            ),
        ]);
        let (workspace, file) = translate_probe(dir.path(), "sp");
        // The shared `common` directory is missing here: said once; the set and its include dir written.
        assert_eq!(
            workspace.untranslated.len(),
            1,
            "{:?}",
            workspace.untranslated
        );
        assert!(workspace.untranslated[0].why.contains("does not exist"));
        assert_eq!(workspace.include, vec!["src/include", "../common"]);
        assert_eq!(workspace.sources[1].c, vec!["../common/*.c"]);
        assert_eq!(file.bpf, vec!["b/*.bpf.c"]);
        assert!(
            file.objects.is_empty(),
            "skeletons are made: {:?}",
            file.objects
        );
        assert_eq!(file.sources, vec!["*.c", "proto/**/*.c"]);
        assert_eq!(file.includes, vec!["proto"]);
        assert_eq!(
            file.libraries,
            vec![Library {
                name: "agent.so".into(),
                sources: vec!["jvmti/agent.c".into()],
                includes: vec!["proto".into()],
                jni: true,
                install: Some(".".into()),
                ..Library::default()
            }]
        );
        assert!(file
            .notes
            .iter()
            .any(|n| n.contains("BTF_ENABLE_OVERRIDE is not set")));
        let listed: Vec<(usize, &str)> = file
            .untranslated
            .iter()
            .map(|u| (u.line, u.construct.as_str()))
            .collect();
        assert_eq!(
            listed,
            vec![
                (17, "python3 fix.py $@"),
                (26, "cp x.conf /etc/x"),
                (6, "$(shell find ./proto -maxdepth 2 -type d)"),
            ]
        );
    }
}
