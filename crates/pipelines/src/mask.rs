//! Local secret masking: what the agent's masker does to our output, done before the output leaves the
//! process, so secrets stay hidden in terminals, files and anything the agent does not see.
//!
//! A secret is masked in the forms it commonly takes on its way out: each of its lines, the whole
//! value, percent-encoding (upper- and lower-case hex, `+` for spaces), JSON string escaping (short
//! escapes, `\uXXXX` for every non-ASCII character, and the HTML-safe style that also escapes `<>&'+`),
//! and base64 (standard and URL-safe) at the three alignments a value can start at inside a longer
//! blob, for example `base64("user:" + secret)`.

use base64::Engine as _;

/// The text that replaces a secret, as the agent writes it.
pub(crate) const MASK: &str = "***";

/// An encoded form shorter than this is not masked on its own: a two- or three-character base64
/// fragment of a short secret would mask ordinary words everywhere. The clear value and its lines are
/// always masked, whatever their length (as the agent does).
pub const MIN_ENCODED_LEN: usize = 4;

/// The registered secrets and the encoded forms under which they could appear.
#[derive(Default, Clone)]
pub(crate) struct Masker {
    /// Kept longest first, so a whole value is masked before any shorter secret inside it.
    needles: Vec<String>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker")
            .field("needles", &self.needles.len())
            .finish()
    }
}

impl Masker {
    /// Registers a secret and returns the values the agent must be told about (`task.setsecret`), in
    /// the order the agent must receive them: each line first, then the whole value, then the encoded
    /// forms. Lines come first because the agent masks a line only once it is registered, and the
    /// registration of the whole value is itself printed: AzureKeyVault@2 does the same.
    pub(crate) fn add(&mut self, value: &str) -> Vec<String> {
        let mut for_agent: Vec<String> = Vec::new();
        let parts = parts(value);
        for part in &parts {
            if !self.needles.iter().any(|known| known == part) && !for_agent.contains(part) {
                for_agent.push(part.clone());
            }
        }
        for part in &parts {
            for form in encoded_forms(part) {
                if form.len() >= MIN_ENCODED_LEN
                    && !self.needles.contains(&form)
                    && !for_agent.contains(&form)
                {
                    for_agent.push(form);
                }
            }
        }
        for needle in &for_agent {
            if !self.needles.contains(needle) {
                self.needles.push(needle.clone());
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
            // A needle longer than the text cannot be in it; skipping it spares building a searcher
            // over a 64 KiB secret's forms for every short log line.
            if needle.len() > out.len() {
                continue;
            }
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), MASK);
            }
        }
        out
    }

    /// Masks every string of a JSON document, keys included, so a masked file stays valid JSON (masking
    /// the serialised text could cut through quotes and escapes).
    pub(crate) fn mask_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.mask(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.mask(k), self.mask_json(v)))
                    .collect(),
            ),
            // A number holding a secret made of digits becomes the string `"***"`.
            Value::Number(n) => {
                let text = n.to_string();
                let masked = self.mask(&text);
                if masked == text {
                    value.clone()
                } else {
                    Value::String(masked)
                }
            }
            other => other.clone(),
        }
    }

    /// Masks the strings (keys included) and numbers of a serialised JSON document in place, keeping
    /// its layout and key order: each string literal is decoded, masked, and encoded again only when
    /// masking changed it; a number holding a secret becomes the string `"***"`.
    pub(crate) fn mask_json_text(&self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            let replacement = match bytes[i] {
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i = (i + 1).min(bytes.len());
                    // Every index here follows an ASCII quote or ends the text: a char boundary.
                    let literal = text.get(start..i).unwrap_or_default();
                    serde_json::from_str::<String>(literal)
                        .ok()
                        .map(|s| (self.mask(&s), s))
                        .filter(|(masked, s)| masked != s)
                        .and_then(|(masked, _)| serde_json::to_string(&masked).ok())
                }
                b'-' | b'0'..=b'9' => {
                    while i < bytes.len()
                        && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                    {
                        i += 1;
                    }
                    let number = text.get(start..i).unwrap_or_default();
                    let masked = self.mask(number);
                    (masked != number)
                        .then(|| serde_json::to_string(&masked).ok())
                        .flatten()
                }
                _ => {
                    i += 1;
                    None
                }
            };
            if let Some(replacement) = replacement {
                out.push_str(text.get(copied..start).unwrap_or_default());
                out.push_str(&replacement);
                copied = i;
            }
        }
        out.push_str(text.get(copied..).unwrap_or_default());
        out
    }

    /// Whether nothing is registered.
    pub(crate) fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

/// Each non-blank line of the value (CR and LF both end a line, as for the agent), then the whole
/// value; blank values are never registered (they would mask every space).
fn parts(value: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    if value.contains(['\n', '\r']) {
        for line in value.split(['\n', '\r']) {
            if !line.trim().is_empty() && !parts.iter().any(|p| p == line) {
                parts.push(line.to_owned());
            }
        }
    }
    if !value.trim().is_empty() && !parts.iter().any(|p| p == value) {
        parts.push(value.to_owned());
    }
    parts
}

/// Forms a secret takes when it is embedded in a URL, a form body, a JSON string or a base64 blob.
/// The value itself is not included.
pub(crate) fn encoded_forms(value: &str) -> Vec<String> {
    let mut forms: Vec<String> = Vec::new();
    let mut push = |form: String| {
        if form != value && !form.is_empty() && !forms.contains(&form) {
            forms.push(form);
        }
    };
    for lower in [false, true] {
        let url = percent_encode(value, lower);
        push(url.clone());
        push(url.replace("%20", "+"));
    }
    push(json_escape(value, JsonStyle::Short));
    push(json_escape(value, JsonStyle::Ascii { upper: false }));
    push(json_escape(value, JsonStyle::Ascii { upper: true }));
    push(json_escape(value, JsonStyle::HtmlSafe));
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for offset in 0..3 {
            push(base64_inner(engine, value.as_bytes(), offset));
        }
    }
    forms
}

/// The part of `base64(prefix + value + suffix)` that depends on `value` alone, for any `prefix` of
/// `offset` bytes (0, 1 or 2) and any suffix: the characters whose six bits all come from `value`.
fn base64_inner(engine: &base64::engine::GeneralPurpose, value: &[u8], offset: usize) -> String {
    let mut buf = vec![0u8; offset];
    buf.extend_from_slice(value);
    let encoded = engine.encode(&buf);
    let first = (8 * offset).div_ceil(6);
    let end = (8 * (offset + value.len())) / 6;
    encoded.get(first..end).unwrap_or_default().to_owned()
}

/// Percent-encodes everything but the RFC 3986 unreserved characters.
pub(crate) fn percent_encode(value: &str, lower: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else if lower {
            out.push_str(&format!("%{byte:02x}"));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(Clone, Copy)]
enum JsonStyle {
    /// What serde_json writes: `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other controls as `\u00XX`.
    Short,
    /// Short escapes plus every non-ASCII character as `\uXXXX` (surrogate pairs above U+FFFF).
    Ascii { upper: bool },
    /// .NET's default encoder: every non-ASCII character and `"&'+<>\`` as upper-case `\uXXXX`.
    HtmlSafe,
}

/// The inside of a JSON string holding `value`, in one of the escaping styles serialisers use.
fn json_escape(value: &str, style: JsonStyle) -> String {
    let mut out = String::with_capacity(value.len());
    let unicode = |out: &mut String, c: char, upper: bool| {
        let mut units = [0u16; 2];
        for unit in c.encode_utf16(&mut units) {
            if upper {
                out.push_str(&format!("\\u{unit:04X}"));
            } else {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    };
    for c in value.chars() {
        if let JsonStyle::HtmlSafe = style
            && (!c.is_ascii() || c.is_ascii_control() || "\"&'+<>`\\".contains(c))
        {
            unicode(&mut out, c, true);
            continue;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() && (c as u32) < 0x20 => unicode(&mut out, c, false),
            c if !c.is_ascii() => match style {
                JsonStyle::Ascii { upper } => unicode(&mut out, c, upper),
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    #[test]
    fn registers_lines_first_then_the_whole_value() {
        let mut masker = Masker::default();
        let for_agent = masker.add("first line\nsecond/line");
        assert_eq!(
            for_agent[..3],
            ["first line", "second/line", "first line\nsecond/line"]
        );
        assert_eq!(masker.mask("a first line b"), "a *** b");
        assert_eq!(masker.mask("url?x=second%2Fline"), "url?x=***");
        assert_eq!(
            masker.mask("json \"first line\\nsecond/line\""),
            "json \"***\""
        );
        // The last character before the padding holds two bits that are not the secret's.
        assert_eq!(masker.mask(&STANDARD.encode("second/line")), "***U=");
    }

    #[test]
    fn registers_a_value_once_and_ignores_blank_ones() {
        let mut masker = Masker::default();
        assert_eq!(masker.add("s3cret")[0], "s3cret");
        assert!(masker.add("s3cret").is_empty());
        assert!(masker.add("  \n ").is_empty());
        assert_eq!(masker.mask("plain"), "plain");
    }

    /// Every encoded form, embedded the way it is met in practice, is gone after masking.
    #[test]
    fn masks_every_encoded_form() {
        let secret = "pä ss/wörd+\"<x>&'\u{1F511}";
        let mut masker = Masker::default();
        masker.add(secret);
        let mut embedded = vec![
            format!("value {secret} end"),
            format!("q={}&n=1", percent_encode(secret, false)),
            format!("q={}&n=1", percent_encode(secret, true)),
            format!("a={}", percent_encode(secret, false).replace("%20", "+")),
            format!("a={}", percent_encode(secret, true).replace("%20", "+")),
            serde_json::json!({ "v": secret }).to_string(),
            format!(r#"{{"v":"{}"}}"#, json_escape(secret, JsonStyle::HtmlSafe)),
            format!(
                r#"{{"v":"{}"}}"#,
                json_escape(secret, JsonStyle::Ascii { upper: false })
            ),
            format!(
                r#"{{"v":"{}"}}"#,
                json_escape(secret, JsonStyle::Ascii { upper: true })
            ),
        ];
        for prefix in ["", "u", "u:", "usr:", "user:"] {
            embedded.push(STANDARD.encode(format!("{prefix}{secret}")));
            embedded.push(URL_SAFE.encode(format!("{prefix}{secret}!")));
        }
        for text in embedded {
            let masked = masker.mask(&text);
            assert!(masked.contains(MASK), "nothing masked in {text:?}");
            for form in std::iter::once(secret.to_owned()).chain(encoded_forms(secret)) {
                assert!(!masked.contains(&form), "{form:?} left in {masked:?}");
            }
        }
    }

    #[test]
    fn base64_inner_is_what_every_prefix_shares() {
        let secret = b"hunter2-secret";
        for offset in 0..3 {
            for prefix in [&b"abc"[..], b"xyz", b"\0\0\0"] {
                let mut blob = prefix[..offset].to_vec();
                blob.extend_from_slice(secret);
                blob.extend_from_slice(b"tail");
                let inner = base64_inner(
                    &base64::engine::general_purpose::STANDARD_NO_PAD,
                    secret,
                    offset,
                );
                assert!(inner.len() >= 16, "{inner}");
                assert!(STANDARD.encode(&blob).contains(&inner), "offset {offset}");
            }
        }
    }

    #[test]
    fn json_text_keeps_its_order_and_stays_json() {
        let mut masker = Masker::default();
        masker.add("se\"cr\\et");
        masker.add("987654");
        // Written by hand: a `json!` value would sort its keys.
        let text = "{\n  \"z\": \"a se\\\"cr\\\\et b\",\n  \"a\": 987654,\n  \"se\\\"cr\\\\et\": [1, \"é\\ud83d\\udd11\"],\n  \"m\": -1.5e3\n}";
        let masked = masker.mask_json_text(text);
        let parsed: serde_json::Value = serde_json::from_str(&masked).unwrap_or_default();
        assert_eq!(parsed["z"], "a *** b");
        assert_eq!(parsed["a"], "***");
        assert_eq!(parsed["***"][1], "é\u{1F511}");
        assert_eq!(parsed["m"], -1500.0);
        assert!(masked.find("\"z\"") < masked.find("\"a\""), "{masked}");
    }

    #[test]
    fn short_secrets_mask_their_value_but_no_tiny_fragments() {
        let mut masker = Masker::default();
        let for_agent = masker.add("x");
        assert_eq!(for_agent, ["x"]);
        assert_eq!(masker.mask("text"), "te***t");
        let mut masker = Masker::default();
        masker.add(";");
        assert_eq!(
            masker.mask("a;b a%3Bb"),
            "a***b a%3Bb",
            "%3B is shorter than 4"
        );
    }
}
