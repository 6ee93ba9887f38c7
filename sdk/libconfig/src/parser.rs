//! The hand-written recursive-descent parser: every setting keeps its line, every syntax error names line,
//! column, what was expected and what was found.

use crate::{Document, Node, Setting, SyntaxError, Value, Warning, MAX_NESTING_DEPTH};

/// One step of the input: a character, or a byte that is not part of valid UTF-8 (which only strings and
/// comments may hold). Each counts as one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Char(char),
    Byte(u8),
}

impl Unit {
    /// The character the grammar sees: a stray byte matches nothing but "any character".
    fn as_char(self) -> char {
        match self {
            Unit::Char(character) => character,
            Unit::Byte(_) => char::REPLACEMENT_CHARACTER,
        }
    }

    fn push_to(self, bytes: &mut Vec<u8>) {
        match self {
            Unit::Char(character) => {
                bytes.extend_from_slice(character.encode_utf8(&mut [0; 4]).as_bytes())
            }
            Unit::Byte(byte) => bytes.push(byte),
        }
    }
}

fn units_of(text: &[u8]) -> Vec<Unit> {
    let mut units = Vec::with_capacity(text.len());
    for chunk in text.utf8_chunks() {
        units.extend(chunk.valid().chars().map(Unit::Char));
        units.extend(chunk.invalid().iter().copied().map(Unit::Byte));
    }
    units
}

fn syntax_error(line: usize, column: usize, message: String) -> SyntaxError {
    SyntaxError {
        line,
        column,
        message,
    }
}

pub(crate) fn parse_document(text: &[u8]) -> Result<Document, SyntaxError> {
    let mut parser = Parser {
        units: units_of(text),
        position: 0,
        line: 1,
        column: 1,
        depth: 0,
        warnings: Vec::new(),
    };
    let settings = parser.parse_settings(None)?;
    Ok(Document {
        settings,
        warnings: parser.warnings,
    })
}

struct Parser {
    units: Vec<Unit>,
    position: usize,
    /// 1-based, of `units[position]`.
    line: usize,
    column: usize,
    /// Groups, lists and arrays open around the current position.
    depth: usize,
    warnings: Vec<Warning>,
}

fn is_name_start(character: char) -> bool {
    character.is_ascii_alphabetic() || character == '*'
}

fn is_name_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '*')
}

impl Parser {
    fn peek_unit(&self) -> Option<Unit> {
        self.units.get(self.position).copied()
    }

    fn peek(&self) -> Option<char> {
        self.peek_unit().map(Unit::as_char)
    }

    fn peek_second(&self) -> Option<char> {
        self.units.get(self.position + 1).map(|unit| unit.as_char())
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
        let rest = || {
            self.units[self.position..]
                .iter()
                .map(|unit| unit.as_char())
        };
        match self.peek_unit() {
            None => "end of file".to_string(),
            Some(Unit::Byte(byte)) => format!(
                "the byte 0x{byte:02X}, which is not UTF-8 (only strings and comments may hold other encodings)"
            ),
            Some(Unit::Char('\n' | '\r')) => "end of line".to_string(),
            Some(Unit::Char('"')) => {
                let text: String = rest()
                    .skip(1)
                    .take_while(|c| !matches!(c, '"' | '\n'))
                    .take(30)
                    .collect();
                format!("the string \"{text}\"")
            }
            Some(Unit::Char(character)) if character.is_ascii_alphanumeric() || character == '*' => {
                let word: String = rest()
                    .take_while(|c| is_name_character(*c) || *c == '.')
                    .collect();
                format!("`{word}`")
            }
            Some(Unit::Char(character)) => format!("`{character}`"),
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
            Some(opening @ ('{' | '(' | '[')) => {
                // Recursion is bounded here, so no file can overflow the stack.
                if self.depth == MAX_NESTING_DEPTH {
                    return Err(syntax_error(
                        line,
                        column,
                        format!(
                            "`{opening}` is nested too deeply (limit {MAX_NESTING_DEPTH}): groups, lists and arrays \
                             nest at most {MAX_NESTING_DEPTH} levels deep, and a .meta file needs 4"
                        ),
                    ));
                }
                self.depth += 1;
                self.bump();
                let value = match opening {
                    '{' => self.parse_settings(Some(line)).map(Value::Group),
                    '(' => self.parse_elements(')', "list", line).map(Value::List),
                    _ => self
                        .parse_elements(']', "array", line)
                        .and_then(|elements| {
                            check_array_elements(&elements, line)?;
                            Ok(Value::Array(elements))
                        }),
                };
                self.depth -= 1;
                value?
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

    /// The elements of a list or array, up to `closing`. A trailing comma is accepted, as current libconfig does,
    /// with a warning: older releases (1.5, Debian 12's) reject it.
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
                        let (line, column) = (self.line, self.column);
                        self.warnings.push(Warning {
                            line,
                            column,
                            message: format!(
                                "trailing comma before `{closing}`: libconfig 1.7 (openEuler's) accepts it, but \
                                 libconfig 1.5 (Debian 12's) rejects the whole file; remove it to load everywhere"
                            ),
                        });
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
    fn parse_adjacent_strings(&mut self) -> Result<Vec<u8>, SyntaxError> {
        let mut text = Vec::new();
        let mut first_nul = None;
        loop {
            let nul = self.parse_one_string(&mut text)?;
            first_nul = first_nul.or(nul);
            self.skip_blanks_and_comments()?;
            if self.peek() != Some('"') {
                break;
            }
        }
        if let Some((line, column)) = first_nul {
            self.warnings.push(Warning {
                line,
                column,
                message: format!(
                    "NUL byte in a string: libconfig reads strings as C strings, so this one is {:?}",
                    String::from_utf8_lossy(&text)
                ),
            });
        }
        Ok(text)
    }

    /// Appends one literal to `text` as libconfig's scanner builds it; returns where its first NUL byte (a
    /// NUL in the file or `\x00`) is, if it has one.
    fn parse_one_string(
        &mut self,
        text: &mut Vec<u8>,
    ) -> Result<Option<(usize, usize)>, SyntaxError> {
        let literal_start = text.len();
        let mut first_nul = None;
        // libconfig appends each run of plain characters with strlen(), so a NUL in the file drops the rest
        // of its run, up to the next escape or the closing quote.
        let mut dropping_rest_of_run = false;
        self.bump();
        loop {
            match self.peek_unit() {
                Some(Unit::Char('"')) => {
                    self.bump();
                    break;
                }
                // libconfig would let a string run on to the next `"`, however many lines later;
                // stopping at the end of the line reports a missing quote where it is missing.
                None | Some(Unit::Char('\n')) => {
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
                Some(Unit::Char('\\')) => {
                    dropping_rest_of_run = false;
                    let (line, column) = (self.line, self.column);
                    self.bump();
                    let escaped = match self.bump() {
                        Some('"') => b'"',
                        Some('\\') => b'\\',
                        Some('n') => b'\n',
                        Some('t') => b'\t',
                        Some('r') => b'\r',
                        Some('f') => b'\x0c',
                        Some('x') => {
                            let digits: String = (0..2)
                                .filter_map(|_| {
                                    self.peek()
                                        .filter(char::is_ascii_hexdigit)
                                        .and_then(|_| self.bump())
                                })
                                .collect();
                            match u8::from_str_radix(&digits, 16) {
                                Ok(byte) if digits.len() == 2 => byte,
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
                    if escaped == 0 {
                        first_nul = first_nul.or(Some((line, column)));
                    }
                    text.push(escaped);
                }
                Some(Unit::Char('\0')) => {
                    first_nul = first_nul.or(Some((self.line, self.column)));
                    dropping_rest_of_run = true;
                    self.bump();
                }
                Some(unit) => {
                    if !dropping_rest_of_run {
                        unit.push_to(text);
                    }
                    self.bump();
                }
            }
        }
        // The literal is handed on as a C string: an escaped NUL ends it.
        if let Some(nul) = text[literal_start..].iter().position(|byte| *byte == 0) {
            text.truncate(literal_start + nul);
        }
        Ok(first_nul)
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
            return Err(syntax_error(
                element.line,
                element.column,
                format!(
                    "expected a number, string or boolean in the array opened at line {line}, found {} \
                     (use a list `( )` to hold groups)",
                    element.value.describe()
                ),
            ));
        };
        match first_kind {
            None => first_kind = Some(kind),
            Some(first) if first != kind => {
                return Err(syntax_error(
                    element.line,
                    element.column,
                    format!(
                        "expected {first} in the array opened at line {line} (array elements share one type), found {}",
                        element.value.describe()
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{parse, Value, Warning, MAX_NESTING_DEPTH};

    /// `line:column: message` of the syntax error `text` has.
    fn error_in(text: impl AsRef<[u8]>) -> String {
        let error = parse(text.as_ref()).expect_err("a syntax error");
        format!("{}:{}: {}", error.line, error.column, error.message)
    }

    /// The one top-level setting's string value, and the warnings.
    fn string_of(text: &[u8]) -> (Vec<u8>, Vec<Warning>) {
        let document = parse(text).expect("valid libconfig");
        match &document.settings[0].node.value {
            Value::String(bytes) => (bytes.clone(), document.warnings),
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn reads_every_libconfig_value() {
        let text = "a = 42; b = -7L, c = 0x1F\nd = 1.5; e = -.5; f = 1e-3; g = TRUE; h = false\n\
                    i = [1, 2, 3]; j = (\"x\", { k = \"y\" }, ()); l = \"tab\\there\\x41\" /* between */ \"!\"\n";
        let document = parse(text.as_bytes()).expect("valid libconfig");
        assert_eq!(document.warnings, []);
        let values: Vec<(&str, &Value, usize)> = document
            .settings
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
            ("l", &Value::String(b"tab\thereA!".to_vec()), 3)
        );
        assert_eq!(
            (document.settings[1].line, document.settings[1].column),
            (1, 9)
        );
    }

    #[test]
    fn errors_name_line_column_expected_and_found() {
        assert_eq!(
            error_in("version = \"1\"\nmeasurements: (\n  { table_name: \"t\" }\n"),
            "4:1: expected `,` or `)` in the list opened at line 2, found end of file"
        );
        assert_eq!(
            error_in("measurements: (\n  { table_name: \"t\"\n)\n"),
            "3:1: expected a setting name or `}` to close the group opened at line 2, found `)`"
        );
        assert_eq!(
            error_in("version = 1.0.0\n"),
            "1:11: expected a number, found `1.0.0`"
        );
        assert_eq!(
            error_in("name: kill_info\n"),
            "1:7: expected a value, found `kill_info` (strings need double quotes: \"kill_info\")"
        );
        assert_eq!(
            error_in("version \"1\"\n"),
            "1:9: expected `=` or `:` after `version`, found the string \"1\""
        );
        assert_eq!(
            error_in("a = 1\n  a = 2\n"),
            "2:3: duplicate setting `a` in this group (first at line 1)"
        );
        assert_eq!(
            error_in("a = 1\n/* never closed\n"),
            "2:1: expected `*/` to close this comment, found end of file"
        );
        assert_eq!(
            error_in("a = \"bad \\q escape\"\n"),
            "1:10: expected an escape (\\\" \\\\ \\n \\t \\r \\f \\xNN), found `\\q`"
        );
        assert_eq!(
            error_in("a = [1, \"two\"]\n"),
            "1:9: expected an integer in the array opened at line 1 (array elements share one type), \
             found the string \"two\""
        );
        let document = parse(b"a = (1, 2,)\n").unwrap();
        assert_eq!(document.warnings.len(), 1);
        assert_eq!(
            (document.warnings[0].line, document.warnings[0].column),
            (1, 11)
        );
        assert!(document.warnings[0].message.contains("libconfig 1.5"));
        assert_eq!(error_in("} \n"), "1:1: expected a setting name, found `}`");
        let error = parse(b"x: \"open").unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 1, column 9: expected `\"` to close the string, found end of file (a string ends on its own \
             line: split long text into adjacent \"a\" \"b\" literals)"
        );
    }

    #[test]
    fn nesting_is_bounded_instead_of_overflowing_the_stack() {
        let opened = "a = ".to_string() + &"(".repeat(20_000);
        assert_eq!(
            error_in(&opened),
            format!(
                "1:{}: `(` is nested too deeply (limit 64): groups, lists and arrays nest at most 64 levels \
                 deep, and a .meta file needs 4",
                5 + MAX_NESTING_DEPTH
            )
        );
        let groups = "a = ".to_string() + &"{ b = ".repeat(20_000);
        assert!(error_in(&groups).contains("`{` is nested too deeply (limit 64)"));
        let arrays = "a = ".to_string() + &"([".repeat(10_000);
        assert!(error_in(&arrays).contains("nested too deeply (limit 64)"));
        // Exactly the limit is fine.
        let deepest = format!(
            "a = {}{}",
            "(".repeat(MAX_NESTING_DEPTH),
            ")".repeat(MAX_NESTING_DEPTH)
        );
        assert!(parse(deepest.as_bytes()).is_ok());
    }

    #[test]
    fn a_nul_byte_ends_a_string_as_in_c_and_is_warned_about() {
        // An escaped NUL ends its literal; libconfig joins the parts of "a" "b" after cutting each.
        let (text, warnings) = string_of(b"name = \"m\\x00x\"\n");
        assert_eq!(text, b"m");
        assert_eq!(
            warnings,
            [Warning {
                line: 1,
                column: 10,
                message: "NUL byte in a string: libconfig reads strings as C strings, so this one is \"m\""
                    .to_string()
            }]
        );
        assert_eq!(string_of(b"name = \"a\\x00b\" \"c\"").0, b"ac");
        // A NUL byte in the file drops the rest of its run of plain characters (libconfig appends runs with
        // strlen), up to the next escape.
        let (text, warnings) = string_of(b"name = \"m\0x\"");
        assert_eq!(text, b"m");
        assert_eq!((warnings[0].line, warnings[0].column), (1, 10));
        assert_eq!(string_of(b"name = \"m\0x\\ty\"").0, b"m\ty");
        assert_eq!(string_of(b"name = \"plain\"").1, []);
    }

    #[test]
    fn strings_and_comments_may_hold_bytes_that_are_not_utf8() {
        // Latin-1: "caf\xe9" (café), as a file written by an editor in ISO-8859-1 holds it.
        let text = b"# r\xe9sum\xe9\n/* \xff */ d = \"caf\xe9\" // \xe9\n";
        let (value, warnings) = string_of(text);
        assert_eq!(value, b"caf\xe9");
        assert_eq!(warnings, []);
        // An escape gives the byte itself, as libconfig does, not a character.
        assert_eq!(string_of(b"d = \"\\xe9\"").0, b"\xe9");
        // Valid UTF-8 is kept as is.
        assert_eq!(string_of("d = \"café\"".as_bytes()).0, "café".as_bytes());
    }

    #[test]
    fn a_byte_that_is_not_utf8_outside_strings_and_comments_is_an_error_at_its_position() {
        assert_eq!(
            error_in(b"a = 1\n  \xe9 = 2\n"),
            "2:3: expected a setting name, found the byte 0xE9, which is not UTF-8 (only strings and comments \
             may hold other encodings)"
        );
        // Columns count characters, not bytes.
        assert_eq!(
            error_in("d = \"é\" \u{e9}\n".as_bytes()),
            "1:9: expected a setting name, found `é`"
        );
        assert_eq!(
            error_in(b"a = \"\xe9\" x\xe9 = 1\n"),
            "1:10: expected `=` or `:` after `x`, found the byte 0xE9, which is not UTF-8 (only strings and \
             comments may hold other encodings)"
        );
    }
}
