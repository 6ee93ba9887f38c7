//! gala-gopher's line protocol: checks one `|table|v1|…|` line a probe printed against the `.meta` tables.

use super::Table;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Field;

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
