//! Variable substitution in a package's configuration files, as `AzureRmWebAppDeployment@4`'s
//! `JSONFiles` and `XmlVariableSubstitution` do it: the values of an environment's plain settings replace
//! the values of keys that already exist in `*.json` files (nested keys joined with `.`, typed as the file
//! types them) and in `*.config` files (`appSettings`, `connectionStrings`, `applicationSettings`).
//!
//! Both formats are rewritten in place over the original text: every byte outside a replaced value is
//! kept (order, comments, indentation, the XML declaration), so a reviewer's diff of a deployed file shows
//! only the values that changed. A file is read whole, bounded by [`MAX_FILE_BYTES`]; nothing else of the
//! package is held in memory.

use std::collections::BTreeMap;

use crate::error::Error;

mod json;
mod package;
mod xml;

pub use json::substitute_json;
pub use package::{FileChange, SubstitutionPlan, substitute_package};
pub use xml::substitute_xml;

/// The largest configuration file substituted; a larger one is refused with its name (configuration
/// files are small, and one this large is more likely data matched by a wide pattern).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// How deep a JSON document may nest before it is refused (recursion is bounded by it).
const MAX_DEPTH: usize = 128;

/// The values substituted, by name: an environment's plain settings. Secrets are never among them.
#[derive(Debug, Clone, Default)]
pub struct Values {
    by_name: BTreeMap<String, String>,
}

impl Values {
    /// Values from setting name → value.
    pub fn new(by_name: BTreeMap<String, String>) -> Values {
        Values { by_name }
    }

    /// Whether there is nothing to substitute.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The value for a JSON key path (segments from the root): the setting named by the segments joined
    /// with `.` (the Microsoft tasks' spelling), else with `__` (ASP.NET Core's, the one Linux
    /// environment variables allow).
    pub(crate) fn for_path(&self, path: &[String]) -> Option<&str> {
        self.by_name
            .get(&path.join("."))
            .or_else(|| self.by_name.get(&path.join("__")))
            .map(String::as_str)
    }

    /// The value for an XML `key`/`name` attribute: the setting of exactly that name.
    pub(crate) fn for_name(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(String::as_str)
    }
}

/// What substituting one file changed: the keys whose values were replaced, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substituted {
    /// The new text.
    pub text: String,
    /// Each key replaced (`Logging.LogLevel.Default`, `appSettings/Greeting`).
    pub keys: Vec<String>,
}

fn invalid(file: &str, text: &str, at: usize, reason: impl Into<String>) -> Error {
    let line = text[..at.min(text.len())].matches('\n').count() + 1;
    Error::Substitution {
        file: file.to_owned(),
        line,
        reason: reason.into(),
    }
}
