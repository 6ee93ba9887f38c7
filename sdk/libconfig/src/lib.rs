//! Reads the libconfig subset gala-gopher's `.meta` files are written in, keeping every setting's line and column.
//!
//! One reader for the `ebpf-probe` CLI (which checks `.meta` files by gala-gopher's loading rules) and for the
//! Rust SDK (which finds a table's fields at run time), so both see a file the way libconfig, which gala-gopher
//! loads it with, does:
//!
//! - the input is bytes: libconfig does not require UTF-8, so strings and comments may hold any encoding
//!   (Latin-1 descriptions load fine); anywhere else a byte that is not UTF-8 is a syntax error;
//! - a string is what libconfig hands out, a C string: a NUL byte ends it, and [`Document::warnings`] says so;
//! - every syntax error names its line and column, what was expected and what was found;
//! - groups, lists and arrays nest at most [`MAX_NESTING_DEPTH`] deep, so a hostile file cannot exhaust the stack.
//!
//! Where libconfig versions differ: a trailing comma before `)` or `]` is read as libconfig 1.7 does, with a
//! warning (1.5 rejects it); a string must end on the line it starts on.

mod parser;

use std::fmt;

/// How deep groups, lists and arrays may nest. A `.meta` file needs 4 (`measurements` list, table group,
/// `fields` list, field group).
pub const MAX_NESTING_DEPTH: usize = 64;

/// A parsed file: its top-level settings, in file order, and what libconfig silently changes in them.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub settings: Vec<Setting>,
    /// Constructs libconfig accepts but reads differently from how they are written (a NUL byte in a string).
    pub warnings: Vec<Warning>,
}

/// A libconfig value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// What libconfig hands out for the string: escapes decoded, adjacent literals (`"a" "b"`) joined, each
    /// literal cut at its first NUL byte. Not necessarily UTF-8.
    String(Vec<u8>),
    /// `42`, `-7`, `0x2A`, `42L`.
    Integer(i64),
    /// `1.5`, `.5`, `1e-3`.
    Float(f64),
    /// `true`, `FALSE` (any case).
    Boolean(bool),
    /// `{ name = value; … }`: settings with unique names.
    Group(Vec<Setting>),
    /// `( value, … )`: values of any kinds.
    List(Vec<Node>),
    /// `[ value, … ]`: scalars of one kind.
    Array(Vec<Node>),
}

impl Value {
    /// How a message names this value: `the string "x"`, `the integer 7`, `a group `{ ... }``.
    pub fn describe(&self) -> String {
        match self {
            Value::String(bytes) => format!("the string {:?}", String::from_utf8_lossy(bytes)),
            Value::Integer(number) => format!("the integer {number}"),
            Value::Float(number) => format!("the float {number}"),
            Value::Boolean(flag) => format!("the boolean {flag}"),
            Value::Group(_) => "a group `{ ... }`".to_string(),
            Value::List(_) => "a list `( ... )`".to_string(),
            Value::Array(_) => "an array `[ ... ]`".to_string(),
        }
    }
}

/// A value and where it starts (1-based line and column; a column counts characters).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: usize,
    pub column: usize,
}

/// `name = value` (or `name: value`), at the position of its name.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: String,
    pub line: usize,
    pub column: usize,
    pub node: Node,
}

/// Why the file is not libconfig (libconfig refuses the whole file), and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    /// "expected …, found …", lowercase, without the position.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for SyntaxError {}

/// Something libconfig accepts but reads differently from how it is written, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Parses a whole file.
pub fn parse(text: &[u8]) -> Result<Document, SyntaxError> {
    parser::parse_document(text)
}

/// The setting called `name` among `settings` (names are unique within a group).
pub fn find_setting<'s>(settings: &'s [Setting], name: &str) -> Option<&'s Setting> {
    settings.iter().find(|setting| setting.name == name)
}
