//! The leak detector: searches everything a run left visible for every secret it was given, in every
//! form a secret takes on its way out (each line of a multi-line value, base64, URL encoding).
//!
//! It looks at the output the way a person with access to the raw log would, WITHOUT the agent's
//! masking: only the registrations themselves (`task.setsecret`, and `task.setvariable` with
//! `issecret=true`, which hands the value to the agent as a secret) are left out.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use slot_release_pipelines::agent::{agent_lines, parse_command};

use crate::agent::AgentOutcome;

/// A secret found where it must not be. It never contains the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// Which secret (its position in the list given to the detector).
    pub secret: usize,
    /// In which form it was found (`value`, `line 2`, `base64 of line 1`, …).
    pub form: String,
    /// Where (`stdout line 12`, a file path).
    pub location: String,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "secret #{} ({}) found in {}",
            self.secret, self.form, self.location
        )
    }
}

/// The forms of each secret to search for.
#[derive(Debug, Clone)]
pub struct LeakDetector {
    needles: Vec<(usize, String, String)>,
}

impl LeakDetector {
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> LeakDetector {
        let mut needles = Vec::new();
        for (index, secret) in secrets.into_iter().enumerate() {
            let secret = secret.as_ref();
            let mut parts = vec![("value".to_owned(), secret.to_owned())];
            if secret.contains(['\n', '\r']) {
                for (n, line) in secret.split(['\n', '\r']).enumerate() {
                    if !line.trim().is_empty() {
                        parts.push((format!("line {}", n + 1), line.to_owned()));
                    }
                }
            }
            for (name, part) in parts {
                if part.trim().is_empty() {
                    continue;
                }
                for (form, encoded) in encodings(&part) {
                    let label = if form.is_empty() {
                        name.clone()
                    } else {
                        format!("{form} of {name}")
                    };
                    if !needles.iter().any(|(i, _, n)| *i == index && *n == encoded) {
                        needles.push((index, label, encoded));
                    }
                }
            }
        }
        LeakDetector { needles }
    }

    /// A detector for the secrets declared on the run.
    pub fn for_outcome(outcome: &AgentOutcome) -> LeakDetector {
        LeakDetector::new(&outcome.secrets)
    }

    /// Searches stdout and stderr, minus the secret registrations, plus the unescaped data and
    /// properties of every other command (what the agent would print for them).
    pub fn scan_output(&self, outcome: &AgentOutcome) -> Vec<Leak> {
        let mut leaks = Vec::new();
        for (stream, text) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
            for (n, line) in agent_lines(text).into_iter().enumerate() {
                let mut views = vec![line.to_owned()];
                if let Some(cmd) = parse_command(line) {
                    let secret_variable = cmd.name == "task.setvariable"
                        && cmd
                            .property("issecret")
                            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                    if cmd.name == "task.setsecret" || secret_variable {
                        continue;
                    }
                    views.push(cmd.data.clone());
                    views.extend(cmd.properties.values().cloned());
                }
                for view in &views {
                    self.search(view, &format!("{stream} line {}", n + 1), &mut leaks);
                }
            }
        }
        leaks
    }

    /// Searches a file (a summary, a release record); a missing file has no leaks.
    pub fn scan_file(&self, path: &Path) -> Vec<Leak> {
        let mut leaks = Vec::new();
        if let Ok(bytes) = std::fs::read(path) {
            self.search(
                &String::from_utf8_lossy(&bytes),
                &path.display().to_string(),
                &mut leaks,
            );
        }
        leaks
    }

    /// Searches every file below `dir`.
    pub fn scan_dir(&self, dir: &Path) -> Vec<Leak> {
        let mut leaks = Vec::new();
        for file in files_below(dir) {
            leaks.extend(self.scan_file(&file));
        }
        leaks
    }

    /// Output, summaries, and every file in the given folders (for example the agent temp directory).
    pub fn scan_all(&self, outcome: &AgentOutcome, dirs: &[&Path]) -> Vec<Leak> {
        let mut leaks = self.scan_output(outcome);
        for summary in &outcome.summaries {
            leaks.extend(self.scan_file(summary));
        }
        for dir in dirs {
            leaks.extend(self.scan_dir(dir));
        }
        leaks
    }

    /// Records at most one leak per secret and place (one form often contains another, as base64
    /// with padding contains base64 without).
    fn search(&self, haystack: &str, location: &str, leaks: &mut Vec<Leak>) {
        let mut reported: Vec<usize> = Vec::new();
        for (secret, form, needle) in &self.needles {
            if !reported.contains(secret) && haystack.contains(needle.as_str()) {
                reported.push(*secret);
                leaks.push(Leak {
                    secret: *secret,
                    form: form.clone(),
                    location: location.to_owned(),
                });
            }
        }
    }
}

fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(path),
                Ok(kind) if kind.is_file() => files.push(path),
                _ => {}
            }
        }
    }
    files.sort();
    files
}

/// The value and the encodings a secret commonly leaks in.
fn encodings(value: &str) -> Vec<(&'static str, String)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![("", value.to_owned())];
    let mut push = |form: &'static str, encoded: String| {
        if !forms.iter().any(|(_, e)| *e == encoded) {
            forms.push((form, encoded));
        }
    };
    push("base64", STANDARD.encode(value));
    push("base64 without padding", STANDARD_NO_PAD.encode(value));
    push("base64url", URL_SAFE.encode(value));
    push("base64url without padding", URL_SAFE_NO_PAD.encode(value));
    push("URL encoding", url_encode(value, false));
    push("URL encoding (lower-case hex)", url_encode(value, true));
    push(
        "form encoding",
        url_encode(value, false).replace("%20", "+"),
    );
    forms
}

fn url_encode(value: &str, lower: bool) -> String {
    let mut out = String::new();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_line_and_encoded_forms_but_not_registrations() {
        let detector = LeakDetector::new(["first-line\nsecond/line"]);
        let mut leaks = Vec::new();
        detector.search("x second/line y", "a", &mut leaks);
        detector.search(
            &base64::engine::general_purpose::STANDARD.encode("first-line"),
            "b",
            &mut leaks,
        );
        detector.search("token=second%2Fline", "c", &mut leaks);
        detector.search("nothing here: first-lin", "d", &mut leaks);
        let locations: Vec<&str> = leaks.iter().map(|l| l.location.as_str()).collect();
        assert_eq!(locations, ["a", "b", "c"]);
        assert!(!leaks[0].to_string().contains("second/line"));
    }
}
