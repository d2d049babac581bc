//! The agent's escaping of logging-command properties and data, its unescaping (so tests and the
//! harness can read a `##vso[` stream exactly as the agent does), and the neutraliser for untrusted text.

/// The agent's special symbols (AGENT `CommandStringConvertor.cs`), in the order it unescapes them.
const SPECIAL: [(&str, &str); 4] = [(";", "%3B"), ("\r", "%0D"), ("\n", "%0A"), ("]", "%5D")];

/// The encoding of `%` that the agent decodes when `DECODE_PERCENTS` is on (its default).
const PERCENT: &str = "%AZP25";

/// Escapes a logging-command property value: `%`, CR, LF, `]` and `;`.
pub fn escape_property(value: &str) -> String {
    escape(value)
}

/// Escapes logging-command data (the text after `]`).
///
/// task-lib escapes only `%`, CR and LF in data; escaping `]` and `;` as well costs nothing because the
/// agent unescapes data with the same rules as properties, and it keeps one rule for the whole crate.
pub fn escape_data(value: &str) -> String {
    escape(value)
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        // `%` must be encoded before anything that introduces a `%` of its own, which a single
        // pass over the characters gives for free.
        match c {
            '%' => out.push_str(PERCENT),
            ';' => out.push_str("%3B"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ']' => out.push_str("%5D"),
            other => out.push(other),
        }
    }
    out
}

/// Unescapes a property value or data the way the agent does: the special symbols first, then `%AZP25`.
pub fn unescape(value: &str) -> String {
    let mut out = value.to_owned();
    for (token, replacement) in SPECIAL {
        out = out.replace(replacement, token);
    }
    out.replace(PERCENT, "%")
}

/// Makes untrusted text unable to run as a logging command or a formatting line.
///
/// The agent looks for `##vso[` anywhere in a line, and the log formatter reacts to `##[`. A space is
/// inserted after the `##` of every such sequence (matched without regard to case), which keeps the
/// text readable while breaking the command.
pub fn neutralise(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'#' && bytes[i + 1] == b'#' && starts_command(&bytes[i + 2..]) {
            // Every index here is at an ASCII `#`, hence on a char boundary.
            out.push_str(&text[copied..i + 2]);
            out.push(' ');
            copied = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn starts_command(rest: &[u8]) -> bool {
    rest.first() == Some(&b'[') || (rest.len() >= 4 && rest[..4].eq_ignore_ascii_case(b"vso["))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_symbol() {
        assert_eq!(escape_property("a%b;c\rd\ne]f"), "a%AZP25b%3Bc%0Dd%0Ae%5Df");
        assert_eq!(escape_data("100%\n"), "100%AZP25%0A");
    }

    #[test]
    fn unescapes_like_the_agent() {
        assert_eq!(unescape("a%AZP25b%3Bc%0Dd%0Ae%5Df"), "a%b;c\rd\ne]f");
        // An escaped percent followed by text that looks like an escape stays literal.
        assert_eq!(unescape(&escape_data("%0A")), "%0A");
    }

    #[test]
    fn neutralises_commands_and_formatting_lines() {
        assert_eq!(
            neutralise("##vso[task.complete result=Failed]x"),
            "## vso[task.complete result=Failed]x"
        );
        assert_eq!(
            neutralise("say ##VSO[task.setvariable]"),
            "say ## VSO[task.setvariable]"
        );
        assert_eq!(neutralise("##[group]x"), "## [group]x");
        assert_eq!(neutralise("####vso["), "#### vso[");
        assert_eq!(neutralise("# plain ## text #"), "# plain ## text #");
        assert_eq!(neutralise("é##vso[ü"), "é## vso[ü");
    }
}
