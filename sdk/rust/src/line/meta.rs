//! A small reader for gala-gopher's libconfig `.meta` files: just enough to find a table's name and its
//! fields' names, in order. `ebpf-probe -b` validates the files fully; this only has to read good ones.

use super::{LineError, MetaTable};

/// A libconfig value. Scalars keep their text (string contents, or the raw number/boolean token).
#[derive(Debug)]
enum Value {
    Scalar(String),
    /// `{ name: value; … }`
    Group(Vec<(String, Value)>),
    /// `( value, … )` and `[ value, … ]`
    List(Vec<Value>),
}

impl Value {
    fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Group(settings) => settings.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Value::Scalar(text) => Some(text),
            _ => None,
        }
    }

    fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }
}

pub(super) fn find_table(meta_text: &str, table: &str) -> Result<MetaTable, LineError> {
    let error = |message: String| LineError::Meta {
        table: table.to_string(),
        message,
    };
    let root = Parser::new(meta_text)
        .map_err(error)?
        .parse()
        .map_err(error)?;
    let measurements = root
        .get("measurements")
        .and_then(Value::as_list)
        .ok_or_else(|| error("it has no `measurements` list".to_string()))?;
    let mut tables = Vec::new();
    for measurement in measurements {
        let Some(name) = measurement.get("table_name").and_then(Value::as_str) else {
            continue;
        };
        if name != table {
            tables.push(name.to_string());
            continue;
        }
        let fields = measurement
            .get("fields")
            .and_then(Value::as_list)
            .ok_or_else(|| error("the table has no `fields` list".to_string()))?;
        let names = fields
            .iter()
            .enumerate()
            .map(|(index, field)| {
                field
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| error(format!("field {} of the table has no `name`", index + 1)))
            })
            .collect::<Result<Vec<String>, LineError>>()?;
        return Ok(MetaTable {
            name: name.to_string(),
            fields: names,
        });
    }
    Err(LineError::TableNotFound {
        table: table.to_string(),
        tables,
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A setting name, number or boolean.
    Word(String),
    /// A string's contents (escapes decoded, adjacent strings joined, as libconfig does).
    Str(String),
    /// One of `{ } ( ) [ ] : = , ;`
    Punct(char),
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    position: usize,
}

impl Parser {
    fn new(text: &str) -> Result<Parser, String> {
        Ok(Parser {
            tokens: tokenize(text)?,
            position: 0,
        })
    }

    fn parse(mut self) -> Result<Value, String> {
        let settings = self.settings(None)?;
        Ok(Value::Group(settings))
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position).map(|(token, _)| token)
    }

    fn line(&self) -> usize {
        self.tokens
            .get(self.position)
            .or(self.tokens.last())
            .map_or(1, |(_, line)| *line)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self
            .tokens
            .get(self.position)
            .map(|(token, _)| token.clone());
        self.position += 1;
        token
    }

    /// `name (:|=) value [;|,]` until `end` (or the end of the text for the top level).
    fn settings(&mut self, end: Option<char>) -> Result<Vec<(String, Value)>, String> {
        let mut settings = Vec::new();
        loop {
            match (self.peek(), end) {
                (None, None) => return Ok(settings),
                (None, Some(end)) => return Err(format!("line {}: missing `{end}`", self.line())),
                (Some(Token::Punct(c)), Some(end)) if *c == end => {
                    self.position += 1;
                    return Ok(settings);
                }
                _ => {}
            }
            let line = self.line();
            let name = match self.next() {
                Some(Token::Word(name)) => name,
                other => {
                    return Err(format!(
                        "line {line}: expected a setting name, found {other:?}"
                    ))
                }
            };
            match self.next() {
                Some(Token::Punct(':')) | Some(Token::Punct('=')) => {}
                other => {
                    return Err(format!(
                        "line {line}: expected `:` or `=` after `{name}`, found {other:?}"
                    ))
                }
            }
            let value = self.value()?;
            settings.push((name, value));
            if let Some(Token::Punct(';' | ',')) = self.peek() {
                self.position += 1;
            }
        }
    }

    fn value(&mut self) -> Result<Value, String> {
        let line = self.line();
        match self.next() {
            Some(Token::Word(word)) => Ok(Value::Scalar(word)),
            Some(Token::Str(text)) => Ok(Value::Scalar(text)),
            Some(Token::Punct('{')) => Ok(Value::Group(self.settings(Some('}'))?)),
            Some(Token::Punct('(')) => Ok(Value::List(self.list(')')?)),
            Some(Token::Punct('[')) => Ok(Value::List(self.list(']')?)),
            other => Err(format!("line {line}: expected a value, found {other:?}")),
        }
    }

    /// `value, value, …` until `end`; a trailing comma is tolerated (ebpf-probe reports it at build time).
    fn list(&mut self, end: char) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        loop {
            match self.peek() {
                Some(Token::Punct(c)) if *c == end => {
                    self.position += 1;
                    return Ok(items);
                }
                None => return Err(format!("line {}: missing `{end}`", self.line())),
                _ => {}
            }
            items.push(self.value()?);
            match self.peek() {
                Some(Token::Punct(',')) => self.position += 1,
                Some(Token::Punct(c)) if *c == end => {}
                other => {
                    return Err(format!(
                        "line {}: expected `,` or `{end}` in a list, found {other:?}",
                        self.line()
                    ))
                }
            }
        }
    }
}

/// Tokens with their line numbers. Comments (`#`, `//`, `/* */`) and `@include` lines are skipped.
fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, String> {
    let mut tokens: Vec<(Token, usize)> = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' | '@' => while chars.next_if(|&c| c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'/') => while chars.next_if(|&c| c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let start = line;
                let mut previous = ' ';
                loop {
                    match chars.next() {
                        Some('/') if previous == '*' => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            previous = c;
                        }
                        None => return Err(format!("line {start}: unterminated /* comment")),
                    }
                }
            }
            '{' | '}' | '(' | ')' | '[' | ']' | ':' | '=' | ',' | ';' => {
                tokens.push((Token::Punct(c), line));
            }
            '"' => {
                let start = line;
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => text.push('\n'),
                            Some('t') => text.push('\t'),
                            Some('r') => text.push('\r'),
                            Some('f') => text.push('\u{c}'),
                            Some(other) => text.push(other),
                            None => return Err(format!("line {start}: unterminated string")),
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            text.push(c);
                        }
                        None => return Err(format!("line {start}: unterminated string")),
                    }
                }
                // libconfig joins adjacent string literals ("a" "b" is "ab").
                if let Some((Token::Str(previous), _)) = tokens.last_mut() {
                    previous.push_str(&text);
                } else {
                    tokens.push((Token::Str(text), start));
                }
            }
            c => {
                let mut word = String::from(c);
                while let Some(c) =
                    chars.next_if(|&c| !c.is_whitespace() && !"{}()[]:=,;\"#".contains(c))
                {
                    word.push(c);
                }
                tokens.push((Token::Word(word), line));
            }
        }
    }
    Ok(tokens)
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
        assert!(
            error.starts_with("cannot read table t from the .meta: line 3: missing `}`"),
            "{error}"
        );
        let error = MetaTable::from_meta("version = \"1\"", "t")
            .unwrap_err()
            .to_string();
        assert!(error.contains("no `measurements` list"), "{error}");
        let error = MetaTable::from_meta("x: \"open", "t")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 1: unterminated string"), "{error}");
    }
}
