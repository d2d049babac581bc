//! The markdown run summary (uploaded with `task.uploadsummary`): a small builder that escapes every
//! piece of untrusted text, so an app name or an Azure message cannot inject markup or break a table.

/// A markdown document built from headings, paragraphs, lists, tables and code blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    blocks: Vec<String>,
}

impl Summary {
    pub fn new() -> Summary {
        Summary::default()
    }

    /// A heading; `level` is clamped to 1–6.
    pub fn heading(&mut self, level: u8, text: &str) -> &mut Summary {
        let level = usize::from(level.clamp(1, 6));
        self.blocks
            .push(format!("{} {}", "#".repeat(level), inline(text)));
        self
    }

    /// A paragraph of plain text.
    pub fn paragraph(&mut self, text: &str) -> &mut Summary {
        self.blocks.push(inline(text));
        self
    }

    /// A bulleted list of plain-text items.
    pub fn bullets<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Summary {
        let list: Vec<String> = items
            .iter()
            .map(|item| format!("- {}", inline(item.as_ref())))
            .collect();
        if !list.is_empty() {
            self.blocks.push(list.join("\n"));
        }
        self
    }

    /// A table of plain-text cells. Rows shorter than the header are padded with empty cells.
    pub fn table<H: AsRef<str>, C: AsRef<str>>(
        &mut self,
        headers: &[H],
        rows: &[Vec<C>],
    ) -> &mut Summary {
        if headers.is_empty() {
            return self;
        }
        let row = |cells: Vec<String>| format!("| {} |", cells.join(" | "));
        let mut lines = vec![
            row(headers.iter().map(|h| cell(h.as_ref())).collect()),
            row(headers.iter().map(|_| "---".to_owned()).collect()),
        ];
        for r in rows {
            let mut cells: Vec<String> = r
                .iter()
                .take(headers.len())
                .map(|c| cell(c.as_ref()))
                .collect();
            cells.resize(headers.len(), String::new());
            lines.push(row(cells));
        }
        self.blocks.push(lines.join("\n"));
        self
    }

    /// A bulleted list of links. A link whose target is not a plain `https://` URL (or `http://` on
    /// loopback) is shown as text: a value from outside must not become a link to anywhere.
    pub fn links<T: AsRef<str>, U: AsRef<str>>(&mut self, items: &[(T, U)]) -> &mut Summary {
        if items.is_empty() {
            return self;
        }
        let lines: Vec<String> = items
            .iter()
            .map(|(text, url)| {
                let (text, url) = (inline(text.as_ref()), url.as_ref());
                if safe_url(url) {
                    format!("- [{text}]({url})")
                } else {
                    format!("- {text}: {}", inline(url))
                }
            })
            .collect();
        self.blocks.push(lines.join("\n"));
        self
    }

    /// A fenced code block; the fence is longer than any run of backticks in `text`.
    pub fn code_block(&mut self, language: &str, text: &str) -> &mut Summary {
        let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        let language: String = language
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        self.blocks.push(format!(
            "{fence}{language}\n{}\n{fence}",
            text.trim_end_matches('\n')
        ));
        self
    }

    /// The markdown text.
    pub fn to_markdown(&self) -> String {
        let mut out = self.blocks.join("\n\n");
        out.push('\n');
        out
    }
}

/// Escapes text for use inline: markdown punctuation is backslash-escaped, HTML is entity-encoded
/// (the summary tab renders HTML), and line breaks become spaces so a value cannot start a new block.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' | '\n' => out.push(' '),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '!'
            | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            other => out.push(other),
        }
    }
    out
}

fn cell(text: &str) -> String {
    inline(text)
}

/// A URL that can stand in a markdown link as it is: https (or http on loopback), and none of the
/// characters that would end the link or start markup.
fn safe_url(url: &str) -> bool {
    let scheme_ok = url.starts_with("https://")
        || url.starts_with("http://127.0.0.1")
        || url.starts_with("http://localhost");
    scheme_ok
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "()<>[]\"'`\\".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_only_to_plain_https_urls() {
        let mut s = Summary::new();
        s.links(&[
            ("production", "https://contoso-web.azurewebsites.net/"),
            ("evil](javascript:alert(1))", "https://x.test/a)b"),
            ("plain", "javascript:alert(1)"),
        ]);
        insta::assert_snapshot!(s.to_markdown(), @r"
        - [production](https://contoso-web.azurewebsites.net/)
        - evil\]\(javascript:alert\(1\)\): https://x.test/a\)b
        - plain: javascript:alert\(1\)
        ");
    }

    #[test]
    fn builds_escaped_markdown() {
        let mut s = Summary::new();
        s.heading(2, "Release of my_app")
            .paragraph("line one\n# not a heading <script>")
            .table(
                &["Slot", "Image"],
                &[vec!["staging", "a|b"], vec!["production"]],
            )
            .bullets(&["[link](http://x)"])
            .code_block("json", "{\"a\": \"```\"}");
        insta::assert_snapshot!(s.to_markdown(), @r###"
        ## Release of my\_app

        line one \# not a heading &lt;script&gt;

        | Slot | Image |
        | --- | --- |
        | staging | a\|b |
        | production |  |

        - \[link\]\(http://x\)

        ````json
        {"a": "```"}
        ````
        "###);
    }
}
