//! XML substitution over the original text, as the Microsoft tasks do it for `*.config` files:
//! `<appSettings><add key="K" value="…"/>` (the `value`), `<connectionStrings><add name="K"
//! connectionString="…"/>` (the `connectionString`) and `<applicationSettings>…<setting name="K"><value>…`
//! (the text of `value`), each only when the attribute or element already exists. A small scanner finds
//! the tags (comments, CDATA, processing instructions and the doctype are skipped and kept), so every byte
//! but the replaced values stays as it was.

use super::{Substituted, Values, invalid};
use crate::error::Error;

/// Replaces, in a `.config` document, the values `values` names (see the module's documentation).
pub fn substitute_xml(text: &str, file: &str, values: &Values) -> Result<Substituted, Error> {
    let mut stack: Vec<String> = Vec::new();
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut keys = Vec::new();
    // An `applicationSettings` `<value>` whose text is to be replaced: (setting name, value, text start).
    let mut pending_text: Option<(String, String, usize)> = None;
    let mut setting_name: Option<String> = None;
    let mut at = 0;
    let err = |at: usize, reason: &str| invalid(file, text, at, format!("not valid XML: {reason}"));
    while let Some(offset) = text[at..].find('<') {
        let open = at + offset;
        let rest = &text[open..];
        let skip_to = |end: &str, what: &str| {
            rest.find(end)
                .map(|i| open + i + end.len())
                .ok_or_else(|| err(open, &format!("{what} that is never closed")))
        };
        if rest.starts_with("<!--") {
            at = skip_to("-->", "a comment")?;
            continue;
        }
        if rest.starts_with("<![CDATA[") {
            at = skip_to("]]>", "a CDATA section")?;
            continue;
        }
        if rest.starts_with("<?") {
            at = skip_to("?>", "a processing instruction")?;
            continue;
        }
        if rest.starts_with("<!") {
            at = skip_to(">", "a declaration")?;
            continue;
        }
        let close = tag_end(text, open).ok_or_else(|| err(open, "a tag that is never closed"))?;
        let tag = &text[open + 1..close];
        at = close + 1;
        if let Some(name) = tag.strip_prefix('/') {
            let name = local(name.trim());
            if let Some((key, value, start)) = pending_text.take()
                && name == "value"
            {
                let inner = &text[start..open];
                if inner.contains('<') {
                    return Err(err(start, "a setting's <value> holds markup"));
                }
                edits.push((start, open, escape(&value, false)));
                keys.push(format!("applicationSettings/{key}"));
            }
            if name == "setting" {
                setting_name = None;
            }
            match stack.pop() {
                Some(open_name) if open_name == name => {}
                _ => {
                    return Err(err(
                        open,
                        &format!("</{name}> does not close the open element"),
                    ));
                }
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name_end = body.find(|c: char| c.is_whitespace()).unwrap_or(body.len());
        let name = local(&body[..name_end]).to_owned();
        if name.is_empty() {
            return Err(err(open, "an element without a name"));
        }
        let attrs =
            attributes(body, name_end, open + 1).map_err(|at| err(at, "a malformed attribute"))?;
        let parent = stack.last().map(String::as_str);
        let attr = |wanted: &str| attrs.iter().find(|a| a.name == wanted);
        match (parent, name.as_str()) {
            (Some("appSettings"), "add") => {
                if let (Some(key), Some(value)) = (attr("key"), attr("value"))
                    && let Some(new) = values.for_name(&key.value)
                {
                    edits.push((value.start, value.end, escape(new, true)));
                    keys.push(format!("appSettings/{}", key.value));
                }
            }
            (Some("connectionStrings"), "add") => {
                if let (Some(key), Some(value)) = (attr("name"), attr("connectionString"))
                    && let Some(new) = values.for_name(&key.value)
                {
                    edits.push((value.start, value.end, escape(new, true)));
                    keys.push(format!("connectionStrings/{}", key.value));
                }
            }
            (_, "setting") if stack.len() >= 2 && in_application_settings(&stack) => {
                setting_name = attr("name").map(|a| a.value.clone());
            }
            (Some("setting"), "value") if !self_closing => {
                if let Some(key) = &setting_name
                    && let Some(new) = values.for_name(key)
                {
                    pending_text = Some((key.clone(), new.to_owned(), close + 1));
                }
            }
            _ => {}
        }
        if !self_closing {
            stack.push(name);
        }
    }
    if let Some(open) = stack.last() {
        return Err(err(text.len(), &format!("<{open}> is never closed")));
    }
    edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end, replacement) in &edits {
        out.push_str(&text[copied..*start]);
        out.push_str(replacement);
        copied = *end;
    }
    out.push_str(&text[copied..]);
    Ok(Substituted { text: out, keys })
}

/// Whether the open elements lead through `applicationSettings` (`<applicationSettings><My.Settings>
/// <setting …>`).
fn in_application_settings(stack: &[String]) -> bool {
    stack.iter().any(|e| e == "applicationSettings")
}

/// The element name without its namespace prefix.
fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Where the tag opened at `open` ends (its `>`), skipping `>` inside quoted attribute values.
fn tag_end(text: &str, open: usize) -> Option<usize> {
    let mut quote = None;
    for (i, c) in text[open..].char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '>') => return Some(open + i),
            _ => {}
        }
    }
    None
}

struct Attribute {
    name: String,
    /// Decoded value.
    value: String,
    /// The raw value's span in the document (between the quotes).
    start: usize,
    end: usize,
}

/// The attributes of a tag's `body` after its name; `base` is where `body` starts in the document.
fn attributes(body: &str, from: usize, base: usize) -> Result<Vec<Attribute>, usize> {
    let mut out = Vec::new();
    let mut rest = &body[from..];
    let mut offset = from;
    loop {
        let trimmed = rest.trim_start();
        offset += rest.len() - trimmed.len();
        rest = trimmed;
        if rest.is_empty() {
            return Ok(out);
        }
        let eq = rest.find('=').ok_or(base + offset)?;
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start();
        let value_at = offset + (rest.len() - after.len());
        let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'');
        let quote = quote.ok_or(base + value_at)?;
        let len = after[1..].find(quote).ok_or(base + value_at)?;
        let raw = &after[1..1 + len];
        out.push(Attribute {
            name: local(name).to_owned(),
            value: unescape(raw),
            start: base + value_at + 1,
            end: base + value_at + 1 + len,
        });
        offset = value_at + 1 + len + 1;
        rest = &body[offset..];
    }
}

fn unescape(raw: &str) -> String {
    raw.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn escape(value: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
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

    const WEB_CONFIG: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<!-- <appSettings><add key="Greeting" value="in a comment"/></appSettings> -->
<configuration>
  <appSettings>
    <add key="Greeting" value="hello" />
    <add key='Other' value='kept' />
  </appSettings>
  <connectionStrings>
    <add name="Db" connectionString="Server=dev;Database=app" providerName="System.Data.SqlClient"/>
  </connectionStrings>
  <applicationSettings>
    <My.Properties.Settings>
      <setting name="Mode" serializeAs="String">
        <value>dev</value>
      </setting>
    </My.Properties.Settings>
  </applicationSettings>
  <system.webServer><handlers><add name="Greeting" path="*" verb="*"/></handlers></system.webServer>
</configuration>
"#;

    #[test]
    fn app_settings_connection_strings_and_application_settings_are_replaced_in_place() {
        let v = values(&[
            ("Greeting", "hi <all> & \"you\""),
            ("Db", "Server=prod;Database=app"),
            ("Mode", "prod & live"),
            ("NotThere", "x"),
        ]);
        let out = substitute_xml(WEB_CONFIG, "web.config", &v).unwrap();
        let expected = WEB_CONFIG
            .replace(
                r#"<add key="Greeting" value="hello" />"#,
                r#"<add key="Greeting" value="hi &lt;all&gt; &amp; &quot;you&quot;" />"#,
            )
            .replace("Server=dev;Database=app", "Server=prod;Database=app")
            .replace("<value>dev</value>", "<value>prod &amp; live</value>");
        assert_eq!(out.text, expected);
        assert_eq!(
            out.keys,
            [
                "appSettings/Greeting",
                "connectionStrings/Db",
                "applicationSettings/Mode"
            ]
        );
    }

    #[test]
    fn nothing_to_replace_leaves_the_bytes_as_they_were() {
        let out = substitute_xml(WEB_CONFIG, "web.config", &values(&[("Absent", "x")])).unwrap();
        assert_eq!(out.text, WEB_CONFIG);
    }

    #[test]
    fn malformed_xml_is_refused_with_its_file_and_line() {
        let err = substitute_xml(
            "<configuration>\n<appSettings>\n</configuration>",
            "web.config",
            &values(&[]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("web.config") && err.contains("line 3"),
            "{err}"
        );
        assert!(substitute_xml("<a><!-- never", "w.config", &values(&[])).is_err());
        assert!(substitute_xml("<a b=c/>", "w.config", &values(&[])).is_err());
    }
}
