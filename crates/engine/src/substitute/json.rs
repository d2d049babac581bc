//! JSON substitution over the original text: a scanner that knows where each scalar value starts and
//! ends and the key path leading to it, so a replaced value is spliced in and nothing else moves.
//! Comments (`//`, `/* */`), which `appsettings.json` files often carry, are skipped and kept.

use super::{MAX_DEPTH, Substituted, Values, invalid};
use crate::error::Error;

/// Replaces, in a JSON document, every scalar value whose key path names one of `values`; keys that are
/// not in the file are never added. A value keeps the file's type when it can: a number stays a number
/// when the setting's value is one, a boolean stays a boolean for `true`/`false`; anything else becomes a
/// string. `file` names the file in errors.
pub fn substitute_json(text: &str, file: &str, values: &Values) -> Result<Substituted, Error> {
    let mut scan = Scan {
        text,
        bytes: text.as_bytes(),
        at: 0,
        file,
        values,
        edits: Vec::new(),
        keys: Vec::new(),
    };
    // A byte-order mark is kept as it is.
    if text.starts_with('\u{feff}') {
        scan.at = 3;
    }
    scan.skip_blank()?;
    let mut path = Vec::new();
    scan.value(&mut path, 0)?;
    scan.skip_blank()?;
    if scan.at != scan.bytes.len() {
        return Err(scan.error("text after the end of the document"));
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end, replacement) in &scan.edits {
        out.push_str(&text[copied..*start]);
        out.push_str(replacement);
        copied = *end;
    }
    out.push_str(&text[copied..]);
    Ok(Substituted {
        text: out,
        keys: scan.keys,
    })
}

struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    file: &'a str,
    values: &'a Values,
    /// (start, end, replacement), in file order.
    edits: Vec<(usize, usize, String)>,
    keys: Vec<String>,
}

/// What kind of scalar a value was, for typing its replacement.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scalar {
    String,
    Number,
    Bool,
    Null,
}

impl Scan<'_> {
    fn error(&self, reason: &str) -> Error {
        invalid(
            self.file,
            self.text,
            self.at,
            format!("not valid JSON: {reason}"),
        )
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_blank(&mut self) -> Result<(), Error> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.at += 1,
                Some(b'/') if self.bytes.get(self.at + 1) == Some(&b'/') => {
                    while self.peek().is_some_and(|b| b != b'\n') {
                        self.at += 1;
                    }
                }
                Some(b'/') if self.bytes.get(self.at + 1) == Some(&b'*') => {
                    let rest = &self.text[self.at + 2..];
                    let end = rest
                        .find("*/")
                        .ok_or_else(|| self.error("a comment that is never closed"))?;
                    self.at += 2 + end + 2;
                }
                _ => return Ok(()),
            }
        }
    }

    fn value(&mut self, path: &mut Vec<String>, depth: usize) -> Result<(), Error> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        let start = self.at;
        let kind = match self.peek() {
            Some(b'{') => return self.object(path, depth),
            Some(b'[') => return self.array(path, depth),
            Some(b'"') => {
                self.string()?;
                Scalar::String
            }
            Some(b't') => self.literal("true", Scalar::Bool)?,
            Some(b'f') => self.literal("false", Scalar::Bool)?,
            Some(b'n') => self.literal("null", Scalar::Null)?,
            Some(b'-' | b'0'..=b'9') => {
                while self
                    .peek()
                    .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                {
                    self.at += 1;
                }
                if serde_json::from_str::<serde_json::Number>(&self.text[start..self.at]).is_err() {
                    return Err(self.error("a malformed number"));
                }
                Scalar::Number
            }
            _ => return Err(self.error("a value was expected")),
        };
        if !path.is_empty()
            && let Some(value) = self.values.for_path(path)
        {
            self.edits.push((start, self.at, typed(value, kind)));
            self.keys.push(path.join("."));
        }
        Ok(())
    }

    fn literal(&mut self, word: &str, kind: Scalar) -> Result<Scalar, Error> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(kind)
        } else {
            Err(self.error("a value was expected"))
        }
    }

    /// Scans a string and returns its decoded text.
    fn string(&mut self) -> Result<String, Error> {
        let start = self.at;
        self.at += 1;
        loop {
            match self.peek() {
                None => return Err(self.error("a string that is never closed")),
                Some(b'\\') => self.at += 2,
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(_) => self.at += 1,
            }
        }
        let raw = self.text.get(start..self.at).unwrap_or_default();
        serde_json::from_str::<String>(raw).map_err(|_| self.error("a malformed string"))
    }

    fn object(&mut self, path: &mut Vec<String>, depth: usize) -> Result<(), Error> {
        self.at += 1;
        self.skip_blank()?;
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.skip_blank()?;
            if self.peek() != Some(b'"') {
                return Err(self.error("a key in double quotes was expected"));
            }
            let key = self.string()?;
            self.skip_blank()?;
            if self.peek() != Some(b':') {
                return Err(self.error("`:` was expected after a key"));
            }
            self.at += 1;
            self.skip_blank()?;
            // A key holding `.` is as many levels as the Microsoft tasks see in it.
            let pushed = key.split('.').map(str::to_owned).collect::<Vec<_>>();
            let n = pushed.len();
            path.extend(pushed);
            self.value(path, depth + 1)?;
            path.truncate(path.len() - n);
            self.skip_blank()?;
            match self.peek() {
                Some(b',') => {
                    self.at += 1;
                    // A trailing comma, which .NET's configuration reader accepts.
                    self.skip_blank()?;
                    if self.peek() == Some(b'}') {
                        self.at += 1;
                        return Ok(());
                    }
                }
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error("`,` or `}` was expected")),
            }
        }
    }

    fn array(&mut self, path: &mut Vec<String>, depth: usize) -> Result<(), Error> {
        self.at += 1;
        let mut index = 0usize;
        loop {
            self.skip_blank()?;
            if self.peek() == Some(b']') {
                self.at += 1;
                return Ok(());
            }
            path.push(index.to_string());
            self.value(path, depth + 1)?;
            path.pop();
            index += 1;
            self.skip_blank()?;
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(self.error("`,` or `]` was expected")),
            }
        }
    }
}

/// The replacement text: the file's type kept when the value fits it, else a JSON string.
fn typed(value: &str, kind: Scalar) -> String {
    let as_string = || serde_json::to_string(value).unwrap_or_default();
    match kind {
        Scalar::Number if serde_json::from_str::<serde_json::Number>(value).is_ok() => {
            value.to_owned()
        }
        Scalar::Bool if value == "true" || value == "false" => value.to_owned(),
        _ => as_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Values {
        Values::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn nested_keys_are_replaced_in_place_typed_as_the_file_types_them() {
        let text = "{\n  // comment kept\n  \"Logging\": { \"LogLevel\": { \"Default\": \"Warning\" } },\n  \"Port\": 80,\n  \"Debug\": false,\n  \"Name\": \"app\",\n  \"Missing\": null,\n  \"List\": [ { \"Url\": \"a\" } ]\n}\n";
        let v = values(&[
            ("Logging.LogLevel.Default", "Information"),
            ("Port", "8080"),
            ("Debug", "true"),
            ("Name", "say \"hi\""),
            ("Missing", "now set"),
            ("List.0.Url", "https://x"),
            ("NotInFile", "never added"),
        ]);
        let out = substitute_json(text, "appsettings.json", &v).unwrap();
        assert_eq!(
            out.text,
            "{\n  // comment kept\n  \"Logging\": { \"LogLevel\": { \"Default\": \"Information\" } },\n  \"Port\": 8080,\n  \"Debug\": true,\n  \"Name\": \"say \\\"hi\\\"\",\n  \"Missing\": \"now set\",\n  \"List\": [ { \"Url\": \"https://x\" } ]\n}\n"
        );
        assert_eq!(
            out.keys,
            [
                "Logging.LogLevel.Default",
                "Port",
                "Debug",
                "Name",
                "Missing",
                "List.0.Url"
            ]
        );
    }

    #[test]
    fn a_value_that_does_not_fit_the_file_type_becomes_a_string_and_objects_are_never_replaced() {
        let text = r#"{"Port": 80, "On": true, "Db": {"Host": "h"}}"#;
        let v = values(&[("Port", "eighty"), ("On", "yes"), ("Db", "flat")]);
        let out = substitute_json(text, "a.json", &v).unwrap();
        assert_eq!(
            out.text,
            r#"{"Port": "eighty", "On": "yes", "Db": {"Host": "h"}}"#
        );
        assert_eq!(out.keys, ["Port", "On"]);
    }

    #[test]
    fn dotted_keys_and_double_underscore_names_address_the_same_levels() {
        let text = r#"{"ConnectionStrings.Default": "x", "A": {"B": 1}}"#;
        let v = values(&[("ConnectionStrings.Default", "y"), ("A__B", "2")]);
        let out = substitute_json(text, "a.json", &v).unwrap();
        assert_eq!(
            out.text,
            r#"{"ConnectionStrings.Default": "y", "A": {"B": 2}}"#
        );
    }

    #[test]
    fn malformed_json_is_refused_with_its_file_and_line() {
        let err = substitute_json(
            "{\n \"a\": 1,\n \"b\" 2\n}",
            "cfg/appsettings.json",
            &values(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("cfg/appsettings.json"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(substitute_json(&deep, "d.json", &values(&[])).is_err());
    }

    #[test]
    fn nothing_to_replace_leaves_the_bytes_as_they_were() {
        let text = "\u{feff}{ \"a\" : [1, 2.5e3, -0, \"\\u00e9\"], /* c */ \"b\": {} ,}";
        let out = substitute_json(text, "a.json", &values(&[("c", "1")])).unwrap();
        assert_eq!(out.text, text);
        assert!(out.keys.is_empty());
    }
}
