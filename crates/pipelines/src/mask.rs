//! Local secret masking: what the agent's masker does to our output, done before the output leaves the
//! process, so secrets stay hidden in terminals, files and anything the agent does not see.

use base64::Engine as _;

/// The text that replaces a secret, as the agent writes it.
pub(crate) const MASK: &str = "***";

/// The registered secrets and the encoded forms under which they could appear.
#[derive(Default)]
pub(crate) struct Masker {
    /// Kept longest first, so a whole value is masked before any shorter secret inside it.
    needles: Vec<String>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("secrets", &self.needles.len())
            .finish()
    }
}

impl Masker {
    /// Registers a secret and returns the values the agent must be told about (`task.setsecret`):
    /// the whole value and each of its lines, without the ones already known.
    pub(crate) fn add(&mut self, value: &str) -> Vec<String> {
        let mut for_agent = Vec::new();
        for part in parts(value) {
            if self.needles.iter().any(|known| known == part) {
                continue;
            }
            for_agent.push(part.to_owned());
            for form in encoded_forms(part) {
                if !form.is_empty() && !self.needles.contains(&form) {
                    self.needles.push(form);
                }
            }
        }
        self.needles
            .sort_by_key(|needle| std::cmp::Reverse(needle.len()));
        for_agent
    }

    /// Replaces every registered secret (in any of its encoded forms) with `***`.
    pub(crate) fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), MASK);
            }
        }
        out
    }
}

/// The value itself and each non-blank line of it (CR stripped), whole value first.
fn parts(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    if !value.trim().is_empty() {
        parts.push(value);
    }
    if value.contains(['\n', '\r']) {
        for line in value.split(['\n', '\r']) {
            if !line.trim().is_empty() && !parts.contains(&line) {
                parts.push(line);
            }
        }
    }
    parts
}

/// Forms a secret takes when it is embedded in a URL, a JSON string or a base64 blob.
fn encoded_forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_owned()];
    let url = url_encode(value);
    if url != value {
        forms.push(url);
    }
    if let Ok(json) = serde_json::to_string(value) {
        let inner = json.trim_matches('"').to_owned();
        if inner != value {
            forms.push(inner);
        }
    }
    forms.push(base64::engine::general_purpose::STANDARD.encode(value));
    forms
}

/// Percent-encodes everything but the RFC 3986 unreserved characters.
pub(crate) fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_value_lines_and_encodings() {
        let mut masker = Masker::default();
        let for_agent = masker.add("first line\nsecond/line");
        assert_eq!(
            for_agent,
            ["first line\nsecond/line", "first line", "second/line"]
        );
        assert_eq!(masker.mask("a first line b"), "a *** b");
        assert_eq!(masker.mask("url?x=second%2Fline"), "url?x=***");
        assert_eq!(
            masker.mask("json \"first line\\nsecond/line\""),
            "json \"***\""
        );
        assert_eq!(
            masker.mask(&base64::engine::general_purpose::STANDARD.encode("second/line")),
            "***"
        );
    }

    #[test]
    fn registers_a_value_once_and_ignores_blank_ones() {
        let mut masker = Masker::default();
        assert_eq!(masker.add("s3cret"), ["s3cret"]);
        assert!(masker.add("s3cret").is_empty());
        assert!(masker.add("  \n ").is_empty());
        assert_eq!(masker.mask("plain"), "plain");
    }
}
