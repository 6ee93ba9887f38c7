//! One `--check` fact: its section, ✔/✘, the value found, the fix, and whether `-b` requires it.

use serde::Serialize;

use super::fix::FixAction;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub section: &'static str,
    /// A fixed name (`clang`) or, for a library the workspace names, that library's name.
    pub name: String,
    pub ok: bool,
    /// Whether `-b` needs it; only required rows decide the exit status.
    pub required: bool,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// What `--fix` does about a ✘ row.
    #[serde(skip)]
    pub(super) action: Option<FixAction>,
}

impl Row {
    pub fn new(section: &'static str, name: impl Into<String>, required: bool) -> Row {
        Row {
            section,
            name: name.into(),
            ok: false,
            required,
            value: String::new(),
            fix: None,
            action: None,
        }
    }

    pub fn pass(mut self, value: impl Into<String>) -> Row {
        self.ok = true;
        self.value = value.into();
        self
    }

    pub fn fail(mut self, value: impl Into<String>, fix: impl Into<String>) -> Row {
        self.ok = false;
        self.value = value.into();
        self.fix = Some(fix.into());
        self
    }

    /// Attaches `action` only to a ✘ row: a ✔ row has nothing to fix.
    pub fn with_action(mut self, action: FixAction) -> Row {
        if !self.ok {
            self.action = Some(action);
        }
        self
    }
}
