//! Reads gala-gopher `.meta` files (libconfig), checks them and the `|table|v1|…|` lines probes print against gala-gopher's rules.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The field types gala-gopher exports; any other `type` is stored but never exported.
pub const FIELD_TYPES: [&str; 6] = ["key", "label", "counter", "gauge", "histogram", "summary"];

// IMDB_Table.name is char[32] and probe lines are matched against it with strcmp, so a longer
// name is truncated on load and no line the probe prints ever finds its table.
const MAX_TABLE_NAME_BYTES: usize = 31;
// meta.c copies entity_name, type and field names into char[64].
const MAX_META_NAME_BYTES: usize = 63;
// IMDB_Metric.name and IMDB_Table.entity_name are char[32]: longer names load fine but are
// exported truncated, so the metric is not called what the .meta file says.
const MAX_EXPORTED_NAME_BYTES: usize = 31;
const MAX_DESCRIPTION_BYTES: usize = 255;
const MAX_VERSION_BYTES: usize = 15;
// imdb.max_metrics_num defaults to 64 (meta.c caps it at MAX_FIELDS_NUM = 128).
const MAX_FIELDS_PER_TABLE: usize = 64;

const EVERY_TABLE_NEEDS: &str = "every table needs table_name, entity_name and fields";
const EVERY_FIELD_NEEDS: &str = "every field needs description, type and name";

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

/// A broken rule, at the line that breaks it. Only syntax errors carry a column.
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

/// Parses and checks one file's own rules; returns the parsed file (when syntax allowed) and all diagnostics.
pub fn check_file(path: &Path, text: &str) -> (Option<MetaFile>, Vec<Diagnostic>) {
    let settings = match parse_document(text) {
        Ok(settings) => settings,
        Err(syntax_error) => {
            let diagnostic = Diagnostic {
                path: path.to_path_buf(),
                line: syntax_error.line,
                column: Some(syntax_error.column),
                severity: Severity::Error,
                message: format!("syntax error: {}", syntax_error.message),
            };
            return (None, vec![diagnostic]);
        }
    };
    let mut checker = Checker {
        path,
        diagnostics: Vec::new(),
    };
    let meta_file = checker.check_document(&settings);
    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(|diagnostic| diagnostic.line);
    (Some(meta_file), diagnostics)
}

/// Checks several files together: each file's rules plus workspace-wide `table_name` uniqueness.
pub fn check_files(files: &[(PathBuf, String)]) -> (Vec<MetaFile>, Vec<Diagnostic>) {
    let mut meta_files = Vec::new();
    let mut diagnostics = Vec::new();
    // gala-gopher loads every .meta file into one table namespace and refuses the whole
    // directory on a clash, so a name is checked against every file, not only its own.
    let mut first_use_of_table: HashMap<String, (PathBuf, usize)> = HashMap::new();
    for (path, text) in files {
        let (meta_file, mut file_diagnostics) = check_file(path, text);
        let Some(meta_file) = meta_file else {
            diagnostics.extend(file_diagnostics);
            continue;
        };
        let mut names_in_this_file = HashSet::new();
        for table in &meta_file.tables {
            // A second use inside the same file was already reported by check_file.
            if !names_in_this_file.insert(table.name.as_str()) {
                continue;
            }
            match first_use_of_table.get(&table.name) {
                Some((first_path, first_line)) => file_diagnostics.push(error(
                    path,
                    table.line,
                    duplicate_table_message(&table.name, first_path, *first_line),
                )),
                None => {
                    first_use_of_table.insert(table.name.clone(), (path.clone(), table.line));
                }
            }
        }
        file_diagnostics.sort_by_key(|diagnostic| diagnostic.line);
        diagnostics.extend(file_diagnostics);
        meta_files.push(meta_file);
    }
    (meta_files, diagnostics)
}

/// For `run`: checks one line a probe printed against the tables. Ok(table) or Err(reason).
///
/// The protocol, as gala-gopher HEAD reads it (ingress.c, imdb.c): the line starts with `|`, the
/// table name is the text up to the next `|`, then every value ends with `|`; exactly one value
/// per field, and the first (the key) must not be empty.
pub fn check_line<'a>(tables: &'a [Table], line: &str) -> Result<&'a Table, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let Some(after_first_bar) = line.strip_prefix('|') else {
        return Err("line does not start with `|`; gala-gopher ignores it".to_string());
    };
    let Some((table_name, values_text)) = after_first_bar.split_once('|') else {
        return Err(format!("no `|` after the table name `{after_first_bar}`"));
    };
    let Some(table) = tables.iter().find(|table| table.name == table_name) else {
        let known_tables: Vec<&str> = tables.iter().map(|table| table.name.as_str()).collect();
        return Err(format!(
            "unknown table `{table_name}` (gala-gopher drops the line); known tables: {}",
            if known_tables.is_empty() {
                "none".to_string()
            } else {
                known_tables.join(", ")
            }
        ));
    };
    let (terminated_values, trailing_text) = match values_text.rfind('|') {
        Some(last_bar) => values_text.split_at(last_bar + 1),
        None => ("", values_text),
    };
    if !trailing_text.is_empty() {
        return Err(format!(
            "table {table_name}: text after the last `|`: {trailing_text:?}; end every value with `|`"
        ));
    }
    let values: Vec<&str> = terminated_values.split_terminator('|').collect();
    if values.len() != table.fields.len() {
        return Err(format!(
            "table {table_name} has {} fields, line has {} values",
            table.fields.len(),
            values.len()
        ));
    }
    if let (Some(first_value), Some(first_field)) = (values.first(), table.fields.first()) {
        if first_value.is_empty() {
            return Err(format!(
                "table {table_name}: the first value (field `{}`) is empty; gala-gopher drops the record (\"Key can't be null\")",
                first_field.name
            ));
        }
    }
    Ok(table)
}

/// The table's field names, in the order the probe prints the values.
#[cfg(test)]
pub fn field_names(table: &Table) -> Vec<&str> {
    table
        .fields
        .iter()
        .map(|field| field.name.as_str())
        .collect()
}

fn error(path: &Path, line: usize, message: String) -> Diagnostic {
    Diagnostic {
        path: path.to_path_buf(),
        line,
        column: None,
        severity: Severity::Error,
        message,
    }
}

fn warning(path: &Path, line: usize, message: String) -> Diagnostic {
    Diagnostic {
        path: path.to_path_buf(),
        line,
        column: None,
        severity: Severity::Warning,
        message,
    }
}

fn duplicate_table_message(table_name: &str, first_path: &Path, first_line: usize) -> String {
    format!(
        "table_name `{table_name}` is already used at {}:{first_line}; table names must be unique across all .meta files \
         (gala-gopher refuses to load the meta directory)",
        first_path.display()
    )
}

// ---------------------------------------------------------------------------------------------
// The rules, applied to the parsed settings.

/// Collects diagnostics for one file while its settings are turned into a `MetaFile`.
struct Checker<'p> {
    path: &'p Path,
    diagnostics: Vec<Diagnostic>,
}

/// A required setting found with the right type.
struct Found<T> {
    value: T,
    line: usize,
}

impl Checker<'_> {
    fn error(&mut self, line: usize, message: String) {
        self.diagnostics.push(error(self.path, line, message));
    }

    fn warning(&mut self, line: usize, message: String) {
        self.diagnostics.push(warning(self.path, line, message));
    }

    fn check_document(&mut self, settings: &[Setting]) -> MetaFile {
        self.warn_unknown_settings(settings, &["version", "measurements"], "at the top level");
        let version = self.required_string(
            settings,
            "version",
            1,
            "the file",
            "add version = \"1.0.0\" at the top",
        );
        if let Some(version) = &version {
            if version.value.len() > MAX_VERSION_BYTES {
                self.warning(
                    version.line,
                    format!(
                        "version \"{}\" is {} bytes; gala-gopher keeps the first {MAX_VERSION_BYTES}",
                        version.value,
                        version.value.len()
                    )
                );
            }
        }
        let measurements = self.required_list_of_groups(
            settings,
            "measurements",
            1,
            "the file",
            "it needs measurements: ( { table_name: ..., entity_name: ..., fields: ( ... ) } )",
        );
        let mut tables = Vec::new();
        let mut first_line_of_table: HashMap<String, usize> = HashMap::new();
        for (group_settings, group_line) in measurements.unwrap_or_default() {
            let Some(table) = self.check_table(group_settings, group_line) else {
                continue;
            };
            match first_line_of_table.get(&table.name) {
                Some(first_line) => {
                    let message = duplicate_table_message(&table.name, self.path, *first_line);
                    self.error(table.line, message);
                }
                None => {
                    first_line_of_table.insert(table.name.clone(), table.line);
                }
            }
            tables.push(table);
        }
        MetaFile {
            path: self.path.to_path_buf(),
            version: version.map(|version| version.value).unwrap_or_default(),
            tables,
        }
    }

    /// Checks one measurement; returns it when it has a `table_name` (without one no line can name it).
    fn check_table(&mut self, settings: &[Setting], group_line: usize) -> Option<Table> {
        let table_name_setting = lookup(settings, "table_name");
        let context = match table_name_setting.map(|setting| &setting.node.value) {
            Some(Value::String(name)) => format!("table `{name}`"),
            _ => format!("the table at line {group_line}"),
        };
        self.warn_unknown_settings(
            settings,
            &["table_name", "entity_name", "fields"],
            &format!("in {context}"),
        );
        let table_name = self.required_string(
            settings,
            "table_name",
            group_line,
            &context,
            EVERY_TABLE_NEEDS,
        );
        let entity_name = self.required_string(
            settings,
            "entity_name",
            group_line,
            &context,
            EVERY_TABLE_NEEDS,
        );
        let field_groups = self.required_list_of_groups(
            settings,
            "fields",
            group_line,
            &context,
            EVERY_TABLE_NEEDS,
        );
        let table_line = table_name.as_ref().map_or(group_line, |found| found.line);

        if let Some(table_name) = &table_name {
            self.check_table_name(&table_name.value, table_name.line);
        }
        if let Some(entity_name) = &entity_name {
            self.check_name("entity_name", &entity_name.value, entity_name.line, true);
        }

        let mut fields = Vec::new();
        if let Some(field_groups) = &field_groups {
            let table_label = table_name.as_ref().map_or("", |found| found.value.as_str());
            for (index, (field_settings, field_line)) in field_groups.iter().enumerate() {
                fields.push(self.check_field(field_settings, *field_line, index + 1, &context));
            }
            self.check_fields_of_table(&fields, table_label, table_line, &context);
        }

        let table_name = table_name?;
        Some(Table {
            name: table_name.value,
            entity: entity_name.map(|found| found.value).unwrap_or_default(),
            line: table_line,
            fields,
        })
    }

    fn check_table_name(&mut self, table_name: &str, line: usize) {
        if table_name.is_empty() {
            self.error(
                line,
                "table_name is empty; no line a probe prints can name this table".to_string(),
            );
        } else if table_name.contains('|') {
            self.error(
                line,
                format!("table_name `{table_name}` contains `|`, the line protocol's separator; no line a probe prints can name this table")
            );
        }
        if table_name.len() > MAX_TABLE_NAME_BYTES {
            self.error(
                line,
                format!(
                    "table_name `{table_name}` is {} bytes; gala-gopher's IMDB keeps at most {MAX_TABLE_NAME_BYTES} \
                     (char[32] with the NUL), so the lines the probe prints never match it: shorten it",
                    table_name.len()
                )
            );
        }
    }

    /// Length and character rules shared by `entity_name` and field names (`setting` says which).
    fn check_name(&mut self, setting: &str, name: &str, line: usize, exported: bool) {
        if name.is_empty() {
            self.error(line, format!("{setting} is empty"));
            return;
        }
        if name.len() > MAX_META_NAME_BYTES {
            self.error(
                line,
                format!(
                    "{setting} `{name}` is {} bytes; gala-gopher keeps at most {MAX_META_NAME_BYTES}: shorten it",
                    name.len()
                )
            );
        } else if name.len() > MAX_EXPORTED_NAME_BYTES {
            self.warning(
                line,
                format!(
                    "{setting} `{name}` is {} bytes; gala-gopher's IMDB keeps {MAX_EXPORTED_NAME_BYTES}, \
                     so it is exported as `{}`",
                    name.len(),
                    truncate_to_bytes(name, MAX_EXPORTED_NAME_BYTES)
                )
            );
        }
        // Exported names become Prometheus metric and label names; one bad name breaks the
        // whole scrape, and gala-gopher does not check them.
        if exported && !is_prometheus_name(name) {
            self.warning(
                line,
                format!("{setting} `{name}` is not a valid Prometheus name ([a-zA-Z_][a-zA-Z0-9_]*), and gala-gopher exports it as is")
            );
        }
    }

    fn check_field(
        &mut self,
        settings: &[Setting],
        group_line: usize,
        number: usize,
        table_context: &str,
    ) -> Field {
        let context = match lookup(settings, "name").map(|setting| &setting.node.value) {
            Some(Value::String(name)) => format!("field `{name}` of {table_context}"),
            _ => format!("field {number} of {table_context}"),
        };
        self.warn_unknown_settings(
            settings,
            &["description", "type", "name"],
            &format!("in {context}"),
        );
        let description = self.required_string(
            settings,
            "description",
            group_line,
            &context,
            EVERY_FIELD_NEEDS,
        );
        let kind = self.required_string(settings, "type", group_line, &context, EVERY_FIELD_NEEDS);
        let name = self.required_string(settings, "name", group_line, &context, EVERY_FIELD_NEEDS);

        let exported = kind
            .as_ref()
            .is_some_and(|kind| FIELD_TYPES.contains(&kind.value.as_str()));
        if let Some(kind) = &kind {
            if !exported {
                let hint = match FIELD_TYPES
                    .iter()
                    .find(|known| known.eq_ignore_ascii_case(&kind.value))
                {
                    Some(known) => format!(" (types are case-sensitive: did you mean `{known}`?)"),
                    None => String::new(),
                };
                self.warning(
                    kind.line,
                    format!(
                        "{context} has type `{}`; gala-gopher keeps it but never exports it \
                         (exported types: {}){hint}",
                        kind.value,
                        FIELD_TYPES.join(", ")
                    ),
                );
            }
        }
        if let Some(name) = &name {
            self.check_name("field name", &name.value, name.line, exported);
            self.warn_percent_sign("field name", &name.value, name.line);
        }
        if let Some(description) = &description {
            if description.value.len() > MAX_DESCRIPTION_BYTES {
                self.warning(
                    description.line,
                    format!(
                        "description of {context} is {} bytes; gala-gopher truncates it to {MAX_DESCRIPTION_BYTES}",
                        description.value.len()
                    )
                );
            }
            self.warn_percent_sign("description", &description.value, description.line);
        }
        Field {
            line: name.as_ref().map_or(group_line, |found| found.line),
            name: name.map(|found| found.value).unwrap_or_default(),
            kind: kind.map(|found| found.value).unwrap_or_default(),
            description: description.map(|found| found.value).unwrap_or_default(),
        }
    }

    // IMDB_MetricCreate passes a field's name and description to snprintf as the format string.
    fn warn_percent_sign(&mut self, setting: &str, text: &str, line: usize) {
        if text.contains('%') {
            self.warning(
                line,
                format!(
                    "{setting} contains `%`; gala-gopher uses it as a printf format (imdb.c IMDB_MetricCreate), \
                     which garbles it or, for `%s` and `%n`, crashes the daemon: write `percent`"
                )
            );
        }
    }

    fn check_fields_of_table(
        &mut self,
        fields: &[Field],
        table_name: &str,
        table_line: usize,
        context: &str,
    ) {
        if fields.len() > MAX_FIELDS_PER_TABLE {
            self.error(
                table_line,
                format!(
                    "{context} has {} fields; gala-gopher allows at most {MAX_FIELDS_PER_TABLE} (\"Too many fields\") \
                     and refuses the meta directory: split it into several tables",
                    fields.len()
                )
            );
        }
        if !fields.iter().any(|field| field.kind == "key") {
            self.error(
                table_line,
                format!(
                    "{context} has no field of type `key`; gala-gopher rejects it: mark the field that identifies \
                     a record (e.g. the pid) type: \"key\""
                )
            );
        }
        let mut first_line_of_field: HashMap<&str, usize> = HashMap::new();
        for field in fields.iter().filter(|field| !field.name.is_empty()) {
            match first_line_of_field.get(field.name.as_str()) {
                Some(first_line) => self.error(
                    field.line,
                    format!("duplicate field name `{}` in table `{table_name}` (first at line {first_line})", field.name)
                ),
                None => {
                    first_line_of_field.insert(&field.name, field.line);
                }
            }
        }
    }

    fn warn_unknown_settings(&mut self, settings: &[Setting], known: &[&str], where_: &str) {
        for setting in settings
            .iter()
            .filter(|setting| !known.contains(&setting.name.as_str()))
        {
            self.warning(
                setting.line,
                format!(
                    "unknown setting `{}` {where_}; gala-gopher ignores it (expected: {})",
                    setting.name,
                    known.join(", ")
                ),
            );
        }
    }

    /// A string setting that must be present: reports it missing (at `group_line`) or mistyped.
    fn required_string(
        &mut self,
        settings: &[Setting],
        name: &str,
        group_line: usize,
        context: &str,
        what_to_do: &str,
    ) -> Option<Found<String>> {
        let Some(setting) = lookup(settings, name) else {
            self.error(
                group_line,
                format!("{context} has no `{name}`; {what_to_do}"),
            );
            return None;
        };
        match &setting.node.value {
            Value::String(text) => Some(Found {
                value: text.clone(),
                line: setting.line,
            }),
            other => {
                self.error(
                    setting.line,
                    format!("`{name}` must be a string, found {}", describe_value(other)),
                );
                None
            }
        }
    }

    /// A list of groups that must be present; returns each group's settings and line.
    fn required_list_of_groups<'s>(
        &mut self,
        settings: &'s [Setting],
        name: &str,
        group_line: usize,
        context: &str,
        what_to_do: &str,
    ) -> Option<Vec<(&'s [Setting], usize)>> {
        let Some(setting) = lookup(settings, name) else {
            self.error(
                group_line,
                format!("{context} has no `{name}`; {what_to_do}"),
            );
            return None;
        };
        let Value::List(elements) = &setting.node.value else {
            self.error(
                setting.line,
                format!(
                    "`{name}` must be a list `( {{ ... }}, ... )` of groups, found {}",
                    describe_value(&setting.node.value)
                ),
            );
            return None;
        };
        let mut groups = Vec::new();
        for element in elements {
            match &element.value {
                Value::Group(group_settings) => {
                    groups.push((group_settings.as_slice(), element.line));
                }
                other => self.error(
                    element.line,
                    format!(
                        "each entry of `{name}` must be a group `{{ ... }}`, found {}",
                        describe_value(other)
                    ),
                ),
            }
        }
        Some(groups)
    }
}

fn lookup<'s>(settings: &'s [Setting], name: &str) -> Option<&'s Setting> {
    settings.iter().find(|setting| setting.name == name)
}

fn is_prometheus_name(name: &str) -> bool {
    let mut characters = name.chars();
    characters
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

fn truncate_to_bytes(text: &str, max_bytes: usize) -> &str {
    let mut end = max_bytes.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::String(text) => format!("the string {text:?}"),
        Value::Integer(number) => format!("the integer {number}"),
        Value::Float(number) => format!("the float {number}"),
        Value::Boolean(flag) => format!("the boolean {flag}"),
        Value::Group(_) => "a group `{ ... }`".to_string(),
        Value::List(_) => "a list `( ... )`".to_string(),
        Value::Array(_) => "an array `[ ... ]`".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// The libconfig parser. Hand-written so that every setting keeps its line and every syntax error
// names line, column, what was expected and what was found.

#[derive(Debug, Clone, PartialEq)]
enum Value {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
    Group(Vec<Setting>),
    List(Vec<Node>),
    Array(Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
struct Node {
    value: Value,
    line: usize,
    column: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct Setting {
    name: String,
    line: usize,
    column: usize,
    node: Node,
}

#[derive(Debug, Clone, PartialEq)]
struct SyntaxError {
    line: usize,
    column: usize,
    message: String,
}

fn syntax_error(line: usize, column: usize, message: String) -> SyntaxError {
    SyntaxError {
        line,
        column,
        message,
    }
}

fn parse_document(text: &str) -> Result<Vec<Setting>, SyntaxError> {
    let mut parser = Parser {
        characters: text.chars().collect(),
        position: 0,
        line: 1,
        column: 1,
    };
    parser.parse_settings(None)
}

struct Parser {
    characters: Vec<char>,
    position: usize,
    /// 1-based, of `characters[position]`.
    line: usize,
    column: usize,
}

fn is_name_start(character: char) -> bool {
    character.is_ascii_alphabetic() || character == '*'
}

fn is_name_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '*')
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.characters.get(self.position).copied()
    }

    fn peek_second(&self) -> Option<char> {
        self.characters.get(self.position + 1).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let character = self.peek()?;
        self.position += 1;
        if character == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(character)
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let mut taken = String::new();
        while let Some(character) = self.peek().filter(|character| keep(*character)) {
            taken.push(character);
            self.bump();
        }
        taken
    }

    /// "expected {expected}, found <what is here>", at the current position.
    fn expected(&self, expected: &str) -> SyntaxError {
        syntax_error(
            self.line,
            self.column,
            format!("expected {expected}, found {}", self.describe_next()),
        )
    }

    fn describe_next(&self) -> String {
        let rest = &self.characters[self.position..];
        match self.peek() {
            None => "end of file".to_string(),
            Some('\n' | '\r') => "end of line".to_string(),
            Some('"') => {
                let text: String = rest
                    .iter()
                    .skip(1)
                    .take_while(|c| !matches!(c, '"' | '\n'))
                    .take(30)
                    .collect();
                format!("the string \"{text}\"")
            }
            Some(character) if character.is_ascii_alphanumeric() || character == '*' => {
                let word: String = rest
                    .iter()
                    .take_while(|c| is_name_character(**c) || **c == '.')
                    .collect();
                format!("`{word}`")
            }
            Some(character) => format!("`{character}`"),
        }
    }

    fn skip_blanks_and_comments(&mut self) -> Result<(), SyntaxError> {
        loop {
            match (self.peek(), self.peek_second()) {
                (Some(character), _) if character.is_whitespace() => {
                    self.bump();
                }
                (Some('#'), _) | (Some('/'), Some('/')) => {
                    while self.peek().is_some_and(|character| character != '\n') {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let (line, column) = (self.line, self.column);
                    self.bump();
                    self.bump();
                    loop {
                        match (self.peek(), self.peek_second()) {
                            (Some('*'), Some('/')) => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            (Some(_), _) => {
                                self.bump();
                            }
                            (None, _) => {
                                return Err(syntax_error(
                                    line,
                                    column,
                                    "expected `*/` to close this comment, found end of file"
                                        .to_string(),
                                ))
                            }
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// The settings of the file (`group_opened_at` is None) or of a group, up to its `}`.
    fn parse_settings(
        &mut self,
        group_opened_at: Option<usize>,
    ) -> Result<Vec<Setting>, SyntaxError> {
        let mut settings: Vec<Setting> = Vec::new();
        loop {
            self.skip_blanks_and_comments()?;
            match (self.peek(), group_opened_at) {
                (None, None) => return Ok(settings),
                (Some('}'), Some(_)) => {
                    self.bump();
                    return Ok(settings);
                }
                (Some(character), _) if is_name_start(character) => {}
                (_, None) => return Err(self.expected("a setting name")),
                (_, Some(line)) => {
                    return Err(self.expected(&format!(
                        "a setting name or `}}` to close the group opened at line {line}"
                    )))
                }
            }
            let setting = self.parse_setting()?;
            // libconfig refuses the whole file on a repeated name.
            if let Some(first) = settings.iter().find(|earlier| earlier.name == setting.name) {
                return Err(syntax_error(
                    setting.line,
                    setting.column,
                    format!(
                        "duplicate setting `{}` in this group (first at line {})",
                        setting.name, first.line
                    ),
                ));
            }
            settings.push(setting);
        }
    }

    fn parse_setting(&mut self) -> Result<Setting, SyntaxError> {
        let (line, column) = (self.line, self.column);
        let name = self.take_while(is_name_character);
        self.skip_blanks_and_comments()?;
        match self.peek() {
            Some('=' | ':') => {
                self.bump();
            }
            _ => return Err(self.expected(&format!("`=` or `:` after `{name}`"))),
        }
        self.skip_blanks_and_comments()?;
        let node = self.parse_value()?;
        self.skip_blanks_and_comments()?;
        if matches!(self.peek(), Some(';' | ',')) {
            self.bump();
        }
        Ok(Setting {
            name,
            line,
            column,
            node,
        })
    }

    fn parse_value(&mut self) -> Result<Node, SyntaxError> {
        let (line, column) = (self.line, self.column);
        let value = match self.peek() {
            Some('"') => Value::String(self.parse_adjacent_strings()?),
            Some('{') => {
                self.bump();
                Value::Group(self.parse_settings(Some(line))?)
            }
            Some('(') => {
                self.bump();
                Value::List(self.parse_elements(')', "list", line)?)
            }
            Some('[') => {
                self.bump();
                let elements = self.parse_elements(']', "array", line)?;
                check_array_elements(&elements, line)?;
                Value::Array(elements)
            }
            Some(character)
                if character.is_ascii_digit() || matches!(character, '-' | '+' | '.') =>
            {
                self.parse_number()?
            }
            Some(character) if character.is_ascii_alphabetic() => {
                let word = self.take_while(is_name_character);
                if word.eq_ignore_ascii_case("true") {
                    Value::Boolean(true)
                } else if word.eq_ignore_ascii_case("false") {
                    Value::Boolean(false)
                } else {
                    return Err(syntax_error(
                        line,
                        column,
                        format!("expected a value, found `{word}` (strings need double quotes: \"{word}\")")
                    ));
                }
            }
            _ => return Err(self.expected("a value")),
        };
        Ok(Node {
            value,
            line,
            column,
        })
    }

    /// The elements of a list or array, up to `closing`. Unlike in groups, a trailing comma is a
    /// syntax error here: libconfig, which gala-gopher loads .meta files with, rejects it.
    fn parse_elements(
        &mut self,
        closing: char,
        kind: &str,
        opened_at: usize,
    ) -> Result<Vec<Node>, SyntaxError> {
        let mut elements = Vec::new();
        loop {
            self.skip_blanks_and_comments()?;
            match self.peek() {
                Some(character) if character == closing => {
                    self.bump();
                    return Ok(elements);
                }
                None => {
                    return Err(self.expected(&format!(
                        "`{closing}` to close the {kind} opened at line {opened_at}"
                    )))
                }
                Some(_) => {}
            }
            elements.push(self.parse_value()?);
            self.skip_blanks_and_comments()?;
            match self.peek() {
                Some(',') => {
                    self.bump();
                    self.skip_blanks_and_comments()?;
                    if self.peek() == Some(closing) {
                        return Err(self.expected(&format!(
                            "another element after `,` (libconfig, which gala-gopher reads .meta with, \
                             rejects a trailing comma before `{closing}`: remove it)"
                        )));
                    }
                }
                Some(character) if character == closing => {
                    self.bump();
                    return Ok(elements);
                }
                _ => {
                    return Err(self.expected(&format!(
                        "`,` or `{closing}` in the {kind} opened at line {opened_at}"
                    )))
                }
            }
        }
    }

    /// `"a" "b"` is one string "ab", as in C and libconfig; comments may sit between the parts.
    fn parse_adjacent_strings(&mut self) -> Result<String, SyntaxError> {
        let mut text = String::new();
        loop {
            self.parse_one_string(&mut text)?;
            self.skip_blanks_and_comments()?;
            if self.peek() != Some('"') {
                return Ok(text);
            }
        }
    }

    fn parse_one_string(&mut self, text: &mut String) -> Result<(), SyntaxError> {
        self.bump();
        loop {
            match self.peek() {
                Some('"') => {
                    self.bump();
                    return Ok(());
                }
                // libconfig would let a string run on to the next `"`, however many lines later;
                // stopping at the end of the line reports a missing quote where it is missing.
                None | Some('\n') => {
                    let found = self.describe_next();
                    return Err(syntax_error(
                        self.line,
                        self.column,
                        format!(
                            "expected `\"` to close the string, found {found} \
                             (a string ends on its own line: split long text into adjacent \"a\" \"b\" literals)"
                        )
                    ));
                }
                Some('\\') => {
                    let (line, column) = (self.line, self.column);
                    self.bump();
                    let escaped = match self.bump() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('f') => '\x0c',
                        Some('x') => {
                            let digits: String = (0..2)
                                .filter_map(|_| {
                                    self.peek()
                                        .filter(char::is_ascii_hexdigit)
                                        .and_then(|_| self.bump())
                                })
                                .collect();
                            match u8::from_str_radix(&digits, 16) {
                                Ok(byte) if digits.len() == 2 => char::from(byte),
                                _ => {
                                    return Err(syntax_error(
                                        line,
                                        column,
                                        format!(
                                        "expected two hex digits after `\\x`, found `\\x{digits}`"
                                    ),
                                    ))
                                }
                            }
                        }
                        other => {
                            let found = other.map_or("end of file".to_string(), |character| {
                                format!("`\\{character}`")
                            });
                            return Err(syntax_error(
                                line,
                                column,
                                format!("expected an escape (\\\" \\\\ \\n \\t \\r \\f \\xNN), found {found}")
                            ));
                        }
                    };
                    text.push(escaped);
                }
                Some(character) => {
                    text.push(character);
                    self.bump();
                }
            }
        }
    }

    fn parse_number(&mut self) -> Result<Value, SyntaxError> {
        let (line, column) = (self.line, self.column);
        let mut text = String::new();
        if let Some(sign) = self
            .peek()
            .filter(|character| matches!(character, '-' | '+'))
        {
            text.push(sign);
            self.bump();
        }
        while let Some(character) = self
            .peek()
            .filter(|character| character.is_ascii_alphanumeric() || *character == '.')
        {
            text.push(character);
            self.bump();
            // The sign of an exponent belongs to the number: 1e-5.
            let is_hex = text
                .trim_start_matches(['-', '+'])
                .to_ascii_lowercase()
                .starts_with("0x");
            if matches!(character, 'e' | 'E') && !is_hex {
                if let Some(sign) = self
                    .peek()
                    .filter(|character| matches!(character, '-' | '+'))
                {
                    text.push(sign);
                    self.bump();
                }
            }
        }
        parse_number_text(&text)
            .ok_or_else(|| syntax_error(line, column, format!("expected a number, found `{text}`")))
    }
}

/// libconfig numbers: 42, -7, 0x2A, 42L (64-bit), 1.5, .5, 1e-3.
fn parse_number_text(text: &str) -> Option<Value> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let without_suffix = unsigned
        .strip_suffix("LL")
        .or_else(|| unsigned.strip_suffix('L'))
        .unwrap_or(unsigned);
    if let Some(hex_digits) = without_suffix
        .strip_prefix("0x")
        .or_else(|| without_suffix.strip_prefix("0X"))
    {
        let magnitude = i64::from_str_radix(hex_digits, 16).ok()?;
        return Some(Value::Integer(if negative {
            -magnitude
        } else {
            magnitude
        }));
    }
    if !without_suffix.is_empty()
        && without_suffix
            .chars()
            .all(|character| character.is_ascii_digit())
    {
        let signed = if negative {
            format!("-{without_suffix}")
        } else {
            without_suffix.to_string()
        };
        return signed.parse().ok().map(Value::Integer);
    }
    let looks_like_float = unsigned.chars().any(|character| character.is_ascii_digit())
        && unsigned.chars().all(|character| {
            character.is_ascii_digit() || matches!(character, '.' | 'e' | 'E' | '-' | '+')
        });
    if looks_like_float {
        let magnitude: f64 = unsigned.parse().ok()?;
        return Some(Value::Float(if negative { -magnitude } else { magnitude }));
    }
    None
}

/// libconfig arrays hold scalars of one type.
fn check_array_elements(elements: &[Node], line: usize) -> Result<(), SyntaxError> {
    let kind_of = |value: &Value| match value {
        Value::String(_) => Some("a string"),
        Value::Integer(_) => Some("an integer"),
        Value::Float(_) => Some("a float"),
        Value::Boolean(_) => Some("a boolean"),
        Value::Group(_) | Value::List(_) | Value::Array(_) => None,
    };
    let mut first_kind = None;
    for element in elements {
        let Some(kind) = kind_of(&element.value) else {
            return Err(SyntaxError {
                line: element.line,
                column: element.column,
                message: format!(
                    "expected a number, string or boolean in the array opened at line {line}, found {} \
                     (use a list `( )` to hold groups)",
                    describe_value(&element.value)
                ),
            });
        };
        match first_kind {
            None => first_kind = Some(kind),
            Some(first) if first != kind => {
                return Err(SyntaxError {
                    line: element.line,
                    column: element.column,
                    message: format!(
                        "expected {first} in the array opened at line {line} (array elements share one type), found {}",
                        describe_value(&element.value)
                    ),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixture's text, with the short path the diagnostics should name.
    fn fixture(name: &str) -> (PathBuf, String) {
        let full_path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/meta")
            .join(name);
        let text = std::fs::read_to_string(&full_path).unwrap_or_else(|error| {
            panic!("failed to read fixture `{}`: {error}", full_path.display())
        });
        (PathBuf::from(name), text)
    }

    fn rendered(diagnostics: &[Diagnostic]) -> Vec<String> {
        diagnostics.iter().map(ToString::to_string).collect()
    }

    fn check_fixture(name: &str) -> (Option<MetaFile>, Vec<String>) {
        let (path, text) = fixture(name);
        let (meta_file, diagnostics) = check_file(&path, &text);
        (meta_file, rendered(&diagnostics))
    }

    fn check_text(text: &str) -> (Option<MetaFile>, Vec<String>) {
        let (meta_file, diagnostics) = check_file(Path::new("t.meta"), text);
        (meta_file, rendered(&diagnostics))
    }

    /// A file with one table (`table_name` on line 5) around `fields_text`, which starts on line 8.
    fn one_table(fields_text: &str) -> String {
        // Callers end every field with `,`; libconfig refuses the last one before `)`.
        let fields_text = match fields_text.trim_end().strip_suffix(',') {
            Some(without) => format!("{without}\n"),
            None => fields_text.to_string(),
        };
        format!(
            "version = \"1.0.0\"\nmeasurements:\n(\n    {{\n        table_name: \"t\",\n        entity_name: \"e\",\n        fields: (\n{fields_text}        )\n    }}\n)\n"
        )
    }

    #[test]
    fn good_meta_gives_no_diagnostics_and_parses_every_construct() {
        let (meta_file, diagnostics) = check_fixture("good.meta");
        assert_eq!(diagnostics, Vec::<String>::new());
        let meta_file = meta_file.expect("good.meta parses");
        assert_eq!(meta_file.version, "1.0.0");
        let names: Vec<&str> = meta_file
            .tables
            .iter()
            .map(|table| table.name.as_str())
            .collect();
        assert_eq!(names, ["tcp_conn", "tcp_rtt"]);
        let tcp_conn = &meta_file.tables[0];
        assert_eq!((tcp_conn.entity.as_str(), tcp_conn.line), ("tcp", 8));
        assert_eq!(field_names(tcp_conn), ["tgid", "comm", "rx_bytes", "conns"]);
        let kinds: Vec<&str> = meta_file
            .tables
            .iter()
            .flat_map(|table| &table.fields)
            .map(|field| field.kind.as_str())
            .collect();
        assert_eq!(
            kinds,
            [
                "key",
                "label",
                "counter",
                "gauge",
                "key",
                "histogram",
                "summary"
            ]
        );
        let rx_bytes = &tcp_conn.fields[2];
        assert_eq!(
            rx_bytes.description,
            "bytes received since the connection opened, with a \"quoted\" word"
        );
        assert_eq!(rx_bytes.line, 22);
        assert_eq!(tcp_conn.fields[1].line, 17);
        assert_eq!(meta_file.tables[1].line, 28);
    }

    #[test]
    fn missing_key_is_an_error_at_the_table_name() {
        let (_, diagnostics) = check_fixture("missing_key.meta");
        assert_eq!(
            diagnostics,
            ["missing_key.meta:6: error: table `cpu_usage` has no field of type `key`; gala-gopher rejects it: \
              mark the field that identifies a record (e.g. the pid) type: \"key\""]
        );
    }

    #[test]
    fn sixty_five_fields_are_too_many() {
        let (meta_file, diagnostics) = check_fixture("too_many_fields.meta");
        assert_eq!(
            diagnostics,
            ["too_many_fields.meta:6: error: table `wide_table` has 65 fields; gala-gopher allows at most 64 \
              (\"Too many fields\") and refuses the meta directory: split it into several tables"]
        );
        assert_eq!(
            meta_file.expect("too_many_fields.meta parses").tables[0]
                .fields
                .len(),
            65
        );
    }

    #[test]
    fn sixty_four_fields_are_allowed() {
        let mut fields = "{ description: \"d\", type: \"key\", name: \"f0\" },\n".to_string();
        for index in 1..64 {
            fields.push_str(&format!(
                "{{ description: \"d\", type: \"gauge\", name: \"f{index}\" }},\n"
            ));
        }
        assert_eq!(check_text(&one_table(&fields)).1, Vec::<String>::new());
    }

    #[test]
    fn unterminated_string_is_a_syntax_error_on_its_line() {
        let (meta_file, diagnostics) = check_fixture("bad_syntax.meta");
        assert_eq!(meta_file, None);
        assert_eq!(
            diagnostics,
            ["bad_syntax.meta:11:71: error: syntax error: expected `\"` to close the string, found end of line \
              (a string ends on its own line: split long text into adjacent \"a\" \"b\" literals)"]
        );
    }

    #[test]
    fn table_name_used_in_two_files_names_both_locations() {
        let files = [fixture("dup_a.meta"), fixture("dup_b.meta")];
        let (meta_files, diagnostics) = check_files(&files);
        assert_eq!(meta_files.len(), 2);
        assert_eq!(
            rendered(&diagnostics),
            ["dup_b.meta:15: error: table_name `conn_stats` is already used at dup_a.meta:6; table names must be unique \
              across all .meta files (gala-gopher refuses to load the meta directory)"]
        );
        // Each file alone is fine: the clash only exists in the workspace.
        assert_eq!(check_fixture("dup_a.meta").1, Vec::<String>::new());
        assert_eq!(check_fixture("dup_b.meta").1, Vec::<String>::new());
    }

    #[test]
    fn table_name_used_twice_in_one_file_is_reported_once() {
        let text = "version = \"1\"\nmeasurements: (\n\
                    { table_name: \"t\", entity_name: \"e\", fields: ({ description: \"d\", type: \"key\", name: \"k\" }) },\n\
                    { table_name: \"t\", entity_name: \"e\", fields: ({ description: \"d\", type: \"key\", name: \"k\" }) }\n)\n";
        let expected = ["t.meta:4: error: table_name `t` is already used at t.meta:3; table names must be unique across \
                         all .meta files (gala-gopher refuses to load the meta directory)"];
        assert_eq!(check_text(text).1, expected);
        let (_, diagnostics) = check_files(&[(PathBuf::from("t.meta"), text.to_string())]);
        assert_eq!(rendered(&diagnostics), expected);
    }

    #[test]
    fn table_name_longer_than_31_bytes_is_an_error() {
        let (_, diagnostics) = check_fixture("long_table_name.meta");
        assert_eq!(
            diagnostics,
            ["long_table_name.meta:6: error: table_name `tcp_connection_statistics_per_task` is 34 bytes; gala-gopher's \
              IMDB keeps at most 31 (char[32] with the NUL), so the lines the probe prints never match it: shorten it"]
        );
        let thirty_one = "t".repeat(31);
        let text = one_table("{ description: \"d\", type: \"key\", name: \"k\" },\n")
            .replace("\"t\"", &format!("\"{thirty_one}\""));
        assert_eq!(check_text(&text).1, Vec::<String>::new());
    }

    #[test]
    fn unknown_type_is_a_warning_not_an_error() {
        let (path, text) = fixture("unknown_type.meta");
        let (meta_file, diagnostics) = check_file(&path, &text);
        assert!(diagnostics
            .iter()
            .all(|diagnostic| diagnostic.severity == Severity::Warning));
        assert_eq!(
            rendered(&diagnostics),
            ["unknown_type.meta:13: warning: field `comm` of table `kill_info` has type `Unknown`; gala-gopher keeps it \
              but never exports it (exported types: key, label, counter, gauge, histogram, summary)"]
        );
        let table = &meta_file.expect("unknown_type.meta parses").tables[0];
        assert_eq!(table.fields[1].kind, "Unknown");
    }

    #[test]
    fn type_with_wrong_case_suggests_the_known_type() {
        let (_, diagnostics) = check_text(&one_table(
            "{ description: \"d\", type: \"Key\", name: \"k\" },\n",
        ));
        assert_eq!(
            diagnostics,
            [
                "t.meta:5: error: table `t` has no field of type `key`; gala-gopher rejects it: mark the field that \
                 identifies a record (e.g. the pid) type: \"key\"",
                "t.meta:8: warning: field `k` of table `t` has type `Key`; gala-gopher keeps it but never exports it \
                 (exported types: key, label, counter, gauge, histogram, summary) (types are case-sensitive: did you mean `key`?)",
            ]
        );
    }

    #[test]
    fn missing_required_settings_are_errors_at_their_group() {
        let (meta_file, diagnostics) = check_fixture("missing_required.meta");
        assert_eq!(
            diagnostics,
            [
                "missing_required.meta:5: error: table `exec_info` has no `entity_name`; every table needs table_name, \
                 entity_name and fields",
                "missing_required.meta:18: error: field 2 of table `exit_info` has no `name`; every field needs \
                 description, type and name",
            ]
        );
        // gala-gopher still counts a field without a name, so the probe must still print its value.
        let meta_file = meta_file.expect("missing_required.meta parses");
        assert_eq!(meta_file.tables[0].entity, "");
        assert_eq!(field_names(&meta_file.tables[1]), ["tgid", ""]);
        assert_eq!(meta_file.tables[1].fields[1].line, 18);
    }

    #[test]
    fn missing_top_level_settings_are_errors_at_line_1() {
        let (meta_file, diagnostics) = check_text("# nothing here\n");
        assert_eq!(
            diagnostics,
            [
                "t.meta:1: error: the file has no `version`; add version = \"1.0.0\" at the top",
                "t.meta:1: error: the file has no `measurements`; it needs measurements: ( { table_name: ..., \
                 entity_name: ..., fields: ( ... ) } )",
            ]
        );
        assert_eq!(meta_file.map(|meta_file| meta_file.tables.len()), Some(0));
    }

    #[test]
    fn wrongly_typed_settings_name_what_was_found() {
        let text = "version = 1\nmeasurements: { }\n";
        assert_eq!(
            check_text(text).1,
            [
                "t.meta:1: error: `version` must be a string, found the integer 1",
                "t.meta:2: error: `measurements` must be a list `( { ... }, ... )` of groups, found a group `{ ... }`",
            ]
        );
        let (_, diagnostics) = check_text(&one_table(
            "{ description: \"d\", type: \"key\", name: 7 },\n\"stray\",\n",
        ));
        assert_eq!(
            diagnostics,
            [
                "t.meta:8: error: `name` must be a string, found the integer 7",
                "t.meta:9: error: each entry of `fields` must be a group `{ ... }`, found the string \"stray\"",
            ]
        );
    }

    #[test]
    fn duplicate_field_name_names_the_first_line() {
        let fields = "{ description: \"d\", type: \"key\", name: \"pid\" },\n{ description: \"d\", type: \"label\", name: \"pid\" },\n";
        assert_eq!(
            check_text(&one_table(fields)).1,
            ["t.meta:9: error: duplicate field name `pid` in table `t` (first at line 8)"]
        );
    }

    #[test]
    fn long_names_descriptions_and_versions() {
        let long_field = "f".repeat(64);
        let exported_truncated = "g".repeat(40);
        let fields = format!(
            "{{ description: \"d\", type: \"key\", name: \"{long_field}\" }},\n\
             {{ description: \"{}\", type: \"gauge\", name: \"{exported_truncated}\" }},\n",
            "x".repeat(256)
        );
        let text = one_table(&fields).replace("\"1.0.0\"", "\"1.0.0-rc1+build.2024\"");
        let (_, diagnostics) = check_text(&text);
        assert_eq!(
            diagnostics,
            [
                "t.meta:1: warning: version \"1.0.0-rc1+build.2024\" is 20 bytes; gala-gopher keeps the first 15".to_string(),
                format!("t.meta:8: error: field name `{long_field}` is 64 bytes; gala-gopher keeps at most 63: shorten it"),
                format!(
                    "t.meta:9: warning: field name `{exported_truncated}` is 40 bytes; gala-gopher's IMDB keeps 31, so it is \
                     exported as `{}`",
                    "g".repeat(31)
                ),
                "t.meta:9: warning: description of field `gggggggggggggggggggggggggggggggggggggggg` of table `t` is 256 bytes; \
                 gala-gopher truncates it to 255"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn names_prometheus_cannot_take_and_percent_signs_are_warnings() {
        let fields =
            "{ description: \"share of time, in %\", type: \"key\", name: \"busy-ratio\" },\n";
        assert_eq!(
            check_text(&one_table(fields)).1,
            [
                "t.meta:8: warning: field name `busy-ratio` is not a valid Prometheus name ([a-zA-Z_][a-zA-Z0-9_]*), \
                 and gala-gopher exports it as is",
                "t.meta:8: warning: description contains `%`; gala-gopher uses it as a printf format (imdb.c \
                 IMDB_MetricCreate), which garbles it or, for `%s` and `%n`, crashes the daemon: write `percent`",
            ]
        );
    }

    #[test]
    fn unknown_settings_are_warnings() {
        let text = one_table("{ description: \"d\", type: \"key\", name: \"k\", unit: \"ns\" },\n")
            .replace("version", "author = \"me\"\nversion");
        assert_eq!(
            check_text(&text).1,
            [
                "t.meta:1: warning: unknown setting `author` at the top level; gala-gopher ignores it (expected: version, measurements)",
                "t.meta:9: warning: unknown setting `unit` in field `k` of table `t`; gala-gopher ignores it \
                 (expected: description, type, name)",
            ]
        );
    }

    // ---- the libconfig parser

    fn parse_error(text: &str) -> String {
        check_text(text).1.join("\n")
    }

    #[test]
    fn parser_reads_every_libconfig_value() {
        let text = "a = 42; b = -7L, c = 0x1F\nd = 1.5; e = -.5; f = 1e-3; g = TRUE; h = false\n\
                    i = [1, 2, 3]; j = (\"x\", { k = \"y\" }, ()); l = \"tab\\there\\x41\" /* between */ \"!\"\n";
        let settings = parse_document(text).expect("valid libconfig");
        let values: Vec<(&str, &Value, usize)> = settings
            .iter()
            .map(|setting| (setting.name.as_str(), &setting.node.value, setting.line))
            .collect();
        assert_eq!(values[0], ("a", &Value::Integer(42), 1));
        assert_eq!(values[1], ("b", &Value::Integer(-7), 1));
        assert_eq!(values[2], ("c", &Value::Integer(31), 1));
        assert_eq!(values[3], ("d", &Value::Float(1.5), 2));
        assert_eq!(values[4], ("e", &Value::Float(-0.5), 2));
        assert_eq!(values[5], ("f", &Value::Float(0.001), 2));
        assert_eq!(values[6], ("g", &Value::Boolean(true), 2));
        assert_eq!(values[7], ("h", &Value::Boolean(false), 2));
        assert!(matches!(values[8], ("i", Value::Array(elements), 3) if elements.len() == 3));
        assert!(matches!(values[9], ("j", Value::List(elements), 3) if elements.len() == 3));
        assert_eq!(
            values[10],
            ("l", &Value::String("tab\thereA!".to_string()), 3)
        );
    }

    #[test]
    fn parser_reports_line_column_expected_and_found() {
        assert_eq!(
            parse_error("version = \"1\"\nmeasurements: (\n  { table_name: \"t\" }\n"),
            "t.meta:4:1: error: syntax error: expected `,` or `)` in the list opened at line 2, found end of file"
        );
        assert_eq!(
            parse_error("measurements: (\n  { table_name: \"t\"\n)\n"),
            "t.meta:3:1: error: syntax error: expected a setting name or `}` to close the group opened at line 2, found `)`"
        );
        assert_eq!(
            parse_error("version = 1.0.0\n"),
            "t.meta:1:11: error: syntax error: expected a number, found `1.0.0`"
        );
        assert_eq!(
            parse_error("name: kill_info\n"),
            "t.meta:1:7: error: syntax error: expected a value, found `kill_info` (strings need double quotes: \"kill_info\")"
        );
        assert_eq!(
            parse_error("version \"1\"\n"),
            "t.meta:1:9: error: syntax error: expected `=` or `:` after `version`, found the string \"1\""
        );
        assert_eq!(
            parse_error("a = 1\n  a = 2\n"),
            "t.meta:2:3: error: syntax error: duplicate setting `a` in this group (first at line 1)"
        );
        assert_eq!(
            parse_error("a = 1\n/* never closed\n"),
            "t.meta:2:1: error: syntax error: expected `*/` to close this comment, found end of file"
        );
        assert_eq!(
            parse_error("a = \"bad \\q escape\"\n"),
            "t.meta:1:10: error: syntax error: expected an escape (\\\" \\\\ \\n \\t \\r \\f \\xNN), found `\\q`"
        );
        assert_eq!(
            parse_error("a = [1, \"two\"]\n"),
            "t.meta:1:9: error: syntax error: expected an integer in the array opened at line 1 (array elements share \
             one type), found the string \"two\""
        );
        assert_eq!(
            parse_error("} \n"),
            "t.meta:1:1: error: syntax error: expected a setting name, found `}`"
        );
    }

    #[test]
    fn diagnostic_display_shows_the_column_only_when_known() {
        let mut diagnostic = error(Path::new("p/x.meta"), 3, "rule".to_string());
        assert_eq!(diagnostic.to_string(), "p/x.meta:3: error: rule");
        diagnostic.column = Some(7);
        diagnostic.severity = Severity::Warning;
        assert_eq!(diagnostic.to_string(), "p/x.meta:3:7: warning: rule");
    }

    // ---- the line protocol

    fn kill_info_tables() -> Vec<Table> {
        let field = |name: &str, kind: &str| Field {
            name: name.to_string(),
            kind: kind.to_string(),
            description: String::new(),
            line: 1,
        };
        vec![
            Table {
                name: "kill_info".to_string(),
                entity: "kill".to_string(),
                line: 1,
                fields: vec![
                    field("killer_pid", "key"),
                    field("signal", "key"),
                    field("killed_pid", "key"),
                    field("comm", "label"),
                ],
            },
            Table {
                name: "dns_lookup".to_string(),
                entity: "dns".to_string(),
                line: 1,
                fields: vec![field("pid", "key")],
            },
        ]
    }

    #[test]
    fn check_line_accepts_a_complete_record() {
        let tables = kill_info_tables();
        assert_eq!(
            check_line(&tables, "|kill_info|123|10|456|bash|").map(|table| table.name.as_str()),
            Ok("kill_info")
        );
        assert_eq!(
            check_line(&tables, "|kill_info|123|10|456|bash|\n").map(|table| table.name.as_str()),
            Ok("kill_info")
        );
        // Only the key must be present; gala-gopher stores other empty values as "(null)".
        assert_eq!(
            check_line(&tables, "|kill_info|123|||bash|").map(|table| table.name.as_str()),
            Ok("kill_info")
        );
        assert_eq!(
            check_line(&tables, "|dns_lookup|7|").map(|table| table.name.as_str()),
            Ok("dns_lookup")
        );
    }

    #[test]
    fn check_line_rejects_what_gala_gopher_drops() {
        let tables = kill_info_tables();
        let reason = |line: &str| {
            check_line(&tables, line)
                .map(|table| table.name.clone())
                .unwrap_err()
        };
        assert_eq!(
            reason("|kill_info|123|10|456|"),
            "table kill_info has 4 fields, line has 3 values"
        );
        assert_eq!(
            reason("|kill_info|123|10|456|bash|x|"),
            "table kill_info has 4 fields, line has 5 values"
        );
        assert_eq!(
            reason("|kill_info||10|456|bash|"),
            "table kill_info: the first value (field `killer_pid`) is empty; gala-gopher drops the record (\"Key can't be null\")"
        );
        assert_eq!(
            reason("kill_info|123|10|456|bash|"),
            "line does not start with `|`; gala-gopher ignores it"
        );
        assert_eq!(
            reason("debug: attached"),
            "line does not start with `|`; gala-gopher ignores it"
        );
        assert_eq!(
            reason("|kill_info|123|10|456|bash"),
            "table kill_info: text after the last `|`: \"bash\"; end every value with `|`"
        );
        assert_eq!(
            reason("|kill_info|123|10|456|bash|\r"),
            "table kill_info: text after the last `|`: \"\\r\"; end every value with `|`"
        );
        assert_eq!(
            reason("|kill|123|"),
            "unknown table `kill` (gala-gopher drops the line); known tables: kill_info, dns_lookup"
        );
        assert_eq!(
            reason("|kill_info"),
            "no `|` after the table name `kill_info`"
        );
        assert_eq!(
            check_line(&[], "|kill_info|1|").unwrap_err(),
            "unknown table `kill_info` (gala-gopher drops the line); known tables: none"
        );
    }
}
