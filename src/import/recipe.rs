//! What an expanded recipe line does, read from its shell words: a BPF compile (clang -target bpf), a skeleton
//! (bpftool gen skeleton), a C++ compile, a C compile-and-link (a program, or with -shared a library), a copy
//! into an install directory, or something import does not translate.

use super::token;

/// A compiler command line sorted by what each word is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// Words that are not options: sources, objects, libraries given by path.
    pub inputs: Vec<String>,
    pub output: Option<String>,
    pub compile_only: bool,
    pub shared: bool,
    pub includes: Vec<String>,
    pub system_includes: Vec<String>,
    pub defines: Vec<String>,
    pub libs: Vec<String>,
    /// `-Wl,…`, `-L…`, `-static`, `-rdynamic`, `-pthread`.
    pub link_flags: Vec<String>,
    /// Every other option, in order (`-g`, `-O2`, `-std=gnu11`, `-Wno-…`, `-fPIC`).
    pub other: Vec<String>,
    /// Words that begin with a value only make running knows (`$(shell …)` output).
    pub unknown: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    BpfCompile(Flags),
    Skeleton {
        object: String,
    },
    CxxCompile(Flags),
    /// gcc/cc (or clang without `-target bpf`).
    CcBuild(Flags),
    /// Commands whose work ebpf-probe does its own way or that change nothing: strip, echo, mkdir, rm.
    Ignored,
    Copy {
        sources: Vec<String>,
        destination: String,
    },
    Other,
}

/// A recipe line without make's `@` (silent), `-` (ignore errors) and `+` prefixes.
pub fn without_prefixes(line: &str) -> &str {
    line.trim_start()
        .trim_start_matches(['@', '-', '+'])
        .trim_start()
}

/// The simple commands of shell text (`a && b; c`), as words with shell quoting removed, or why the text
/// cannot be read that way.
pub fn commands(line: &str) -> Result<Vec<Vec<String>>, &'static str> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let mut redirect = false;
    let finish =
        |word: &mut String, in_word: &mut bool, words: &mut Vec<String>, redirect: &mut bool| {
            if *in_word {
                if *redirect {
                    *redirect = false;
                } else {
                    words.push(std::mem::take(word));
                }
                word.clear();
                *in_word = false;
            }
        };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("an unterminated quote"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("an unterminated quote"),
                        },
                        Some('$' | '`') => return Err("shell variables or command substitution"),
                        Some(c) => word.push(c),
                        None => return Err("an unterminated quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            '$' | '`' => return Err("shell variables or command substitution"),
            '|' if chars.peek() == Some(&'|') => {
                chars.next();
                finish(&mut word, &mut in_word, &mut words, &mut redirect);
                commands.push(std::mem::take(&mut words));
            }
            '|' => return Err("a shell pipeline"),
            '&' if chars.peek() == Some(&'&') => {
                chars.next();
                finish(&mut word, &mut in_word, &mut words, &mut redirect);
                commands.push(std::mem::take(&mut words));
            }
            ';' => {
                finish(&mut word, &mut in_word, &mut words, &mut redirect);
                commands.push(std::mem::take(&mut words));
            }
            '>' | '<' => {
                // `> file`, `>> file`, `2> file`: the file is where output goes, not an argument.
                if in_word && word.chars().all(|c| c.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                } else {
                    finish(&mut word, &mut in_word, &mut words, &mut redirect);
                }
                while chars.peek() == Some(&'>') || chars.peek() == Some(&'&') {
                    chars.next();
                }
                redirect = true;
            }
            c if c.is_whitespace() => finish(&mut word, &mut in_word, &mut words, &mut redirect),
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    finish(&mut word, &mut in_word, &mut words, &mut redirect);
    commands.push(words);
    commands.retain(|c| !c.is_empty());
    Ok(commands)
}

/// What a simple command does.
pub fn classify(words: &[String]) -> Command {
    let Some(program) = words.first() else {
        return Command::Ignored;
    };
    let program = token::unglob(program);
    let name = program.rsplit('/').next().unwrap_or(&program);
    let args = &words[1..];
    let is_bpf_target = args.windows(2).any(|w| w[0] == "-target" && w[1] == "bpf")
        || args
            .iter()
            .any(|a| a == "--target=bpf" || a == "-target=bpf");
    if is_cxx_compiler(name) {
        Command::CxxCompile(flags(args))
    } else if name == "clang" || name.starts_with("clang-") {
        if is_bpf_target {
            Command::BpfCompile(flags(args))
        } else {
            Command::CcBuild(flags(args))
        }
    } else if name == "cc" || name.ends_with("gcc") || name.starts_with("gcc-") {
        Command::CcBuild(flags(args))
    } else if name == "bpftool" {
        match args {
            [gen, skeleton, object, ..] if gen == "gen" && skeleton == "skeleton" => {
                Command::Skeleton {
                    object: object.clone(),
                }
            }
            _ => Command::Other,
        }
    } else if matches!(
        name,
        "echo" | "printf" | "true" | ":" | "mkdir" | "rm" | "strip" | "touch"
    ) || name.starts_with("llvm-strip")
    {
        Command::Ignored
    } else if name == "cp" || name == "install" {
        let mut operands = Vec::new();
        let mut skip_next = false;
        for arg in args {
            if skip_next {
                skip_next = false;
            } else if name == "install" && (arg == "-m" || arg == "-o" || arg == "-g") {
                skip_next = true;
            } else if !arg.starts_with('-') {
                operands.push(arg.clone());
            }
        }
        match operands.split_last() {
            Some((destination, sources)) if !sources.is_empty() => Command::Copy {
                sources: sources.to_vec(),
                destination: destination.clone(),
            },
            _ => Command::Other,
        }
    } else {
        Command::Other
    }
}

fn is_cxx_compiler(name: &str) -> bool {
    name == "c++"
        || name.ends_with("g++")
        || name.starts_with("g++-")
        || name.starts_with("clang++")
}

/// Sorts a compiler's arguments.
pub fn flags(args: &[String]) -> Flags {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let next = args.get(i + 1).cloned().unwrap_or_default();
        let mut take_next = false;
        if token::starts_unknown(arg) {
            f.unknown.push(arg.clone());
        } else if arg == "-o" {
            f.output = Some(next);
            take_next = true;
        } else if arg == "-c" {
            f.compile_only = true;
        } else if arg == "-target" {
            take_next = true;
        } else if arg.starts_with("--target=") || arg.starts_with("-target=") {
        } else if arg == "-shared" {
            f.shared = true;
        } else if let Some(value) = joined_or_next(arg, "-I", &next, &mut take_next) {
            f.includes.push(value);
        } else if arg == "-isystem" {
            f.system_includes.push(next);
            take_next = true;
        } else if let Some(value) = joined_or_next(arg, "-D", &next, &mut take_next) {
            f.defines.push(value);
        } else if let Some(value) = joined_or_next(arg, "-l", &next, &mut take_next) {
            f.libs.push(value);
        } else if arg.starts_with("-Wl,")
            || arg.starts_with("-L")
            || matches!(arg.as_str(), "-static" | "-rdynamic" | "-pthread")
        {
            f.link_flags.push(arg.clone());
        } else if matches!(arg.as_str(), "-include" | "-x" | "-MF" | "-MT" | "-MQ") {
            f.other.push(arg.clone());
            f.other.push(next);
            take_next = true;
        } else if arg.starts_with('-') {
            f.other.push(arg.clone());
        } else {
            f.inputs.push(arg.clone());
        }
        i += if take_next { 2 } else { 1 };
    }
    f
}

/// `-Ifoo` → `foo`; `-I foo` → `foo` (and the next word is taken).
fn joined_or_next(arg: &str, option: &str, next: &str, take_next: &mut bool) -> Option<String> {
    let rest = arg.strip_prefix(option)?;
    if rest.is_empty() {
        *take_next = true;
        Some(next.to_string())
    } else {
        Some(rest.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        let mut c = commands(without_prefixes(line)).unwrap();
        assert_eq!(c.len(), 1, "{c:?}");
        c.remove(0)
    }

    #[test]
    fn shell_words_quotes_redirections_and_lists() {
        assert_eq!(
            words(r#"@gcc -DV='"v1"' -DW="a b" x\ y.c"#),
            vec!["gcc", "-DV=\"v1\"", "-DW=a b", "x y.c"]
        );
        assert_eq!(
            words("bpftool gen skeleton k.bpf.o > k.skel.h"),
            vec!["bpftool", "gen", "skeleton", "k.bpf.o"]
        );
        assert_eq!(commands("mkdir -p d && cp a d; echo ok").unwrap().len(), 3);
        assert_eq!(commands("a | b"), Err("a shell pipeline"));
        assert_eq!(
            commands("echo $HOME"),
            Err("shell variables or command substitution")
        );
        assert_eq!(words("cc x.c 2>/dev/null"), vec!["cc", "x.c"]);
    }

    #[test]
    fn commands_are_classified() {
        let w = |s: &str| words(s);
        let Command::BpfCompile(f) = classify(&w(
            "clang -g -O2 -target bpf -I/inc -I x -DA=1 -c k.bpf.c -o k.bpf.o",
        )) else {
            panic!()
        };
        assert_eq!(f.includes, vec!["/inc", "x"]);
        assert_eq!(f.defines, vec!["A=1"]);
        assert_eq!(f.inputs, vec!["k.bpf.c"]);
        assert_eq!(f.output.as_deref(), Some("k.bpf.o"));
        assert_eq!(f.other, vec!["-g", "-O2"]);
        assert!(f.compile_only);
        let Command::CcBuild(f) =
            classify(&w("gcc -fPIC -shared a.c -Wl,-z,now -lcurl -l m -o a.so"))
        else {
            panic!()
        };
        assert!(f.shared);
        assert_eq!(f.libs, vec!["curl", "m"]);
        assert_eq!(f.link_flags, vec!["-Wl,-z,now"]);
        assert!(matches!(
            classify(&w("g++ -c x.cpp -std=c++11 -o x.o")),
            Command::CxxCompile(_)
        ));
        assert_eq!(
            classify(&w("bpftool gen skeleton k.bpf.o")),
            Command::Skeleton {
                object: "k.bpf.o".into()
            }
        );
        assert_eq!(
            classify(&w("cp a b /dest/x")),
            Command::Copy {
                sources: vec!["a".into(), "b".into()],
                destination: "/dest/x".into()
            }
        );
        assert_eq!(classify(&w("llvm-strip -g k.bpf.o")), Command::Ignored);
        assert_eq!(classify(&w("python3 gen.py")), Command::Other);
    }
}
