//! gala-gopher's `.meta` files as ebpf-probe models them (files, tables, fields) and the diagnostics about them.
//!
//! The files are read by `ebpf_probe_libconfig` (shared with the Rust SDK); `rules` applies gala-gopher's
//! loading rules to what it read, one file and across files; `line` checks the `|table|v1|…|` lines a probe
//! prints against the tables.

mod line;
mod rules;

use std::fmt;
use std::path::PathBuf;

pub use line::check_line;
pub use rules::check_files;

/// One parsed `.meta` file.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaFile {
    pub path: PathBuf,
    pub version: String,
    /// Tables that have a `table_name`, in file order.
    pub tables: Vec<Table>,
}

/// One entry of `measurements`: what a probe prints as `|name|v1|…|`.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// As gala-gopher reads it: up to a NUL byte, if the string has one.
    pub name: String,
    pub entity: String,
    /// Line of `table_name` (of the table's `{` when it has none).
    pub line: usize,
    /// In the order the probe prints the values. A field missing a setting is still listed (with
    /// that setting empty) because gala-gopher still counts it.
    pub fields: Vec<Field>,
}

/// One entry of a table's `fields`.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    /// The `type` setting: key, label, counter, gauge, histogram, summary, or anything else.
    pub kind: String,
    /// Bytes that are not UTF-8 (a Latin-1 description) are replaced by U+FFFD.
    pub description: String,
    /// Line of `name` (of the field's `{` when it has none).
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A broken rule, at the line that breaks it. Only what the libconfig reader reports (syntax errors, a NUL
/// byte in a string) carries a column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub column: Option<usize>,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match self.column {
            Some(column) => write!(
                formatter,
                "{path}:{}:{column}: {}: {}",
                self.line, self.severity, self.message
            ),
            None => write!(
                formatter,
                "{path}:{}: {}: {}",
                self.line, self.severity, self.message
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_display_shows_the_column_only_when_known() {
        let mut diagnostic = Diagnostic {
            path: PathBuf::from("p/x.meta"),
            line: 3,
            column: None,
            severity: Severity::Error,
            message: "rule".to_string(),
        };
        assert_eq!(diagnostic.to_string(), "p/x.meta:3: error: rule");
        diagnostic.column = Some(7);
        diagnostic.severity = Severity::Warning;
        assert_eq!(diagnostic.to_string(), "p/x.meta:3:7: warning: rule");
    }
}
