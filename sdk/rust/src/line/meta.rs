//! Finds one table of a gala-gopher `.meta` file, read with the libconfig reader `ebpf-probe` checks the
//! files with (`ebpf_probe_libconfig`), so a file that passes `ebpf-probe -b` always reads here the same way.

use std::borrow::Cow;

use ebpf_probe_libconfig::{find_setting, Node, Setting, Value};

use super::{LineError, MetaTable};

pub(super) fn find_table(meta_text: &str, table: &str) -> Result<MetaTable, LineError> {
    let error = |message: String| LineError::Meta {
        table: table.to_string(),
        message,
    };
    let document =
        ebpf_probe_libconfig::parse(meta_text.as_bytes()).map_err(|e| error(e.to_string()))?;
    let measurements = find_setting(&document.settings, "measurements")
        .and_then(|setting| elements(&setting.node.value))
        .ok_or_else(|| error("it has no `measurements` list".to_string()))?;
    let mut tables = Vec::new();
    for measurement in measurements {
        let Some(settings) = group(measurement) else {
            continue;
        };
        let Some(name) = string(settings, "table_name") else {
            continue;
        };
        if name != table {
            tables.push(name.into_owned());
            continue;
        }
        let fields = find_setting(settings, "fields")
            .and_then(|setting| elements(&setting.node.value))
            .ok_or_else(|| error("the table has no `fields` list".to_string()))?;
        let names = fields
            .iter()
            .enumerate()
            .map(|(index, field)| {
                group(field)
                    .and_then(|settings| string(settings, "name"))
                    .map(Cow::into_owned)
                    .ok_or_else(|| error(format!("field {} of the table has no `name`", index + 1)))
            })
            .collect::<Result<Vec<String>, LineError>>()?;
        return Ok(MetaTable {
            name: name.into_owned(),
            fields: names,
        });
    }
    Err(LineError::TableNotFound {
        table: table.to_string(),
        tables,
    })
}

/// The elements of a list `( … )` or an array `[ … ]`.
fn elements(value: &Value) -> Option<&[Node]> {
    match value {
        Value::List(nodes) | Value::Array(nodes) => Some(nodes),
        _ => None,
    }
}

fn group(node: &Node) -> Option<&[Setting]> {
    match &node.value {
        Value::Group(settings) => Some(settings),
        _ => None,
    }
}

/// A string setting as gala-gopher reads it (up to a NUL byte; bytes that are not UTF-8 become U+FFFD).
fn string<'s>(settings: &'s [Setting], name: &str) -> Option<Cow<'s, str>> {
    match &find_setting(settings, name)?.node.value {
        Value::String(bytes) => Some(String::from_utf8_lossy(bytes)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// probes/killprobe/killprobe.meta as shipped.
    const KILLPROBE_META: &str = r#"# killprobe: one record per kill(2) call, printed as |kill_info|killer_pid|signal|killed_pid|comm|
version = "1.0.0"
measurements:
(
    {
        table_name: "kill_info",
        entity_name: "kill",
        fields:
        (
            {
                description: "tgid of the process that called kill(2)",
                type: "key",
                name: "killer_pid",
            },
            {
                description: "signal number sent (0 only checks that the target exists)",
                type: "key",
                name: "signal",
            },
            {
                description: "pid argument of kill(2); negative values address a process group",
                type: "key",
                name: "killed_pid",
            },
            {
                description: "command name (comm) of the process that called kill(2)",
                type: "label",
                name: "comm",
            }
        )
    }
)
"#;

    /// Two tables, `=` and `;`, comments of every kind, joined strings, a `|` inside a description.
    const TWO_TABLES_META: &str = r#"
version = "1.0.0";
// the TCP tables
measurements = (
    /* first: links */
    {
        table_name = "tcp_link";
        entity_name = "tcp_link";
        fields = (
            { description = "pid"; type = "key"; name = "tgid"; },
            { description = "role: " "client|server"; type = "key"; name = "role"; },
            { description = "bytes"; type = "gauge"; name = "rx_bytes"; }
        );
    },
    {
        table_name: "tcp_abn",
        entity_name: "tcp_link",
        fields: (
            { description: "pid", type: "key", name: "tgid" }, # trailing comment
            { description: "retransmits", type: "counter", name: "retran_packets" }
        )
    }
);
"#;

    #[test]
    fn reads_a_shipped_meta() {
        let table = MetaTable::from_meta(KILLPROBE_META, "kill_info").unwrap();
        assert_eq!(table.name, "kill_info");
        assert_eq!(table.fields, ["killer_pid", "signal", "killed_pid", "comm"]);
    }

    #[test]
    fn reads_the_named_table_of_several() {
        let link = MetaTable::from_meta(TWO_TABLES_META, "tcp_link").unwrap();
        assert_eq!(link.fields, ["tgid", "role", "rx_bytes"]);
        let abnormal = MetaTable::from_meta(TWO_TABLES_META, "tcp_abn").unwrap();
        assert_eq!(abnormal.fields, ["tgid", "retran_packets"]);
    }

    #[test]
    fn a_missing_table_lists_the_ones_there() {
        let error = MetaTable::from_meta(TWO_TABLES_META, "tcp_stats").unwrap_err();
        assert_eq!(
            error,
            LineError::TableNotFound {
                table: "tcp_stats".to_string(),
                tables: vec!["tcp_link".to_string(), "tcp_abn".to_string()]
            }
        );
        assert_eq!(
            error.to_string(),
            "table tcp_stats is not in the .meta (its tables: tcp_link, tcp_abn): add it there, or fix the name"
        );
    }

    #[test]
    fn the_value_count_is_checked_at_the_first_print() {
        let table = MetaTable::from_meta(KILLPROBE_META, "kill_info").unwrap();
        let error = table.print(&[&1, &9, &42]).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            error.to_string(),
            "table kill_info has 4 fields in its .meta (killer_pid, signal, killed_pid, comm) but 3 values \
             were given: gala-gopher drops lines with another count; pass one value per field, in .meta order"
        );
        assert_eq!(
            table.format(&[&1, &9, &42, &"bash"]).unwrap(),
            "|kill_info|1|9|42|bash|\n"
        );
    }

    #[test]
    fn broken_text_is_reported_with_its_line() {
        let error = MetaTable::from_meta(
            "version = \"1\"\nmeasurements: (\n  { table_name: \"t\" \n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            error,
            "cannot read table t from the .meta: line 4, column 1: expected a setting name or `}` to close the \
             group opened at line 3, found end of file"
        );
        let error = MetaTable::from_meta("version = \"1\"", "t")
            .unwrap_err()
            .to_string();
        assert!(error.contains("no `measurements` list"), "{error}");
        let error = MetaTable::from_meta("x: \"open", "t")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 1, column 9: expected `\"` to close the string"),
            "{error}"
        );
        let nested = format!("measurements = {}", "(".repeat(20_000));
        let error = MetaTable::from_meta(&nested, "t").unwrap_err().to_string();
        assert!(error.contains("nested too deeply (limit 64)"), "{error}");
    }

    #[test]
    fn names_are_read_as_gala_gopher_reads_them() {
        // A NUL byte ends a libconfig string; a description need not be UTF-8 (not even in a &str, via \xNN).
        let text = KILLPROBE_META
            .replace("\"kill_info\"", "\"kill_info\\x00old\"")
            .replace("\"tgid of", "\"caf\\xe9: tgid of");
        let table = MetaTable::from_meta(&text, "kill_info").unwrap();
        assert_eq!(table.fields, ["killer_pid", "signal", "killed_pid", "comm"]);
    }
}
