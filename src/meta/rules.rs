//! gala-gopher's loading rules for `.meta` files: each file's own (the `Checker`) and across files (table names).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ebpf_probe_libconfig::{self as libconfig, find_setting, Setting, Value};

use super::{Diagnostic, Field, MetaFile, Severity, Table};

/// The field types gala-gopher exports; any other `type` is stored but never exported.
const FIELD_TYPES: [&str; 6] = ["key", "label", "counter", "gauge", "histogram", "summary"];

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

/// Parses and checks one file's own rules; returns the parsed file (when syntax allowed) and all diagnostics.
///
/// `text` is bytes because libconfig does not require UTF-8: strings and comments may hold other encodings.
pub fn check_file(path: &Path, text: &[u8]) -> (Option<MetaFile>, Vec<Diagnostic>) {
    let document = match libconfig::parse(text) {
        Ok(document) => document,
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
        diagnostics: document
            .warnings
            .into_iter()
            .map(|warning| Diagnostic {
                path: path.to_path_buf(),
                line: warning.line,
                column: Some(warning.column),
                severity: Severity::Warning,
                message: warning.message,
            })
            .collect(),
    };
    let meta_file = checker.check_document(&document.settings);
    let mut diagnostics = checker.diagnostics;
    diagnostics.sort_by_key(|diagnostic| diagnostic.line);
    (Some(meta_file), diagnostics)
}

/// Checks several files together: each file's rules plus workspace-wide `table_name` uniqueness.
pub fn check_files(files: &[(PathBuf, Vec<u8>)]) -> (Vec<MetaFile>, Vec<Diagnostic>) {
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

/// Collects diagnostics for one file while its settings are turned into a `MetaFile`.
struct Checker<'p> {
    path: &'p Path,
    diagnostics: Vec<Diagnostic>,
}

/// A required string setting, as gala-gopher reads it.
struct Found {
    /// Bytes that are not UTF-8 (a Latin-1 description) replaced by U+FFFD.
    value: String,
    /// The length in the file's encoding, which is what gala-gopher's limits count.
    byte_length: usize,
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
            if version.byte_length > MAX_VERSION_BYTES {
                self.warning(
                    version.line,
                    format!(
                        "version \"{}\" is {} bytes; gala-gopher keeps the first {MAX_VERSION_BYTES}",
                        version.value, version.byte_length
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
        let table_name_setting = find_setting(settings, "table_name");
        let context = match table_name_setting.map(|setting| &setting.node.value) {
            Some(Value::String(name)) => format!("table `{}`", String::from_utf8_lossy(name)),
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
            self.check_table_name(table_name);
        }
        if let Some(entity_name) = &entity_name {
            self.check_name("entity_name", entity_name, true);
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

    fn check_table_name(&mut self, found: &Found) {
        let (table_name, line) = (found.value.as_str(), found.line);
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
        if found.byte_length > MAX_TABLE_NAME_BYTES {
            self.error(
                line,
                format!(
                    "table_name `{table_name}` is {} bytes; gala-gopher's IMDB keeps at most {MAX_TABLE_NAME_BYTES} \
                     (char[32] with the NUL), so the lines the probe prints never match it: shorten it",
                    found.byte_length
                )
            );
        }
    }

    /// Length and character rules shared by `entity_name` and field names (`setting` says which).
    fn check_name(&mut self, setting: &str, found: &Found, exported: bool) {
        let (name, line) = (found.value.as_str(), found.line);
        if name.is_empty() {
            self.error(line, format!("{setting} is empty"));
            return;
        }
        if found.byte_length > MAX_META_NAME_BYTES {
            self.error(
                line,
                format!(
                    "{setting} `{name}` is {} bytes; gala-gopher keeps at most {MAX_META_NAME_BYTES}: shorten it",
                    found.byte_length
                )
            );
        } else if found.byte_length > MAX_EXPORTED_NAME_BYTES {
            self.warning(
                line,
                format!(
                    "{setting} `{name}` is {} bytes; gala-gopher's IMDB keeps {MAX_EXPORTED_NAME_BYTES}, \
                     so it is exported as `{}`",
                    found.byte_length,
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
        let context = match find_setting(settings, "name").map(|setting| &setting.node.value) {
            Some(Value::String(name)) => format!(
                "field `{}` of {table_context}",
                String::from_utf8_lossy(name)
            ),
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
            self.check_name("field name", name, exported);
            self.warn_percent_sign("field name", &name.value, name.line);
        }
        if let Some(description) = &description {
            if description.byte_length > MAX_DESCRIPTION_BYTES {
                self.warning(
                    description.line,
                    format!(
                        "description of {context} is {} bytes; gala-gopher truncates it to {MAX_DESCRIPTION_BYTES}",
                        description.byte_length
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
    ) -> Option<Found> {
        let Some(setting) = find_setting(settings, name) else {
            self.error(
                group_line,
                format!("{context} has no `{name}`; {what_to_do}"),
            );
            return None;
        };
        match &setting.node.value {
            Value::String(bytes) => Some(Found {
                value: String::from_utf8_lossy(bytes).into_owned(),
                byte_length: bytes.len(),
                line: setting.line,
            }),
            other => {
                self.error(
                    setting.line,
                    format!("`{name}` must be a string, found {}", other.describe()),
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
        let Some(setting) = find_setting(settings, name) else {
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
                    setting.node.value.describe()
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
                        other.describe()
                    ),
                ),
            }
        }
        Some(groups)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::line::field_names;

    /// A fixture's bytes, with the short path the diagnostics should name.
    fn fixture(name: &str) -> (PathBuf, Vec<u8>) {
        let full_path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/meta")
            .join(name);
        let text = std::fs::read(&full_path).unwrap_or_else(|error| {
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
        check_bytes(text.as_bytes())
    }

    fn check_bytes(text: &[u8]) -> (Option<MetaFile>, Vec<String>) {
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
        let (_, diagnostics) = check_files(&[(PathBuf::from("t.meta"), text.as_bytes().to_vec())]);
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

    #[test]
    fn a_nul_byte_ends_a_table_name_as_gala_gopher_reads_it() {
        // libconfig hands strings out as C strings: gala-gopher's table is `m` in both files.
        let table = |name: &str| {
            one_table("{ description: \"d\", type: \"key\", name: \"k\" },\n")
                .replace("\"t\"", &format!("\"{name}\""))
        };
        let (meta_file, diagnostics) = check_text(&table("m\\x00x"));
        assert_eq!(meta_file.expect("parses").tables[0].name, "m");
        assert_eq!(
            diagnostics,
            ["t.meta:5:23: warning: NUL byte in a string: libconfig reads strings as C strings, so this one is \"m\""]
        );
        let files = [
            (PathBuf::from("a.meta"), table("m").into_bytes()),
            (PathBuf::from("b.meta"), table("m\0x").into_bytes()),
        ];
        assert_eq!(
            rendered(&check_files(&files).1),
            [
                "b.meta:5:23: warning: NUL byte in a string: libconfig reads strings as C strings, so this one is \"m\"",
                "b.meta:5: error: table_name `m` is already used at a.meta:5; table names must be unique across all \
                 .meta files (gala-gopher refuses to load the meta directory)",
            ]
        );
    }

    #[test]
    fn a_description_that_is_not_utf8_is_accepted_and_measured_in_bytes() {
        // Latin-1, as an editor set to ISO-8859-1 writes it: 255 bytes, the most gala-gopher keeps.
        let mut description = b"caf\xe9 ".to_vec();
        description.resize(255, b'x');
        let mut text = b"version = \"1.0.0\"\n# r\xe9sum\xe9\nmeasurements: ({ table_name: \"t\", entity_name: \"e\",\n\
                         fields: ({ description: \""
            .to_vec();
        text.extend_from_slice(&description);
        text.extend_from_slice(b"\", type: \"key\", name: \"k\" }) })\n");
        let (meta_file, diagnostics) = check_bytes(&text);
        assert_eq!(diagnostics, Vec::<String>::new());
        let field = &meta_file.expect("parses").tables[0].fields[0];
        assert!(field.description.starts_with("caf\u{fffd} x"), "{field:?}");
        // Anywhere else such a byte is still a syntax error at its line and column.
        let (meta_file, diagnostics) = check_bytes(b"version = \"1\"\n \xe9\n");
        assert_eq!(meta_file, None);
        assert_eq!(
            diagnostics,
            ["t.meta:2:2: error: syntax error: expected a setting name, found the byte 0xE9, which is not UTF-8 \
              (only strings and comments may hold other encodings)"]
        );
    }
}
