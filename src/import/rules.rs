//! Which rule makes a target, as make chooses it (an explicit rule with a recipe, else the pattern rule with
//! the shortest stem whose prerequisites exist or can be made), and every recipe a goal reaches.

use std::path::Path;

use super::eval::Evaluation;
use super::{percent, token};

/// How one target gets made: the rule whose recipe runs (if any), the prerequisites and the pattern stem.
#[derive(Debug, Clone)]
pub struct Step {
    pub target: String,
    /// Index into `Evaluation::rules` of the rule with the recipe.
    pub recipe_rule: Option<usize>,
    pub prereqs: Vec<String>,
    pub stem: String,
}

/// How `target` gets made, or `None` for a file no rule makes.
pub fn find(eval: &Evaluation, target: &str) -> Option<Step> {
    let explicit: Vec<usize> = eval
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.pattern && r.targets.iter().any(|t| t == target))
        .map(|(i, _)| i)
        .collect();
    let mut prereqs: Vec<String> = explicit
        .iter()
        .flat_map(|&i| eval.rules[i].prereqs.iter().cloned())
        .collect();
    if let Some(&with_recipe) = explicit.iter().find(|&&i| !eval.rules[i].recipe.is_empty()) {
        return Some(Step {
            target: target.to_string(),
            recipe_rule: Some(with_recipe),
            prereqs,
            stem: String::new(),
        });
    }
    // Make looks for a pattern rule's recipe even for a target with explicit rules, unless it is phony.
    let implicit = if eval.phony.iter().any(|p| p == target) {
        None
    } else {
        pattern_step(eval, target, 0)
    };
    match implicit {
        Some(mut step) => {
            step.prereqs.append(&mut prereqs);
            Some(step)
        }
        None if !explicit.is_empty() => Some(Step {
            target: target.to_string(),
            recipe_rule: None,
            prereqs,
            stem: String::new(),
        }),
        None => None,
    }
}

fn pattern_step(eval: &Evaluation, target: &str, depth: usize) -> Option<Step> {
    let is_glob = token::as_glob(target).is_some();
    let mut best: Option<Step> = None;
    for (index, rule) in eval.rules.iter().enumerate() {
        if !rule.pattern || rule.recipe.is_empty() {
            continue;
        }
        for pattern in &rule.targets {
            // A match-anything rule (`%: %.c`) makes programs from concrete names, never a glob's files.
            if pattern == "%" && is_glob {
                continue;
            }
            let Some((stem, dir)) = percent::rule_stem(pattern, target) else {
                continue;
            };
            let prereqs: Vec<String> = rule
                .prereqs
                .iter()
                .map(|p| {
                    if !p.contains('%') {
                        return p.clone();
                    }
                    let name = format!("{dir}{}", percent::substitute(p, &stem));
                    if is_glob {
                        token::glob(&name)
                    } else {
                        name
                    }
                })
                .collect();
            let applies = is_glob
                || rule
                    .prereqs
                    .iter()
                    .zip(&prereqs)
                    .filter(|(pattern, _)| pattern.contains('%'))
                    .all(|(_, p)| can_make(eval, p, depth));
            let shorter = best.as_ref().is_none_or(|b| stem.len() < b.stem.len());
            if applies && shorter {
                best = Some(Step {
                    target: target.to_string(),
                    recipe_rule: Some(index),
                    prereqs,
                    stem,
                });
            }
        }
    }
    best
}

/// Whether a prerequisite exists (relative to make's directory) or some rule can make it.
fn can_make(eval: &Evaluation, name: &str, depth: usize) -> bool {
    if !token::is_known(name) {
        return false;
    }
    if Path::new(&eval.cwd).join(name).exists() {
        return true;
    }
    if eval
        .rules
        .iter()
        .any(|r| !r.pattern && r.targets.iter().any(|t| t == name))
    {
        return true;
    }
    depth < 3 && pattern_step(eval, name, depth + 1).is_some()
}

/// Every step `goal` reaches that has a recipe, in the order make would first visit them.
pub fn reach(eval: &Evaluation, goal: &str) -> Vec<Step> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    visit(eval, goal, &mut seen, &mut out);
    out
}

fn visit(eval: &Evaluation, target: &str, seen: &mut Vec<String>, out: &mut Vec<Step>) {
    if seen.iter().any(|s| s == target) {
        return;
    }
    seen.push(target.to_string());
    let Some(step) = find(eval, target) else {
        return;
    };
    for prereq in &step.prereqs {
        visit(eval, prereq, seen, out);
    }
    if step.recipe_rule.is_some() {
        out.push(step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluate(dir: &Path, text: &str) -> Evaluation {
        let mut e = Evaluation::new(dir);
        e.read_text(&dir.join("Makefile"), "Makefile", text);
        e
    }

    const MAKEFILE: &str = "\
APP := prog
BPF_C := $(wildcard *.bpf.c)
DEPS := $(patsubst %.bpf.c, %.skel.h, $(BPF_C))
.PHONY: all install
all: deps app
deps: $(DEPS)
%.bpf.o: %.bpf.c
\tclang -target bpf -c $< -o $@
%.skel.h: %.bpf.o
\tbpftool gen skeleton $< > $@
%.o: %.cpp
\tg++ -c $< -o $@
app: $(APP)
%: %.c
\tgcc $^ -o $@
";

    #[test]
    fn a_goal_reaches_bpf_objects_skeletons_and_the_program() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("prog.c"), "").unwrap();
        let e = evaluate(dir.path(), MAKEFILE);
        let steps = reach(&e, "all");
        let targets: Vec<String> = steps.iter().map(|s| token::unglob(&s.target)).collect();
        assert_eq!(targets, vec!["*.bpf.o", "*.skel.h", "prog"]);
        assert_eq!(steps[0].prereqs, vec![token::glob("*.bpf.c")]);
        assert_eq!(steps[2].prereqs, vec!["prog.c"]);
    }

    #[test]
    fn the_shortest_stem_wins_and_missing_prerequisites_rule_a_pattern_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.bpf.c"), "").unwrap();
        let e = evaluate(dir.path(), MAKEFILE);
        // No prog.c here: the match-anything rule does not apply.
        assert!(find(&e, "prog").is_none());
        let step = find(&e, "k.bpf.o").unwrap();
        assert_eq!(step.stem, "k");
        assert_eq!(step.prereqs, vec!["k.bpf.c".to_string()]);
        let step = find(&e, &token::glob("sub/*.o")).unwrap();
        assert_eq!(step.prereqs, vec![token::glob("sub/*.cpp")]);
    }
}
