//! The leak detector: searches everything a run left visible for every secret it was given, in every
//! form a secret takes on its way out: each line of a multi-line value, base64 (standard and URL-safe,
//! at each of the three alignments a value can start at inside a longer blob), percent-encoding
//! (upper- and lower-case hex, `+` for spaces) and JSON string escaping (short escapes, `\uXXXX` in
//! either case, the HTML-safe style). It also finds logging commands that hostile text injected.
//!
//! The encodings are written here independently of the masker in `crates/pipelines`, so a form the
//! masker forgets is found, not excused.
//!
//! It looks at the output the way a person with access to the raw log would, WITHOUT the agent's
//! masking: only the registrations themselves (`task.setsecret`, and `task.setvariable` with
//! `issecret=true`, which hands the value to the agent as a secret) are left out.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use slot_release_emulator::{Credential, StateSnapshot};
use slot_release_pipelines::agent::{agent_lines, is_formatting_line, parse_command};

use crate::agent::AgentOutcome;

/// A secret found where it must not be. It never contains the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// Which secret (its position in the list given to the detector).
    pub secret: usize,
    /// What the secret is (`declared secret`, `access token for … (…)`, `publishing password of …`).
    pub kind: String,
    /// In which form it was found (`value`, `line 2`, `base64 of line 1`, `JWT signature`, …).
    pub form: String,
    /// Where (`stdout line 12`, a file path).
    pub location: String,
}

impl std::fmt::Display for Leak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "secret #{} ({}; {}) found in {}",
            self.secret, self.kind, self.form, self.location
        )
    }
}

/// A JWT signature shorter than this is not searched for on its own: a short needle would match
/// ordinary text. HS256 and RS256 signatures are 43 and 342 characters.
const MIN_SIGNATURE_LEN: usize = 16;

/// An encoded form shorter than this is not searched for (the masker's limit too): a two-character
/// base64 fragment of a two-character secret is ordinary text. The value itself and its lines are
/// always searched, whatever their length.
const MIN_ENCODED_LEN: usize = 4;

/// In the emulator's state (tags, deployment records, settings) a needle shorter than this is not
/// searched: nothing masks Azure's state, so a one-character secret would be "found" in every name.
const MIN_STATE_NEEDLE_LEN: usize = 6;

/// Properties of our own commands that hold structure, not text (`type=error`, line numbers, flags):
/// the agent never shows them, and a one-character secret would match them.
const STRUCTURAL_PROPERTIES: [&str; 9] = [
    "type",
    "result",
    "linenumber",
    "columnnumber",
    "value",
    "issecret",
    "isoutput",
    "isreadonly",
    "variable",
];

/// The forms of each secret to search for.
#[derive(Debug, Clone, Default)]
pub struct LeakDetector {
    needles: Vec<(usize, String, String)>,
    kinds: Vec<String>,
}

impl LeakDetector {
    /// A detector for values declared to a run (Key Vault values, endpoint keys, the job token).
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> LeakDetector {
        let mut detector = LeakDetector::default();
        for secret in secrets {
            detector.add("declared secret", secret.as_ref());
        }
        detector
    }

    /// Adds one secret: its value, each line of a multi-line value, the signature of a JWT (so a
    /// token cut short on its way out is still found), and the encodings of each.
    pub fn add(&mut self, kind: &str, secret: &str) {
        let index = self.kinds.len();
        self.kinds.push(kind.to_owned());
        let mut parts = vec![("value".to_owned(), secret.to_owned())];
        if secret.contains(['\n', '\r']) {
            for (n, line) in secret.split(['\n', '\r']).enumerate() {
                if !line.trim().is_empty() {
                    parts.push((format!("line {}", n + 1), line.to_owned()));
                }
            }
        }
        if let Some(signature) = jwt_signature(secret) {
            parts.push(("JWT signature".to_owned(), signature.to_owned()));
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
                if !self
                    .needles
                    .iter()
                    .any(|(i, _, n)| *i == index && *n == encoded)
                {
                    self.needles.push((index, label, encoded));
                }
            }
        }
    }

    /// Adds every credential the emulator handed out or holds: access and OIDC tokens, publishing
    /// passwords, client secrets, the managed identity header, the job token and function apps' host
    /// keys.
    pub fn with_credentials(mut self, credentials: &[Credential]) -> LeakDetector {
        for credential in credentials {
            self.add(&credential.label, credential.value.expose());
        }
        self
    }

    /// How many secrets the detector searches for.
    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    /// Whether the detector searches for nothing.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// A detector for the secrets declared on the run.
    pub fn for_outcome(outcome: &AgentOutcome) -> LeakDetector {
        LeakDetector::new(&outcome.secrets)
    }

    /// Searches the journal kept with the app (every slot's tags and Kudu deployment records).
    pub fn scan_journal(&self, snapshot: &StateSnapshot) -> Vec<Leak> {
        let mut leaks = Vec::new();
        for app in &snapshot.apps {
            for slot in &app.slots {
                for (name, value) in &slot.tags {
                    let location = format!("tag {name} of {}/{}", app.name, slot.name);
                    self.search(&format!("{name}={value}"), &location, &mut leaks);
                }
                for record in &slot.deployments {
                    let text = serde_json::to_string(record).unwrap_or_default();
                    let location = format!(
                        "deployment record {} of {}/{}",
                        record.id, app.name, slot.name
                    );
                    self.search(&text, &location, &mut leaks);
                }
            }
        }
        leaks
    }

    /// Searches stdout and stderr, minus the secret registrations, plus the unescaped data and
    /// properties of every other command (what the agent would print for them).
    pub fn scan_output(&self, outcome: &AgentOutcome) -> Vec<Leak> {
        let mut leaks = Vec::new();
        for (stream, text) in [("stdout", &outcome.stdout), ("stderr", &outcome.stderr)] {
            for (n, line) in agent_lines(text).into_iter().enumerate() {
                // What the agent shows: a command's data and its text properties (not its name or
                // structural properties), a formatting line without its `##[…]` prefix, or the line.
                let mut views = Vec::new();
                if let Some(cmd) = parse_command(line) {
                    let secret_variable = cmd.name == "task.setvariable"
                        && cmd
                            .property("issecret")
                            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                    if cmd.name == "task.setsecret" || secret_variable {
                        continue;
                    }
                    // Text before the command on the same line is shown too.
                    views.push(line[..line.find("##vso[").unwrap_or(0)].to_owned());
                    views.push(cmd.data.clone());
                    views.extend(
                        cmd.properties
                            .iter()
                            .filter(|(k, _)| {
                                !STRUCTURAL_PROPERTIES.contains(&k.to_ascii_lowercase().as_str())
                            })
                            .map(|(_, v)| v.clone()),
                    );
                } else if let Some(rest) = line
                    .strip_prefix("##[")
                    .and_then(|rest| rest.split_once(']'))
                    .map(|(_, rest)| rest)
                {
                    views.push(rest.to_owned());
                } else {
                    views.push(line.to_owned());
                }
                for view in &views {
                    self.search(view, &format!("{stream} line {}", n + 1), &mut leaks);
                }
            }
        }
        leaks
    }

    /// Every logging command or formatting line that hostile text got the agent to run: on stderr any
    /// command or formatting line at all (we write none there); on stdout a command we never write, a
    /// variable we never set, a second `task.complete`, or a formatting line other than our group and
    /// section lines. Each entry names the stream and line, and shows the line.
    pub fn injected_commands(outcome: &AgentOutcome) -> Vec<String> {
        const OURS: [&str; 9] = [
            "task.setsecret",
            "task.setvariable",
            "task.logissue",
            "task.debug",
            "task.setprogress",
            "task.complete",
            "task.uploadsummary",
            "artifact.upload",
            "task.issue",
        ];
        // The variables the task declares (task.json `outputVariables`): any other is foreign.
        let our_variables = declared_output_variables();
        let mut found = Vec::new();
        for line in agent_lines(&outcome.stderr) {
            if parse_command(line).is_some() || is_formatting_line(line) {
                found.push(format!("stderr: {line}"));
            }
        }
        let mut completes = 0;
        for line in agent_lines(&outcome.stdout) {
            match parse_command(line) {
                Some(cmd) => {
                    let variable = cmd.property("variable").unwrap_or_default();
                    let foreign_variable = cmd.name == "task.setvariable"
                        && !our_variables
                            .iter()
                            .any(|v| v.eq_ignore_ascii_case(variable));
                    if cmd.name == "task.complete" {
                        completes += 1;
                    }
                    if !OURS.contains(&cmd.name.as_str())
                        || foreign_variable
                        || (cmd.name == "task.complete" && completes > 1)
                    {
                        found.push(format!("stdout: {line}"));
                    }
                }
                None if is_formatting_line(line) => {
                    let ours = ["##[group]", "##[endgroup]", "##[section]"]
                        .iter()
                        .any(|p| line.starts_with(p))
                        && line.matches("##[").count() == 1;
                    if !ours {
                        found.push(format!("stdout: {line}"));
                    }
                }
                None => {}
            }
        }
        found
    }

    /// Searches everything written to the emulator that is not the place meant for a secret: every
    /// slot's tags, deployment records, site config and the values of app settings other than
    /// `secret_settings` (the settings that deliver a secret by value hold it by design).
    ///
    /// The names of app settings and connection strings are the config's, public in Azure by design (the
    /// detector never searches them in the settings list), so where the journal repeats one (the names a
    /// release owns) it is blanked before the search: a secret value that happens to be part of a public
    /// name is not disclosed by the name. Everything else around it is searched.
    pub fn scan_state(&self, snapshot: &StateSnapshot, secret_settings: &[&str]) -> Vec<Leak> {
        let mut leaks = Vec::new();
        let state = self.long_needles(MIN_STATE_NEEDLE_LEN);
        let mut public_names: Vec<&str> = snapshot
            .apps
            .iter()
            .flat_map(|a| &a.slots)
            .flat_map(|s| s.app_settings.keys().chain(s.connection_strings.keys()))
            .map(String::as_str)
            .collect();
        // Longest first, so a name that contains another is blanked whole.
        public_names.sort_by_key(|n| std::cmp::Reverse(n.len()));
        public_names.dedup();
        let blank_names = |text: &str| {
            let mut text = text.to_owned();
            for name in &public_names {
                text = text.replace(&format!("\"{name}\""), "\"\"");
                if text == *name {
                    text.clear();
                }
            }
            text
        };
        for app in &snapshot.apps {
            for slot in &app.slots {
                let place = format!("{}/{}", app.name, slot.name);
                for (name, value) in &slot.tags {
                    state.search(
                        &format!("{name}={}", blank_names(value)),
                        &format!("tag {name} of {place}"),
                        &mut leaks,
                    );
                }
                for record in &slot.deployments {
                    let text = serde_json::to_value(record).unwrap_or_default();
                    for string in json_strings(&text) {
                        state.search(
                            &blank_names(&string),
                            &format!("deployment record {} of {place}", record.id),
                            &mut leaks,
                        );
                    }
                }
                for string in json_strings(&serde_json::Value::Object(slot.site_config.clone())) {
                    state.search(&string, &format!("site config of {place}"), &mut leaks);
                }
                for (name, value) in &slot.app_settings {
                    if !secret_settings.contains(&name.as_str()) {
                        state.search(value, &format!("app setting {name} of {place}"), &mut leaks);
                    }
                }
            }
        }
        leaks
    }

    /// Searches a file (a summary, a release record); a missing file has no leaks. A JSON file is
    /// searched string by string (keys included, escapes decoded) plus its raw text for needles of
    /// two characters or more: its quotes, colons and braces are structure, not text.
    pub fn scan_file(&self, path: &Path) -> Vec<Leak> {
        let mut leaks = Vec::new();
        let Ok(bytes) = std::fs::read(path) else {
            return leaks;
        };
        let location = path.display().to_string();
        let Ok(text) = String::from_utf8(bytes.clone()) else {
            // A binary file (the package the task zipped from the sources): short needles would
            // match its compressed bytes, so only the needles searched in Azure's state are.
            self.long_needles(MIN_STATE_NEEDLE_LEN).search(
                &String::from_utf8_lossy(&bytes),
                &location,
                &mut leaks,
            );
            return leaks;
        };
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(json) => {
                for string in json_strings(&json) {
                    self.search(&string, &location, &mut leaks);
                }
                self.long_needles(2).search(&text, &location, &mut leaks);
                leaks.dedup_by(|a, b| a.secret == b.secret && a.location == b.location);
            }
            Err(_) => self.search(&text, &location, &mut leaks),
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

    /// The same detector without needles shorter than `min` characters.
    fn long_needles(&self, min: usize) -> LeakDetector {
        LeakDetector {
            needles: self
                .needles
                .iter()
                .filter(|(_, _, n)| n.chars().count() >= min)
                .cloned()
                .collect(),
            kinds: self.kinds.clone(),
        }
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
                    kind: self.kinds.get(*secret).cloned().unwrap_or_default(),
                    form: form.clone(),
                    location: location.to_owned(),
                });
            }
        }
    }
}

/// Every string of a JSON document (keys included) and every number, as text.
fn json_strings(value: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => {
                for (k, v) in map {
                    out.push(k.clone());
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    out
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

/// The signature segment of a JWT-shaped value (three base64url segments, a JSON header), when
/// long enough to search for alone.
fn jwt_signature(value: &str) -> Option<&str> {
    let mut segments = value.split('.');
    let (Some(header), Some(body), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return None;
    };
    let base64url = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (header.starts_with("eyJ")
        && base64url(header)
        && base64url(body)
        && base64url(signature)
        && signature.len() >= MIN_SIGNATURE_LEN)
        .then_some(signature)
}

/// The value and the encodings a secret commonly leaks in.
fn encodings(value: &str) -> Vec<(&'static str, String)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![("", value.to_owned())];
    let mut push = |form: &'static str, encoded: String| {
        if encoded.chars().count() >= MIN_ENCODED_LEN && !forms.iter().any(|(_, e)| *e == encoded) {
            forms.push((form, encoded));
        }
    };
    push("base64", STANDARD.encode(value));
    push("base64 without padding", STANDARD_NO_PAD.encode(value));
    push("base64url", URL_SAFE.encode(value));
    push("base64url without padding", URL_SAFE_NO_PAD.encode(value));
    for (offset, form, url_form) in [
        (1, "base64 after 1 byte", "base64url after 1 byte"),
        (2, "base64 after 2 bytes", "base64url after 2 bytes"),
    ] {
        push(form, shifted_base64(value.as_bytes(), offset, false));
        push(url_form, shifted_base64(value.as_bytes(), offset, true));
    }
    push("URL encoding", url_encode(value, false));
    push("URL encoding (lower-case hex)", url_encode(value, true));
    push(
        "form encoding",
        url_encode(value, false).replace("%20", "+"),
    );
    push(
        "form encoding (lower-case hex)",
        url_encode(value, true).replace("%20", "+"),
    );
    push("JSON string", json_inner(value, None));
    push(
        "JSON \\u escapes (lower-case)",
        json_inner(value, Some(false)),
    );
    push(
        "JSON \\u escapes (upper-case)",
        json_inner(value, Some(true)),
    );
    push("JSON HTML-safe escapes", json_html_safe(value));
    forms
}

/// The characters of `base64(prefix + value + anything)` that only depend on `value`, for a prefix of
/// `offset` bytes: each base64 character carries 6 bits, so the first one fully inside the value
/// starts at bit `8 * offset` rounded up to a multiple of 6.
fn shifted_base64(value: &[u8], offset: usize, url: bool) -> String {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut blob = vec![b'\xff'; offset];
    blob.extend_from_slice(value);
    let encoded = if url {
        URL_SAFE_NO_PAD.encode(&blob)
    } else {
        STANDARD_NO_PAD.encode(&blob)
    };
    let first = (8 * offset).div_ceil(6);
    let last = (8 * (offset + value.len())) / 6;
    encoded.get(first..last).unwrap_or_default().to_owned()
}

/// The inside of a JSON string: serde_json's escaping, or with every non-ASCII character as
/// `\uXXXX` (surrogate pairs above U+FFFF) in lower- or upper-case hex.
fn json_inner(value: &str, unicode_upper: Option<bool>) -> String {
    let json = serde_json::to_string(value).unwrap_or_default();
    let inner = json
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_default();
    let Some(upper) = unicode_upper else {
        return inner.to_owned();
    };
    let mut out = String::new();
    for c in inner.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&if upper {
                    format!("\\u{unit:04X}")
                } else {
                    format!("\\u{unit:04x}")
                });
            }
        }
    }
    out
}

/// .NET's default JSON escaping: non-ASCII, control characters, quotes, `&+<>`, the backtick and the
/// backslash as upper-case `\uXXXX`.
fn json_html_safe(value: &str) -> String {
    let mut out = String::new();
    for c in value.chars() {
        if !c.is_ascii() || c.is_ascii_control() || "\"&'+<>`\\".contains(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
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

/// The output variables task.json declares.
fn declared_output_variables() -> Vec<String> {
    let path = crate::paths::workspace().join("task.json");
    let task: serde_json::Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("cannot read {}", path.display()));
    task["outputVariables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect()
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

    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use slot_release_emulator::{CredentialKind, SecretString};

    /// A JWT shaped like the emulator's: HS256 header, claims, a 43-character signature.
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmVtdWxhdG9yLnRlc3QiLCJleHAiOjJ9.Qm9ndXNTaWduYXR1cmVGb3JUaGVMZWFrRGV0ZWN0b3JUZXN0";
    const PUBLISHING_PASSWORD: &str = "3f9c0d1e2b4a5c6d7e8f9a0b1c2d3e4f";
    const CLIENT_SECRET: &str = "cs~8Qx/z+Lk=Pw 9";
    /// Shaped like a Functions host key: URL-safe base64 of 40 random bytes.
    const HOST_KEY: &str = "q3Vb_0xT9kLm2NpRsUvWxYz-AbCdEfGhIjKlMnOpQrStUvWxYz0123";

    fn credential(kind: CredentialKind, label: &str, value: &str) -> Credential {
        Credential {
            kind,
            label: label.to_owned(),
            value: SecretString::new(value),
        }
    }

    fn detector() -> LeakDetector {
        LeakDetector::new(["a-key-vault-value"]).with_credentials(&[
            credential(CredentialKind::AccessToken, "access token for vault", TOKEN),
            credential(
                CredentialKind::PublishingPassword,
                "publishing password of contoso-web",
                PUBLISHING_PASSWORD,
            ),
            credential(
                CredentialKind::ClientSecret,
                "client secret of 1111",
                CLIENT_SECRET,
            ),
            credential(
                CredentialKind::FunctionHostKey,
                "default host key of contoso-func slot staging",
                HOST_KEY,
            ),
        ])
    }

    #[test]
    fn a_function_host_key_is_found_sent_as_a_header_or_in_a_url() {
        let kind = "default host key of contoso-func slot staging";
        assert_eq!(
            found(&format!("x-functions-key: {HOST_KEY}")),
            one(kind, "value")
        );
        assert_eq!(
            found(&format!("GET /api/hello?code={HOST_KEY}")),
            one(kind, "value")
        );
    }

    /// Which secrets (by kind) were found in `haystack`, and in which form.
    fn found(haystack: &str) -> Vec<(String, String)> {
        let mut leaks = Vec::new();
        detector().search(haystack, "here", &mut leaks);
        leaks.into_iter().map(|l| (l.kind, l.form)).collect()
    }

    fn one(kind: &str, form: &str) -> Vec<(String, String)> {
        vec![(kind.to_owned(), form.to_owned())]
    }

    #[test]
    fn an_access_token_is_found_whole_encoded_or_cut_to_its_signature() {
        let kind = "access token for vault";
        assert_eq!(
            found(&format!("Authorization: Bearer {TOKEN}")),
            one(kind, "value")
        );
        let signature = TOKEN.rsplit('.').next().unwrap_or_default();
        // A print cut after the claims still shows the signature on the next line.
        assert_eq!(
            found(&format!("token ...{signature}")),
            one(kind, "JWT signature")
        );
        for encoded in [STANDARD.encode(TOKEN), URL_SAFE_NO_PAD.encode(TOKEN)] {
            let leaks = found(&format!("x{encoded}x"));
            assert_eq!(leaks.len(), 1, "{leaks:?}");
            assert_eq!(leaks[0].0, kind);
            assert!(leaks[0].1.starts_with("base64"), "{leaks:?}");
        }
        assert_eq!(
            found(&format!("at={}", url_encode(TOKEN, false))),
            one(kind, "value"),
            "a JWT has nothing URL encoding changes"
        );
        // The header alone is the same in every token the emulator issues: not a leak.
        assert!(found("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9").is_empty());
    }

    #[test]
    fn a_publishing_password_is_found_plain_base64_and_url_encoded() {
        let kind = "publishing password of contoso-web";
        assert_eq!(
            found(&format!("https://$contoso-web:{PUBLISHING_PASSWORD}@scm")),
            one(kind, "value")
        );
        assert_eq!(
            found(&STANDARD.encode(PUBLISHING_PASSWORD)),
            one(kind, "base64 of value")
        );
        assert_eq!(
            found(&format!(
                "password={}",
                url_encode(PUBLISHING_PASSWORD, false)
            )),
            one(kind, "value"),
            "hex digits need no URL encoding, so the value form is what shows"
        );
    }

    #[test]
    fn a_client_secret_is_found_plain_base64_and_url_encoded() {
        let kind = "client secret of 1111";
        assert_eq!(
            found(&format!("secret: {CLIENT_SECRET}")),
            one(kind, "value")
        );
        assert_eq!(
            found(&STANDARD.encode(CLIENT_SECRET)),
            one(kind, "base64 of value")
        );
        // As a token request body carries it: form-encoded.
        assert_eq!(
            found("grant_type=client_credentials&client_secret=cs~8Qx%2Fz%2BLk%3DPw+9&scope=x"),
            one(kind, "form encoding of value")
        );
        assert_eq!(
            found("client_secret=cs~8Qx%2fz%2bLk%3dPw%209"),
            one(kind, "URL encoding (lower-case hex) of value")
        );
        assert!(
            found("cs~8Qx/z+Lk=Pw").is_empty(),
            "a prefix is not the secret"
        );
    }

    #[test]
    fn leaks_name_the_kind_of_secret_but_never_its_value() {
        let mut leaks = Vec::new();
        detector().search(
            &format!("{TOKEN} {PUBLISHING_PASSWORD} {CLIENT_SECRET} a-key-vault-value"),
            "stdout line 1",
            &mut leaks,
        );
        assert_eq!(leaks.len(), 4, "{leaks:?}");
        for leak in &leaks {
            let text = format!("{leak} {leak:?}");
            for value in [
                TOKEN,
                PUBLISHING_PASSWORD,
                CLIENT_SECRET,
                "a-key-vault-value",
            ] {
                assert!(!text.contains(value), "{text}");
            }
        }
        assert_eq!(leaks[0].kind, "declared secret");
    }

    /// Each encoded form, produced the way a program would produce it (not by the detector's own
    /// functions), is found; a form shorter than four characters is not searched.
    #[test]
    fn finds_each_encoded_form_at_every_alignment() {
        use base64::engine::general_purpose::URL_SAFE;
        let secret = "pä ss/wörd+\"<&>🔑;]";
        let detector = LeakDetector::new([secret]);
        let percent = |lower: bool| url_encode(secret, lower);
        let mut texts: Vec<(String, String)> = vec![
            ("value".into(), format!("x {secret} y")),
            ("percent".into(), format!("q={}&", percent(false))),
            ("percent lower".into(), format!("q={}&", percent(true))),
            (
                "form".into(),
                format!("q={}&", percent(false).replace("%20", "+")),
            ),
            (
                "form lower".into(),
                format!("q={}&", percent(true).replace("%20", "+")),
            ),
            (
                "json".into(),
                serde_json::json!({ "k": secret }).to_string(),
            ),
        ];
        // JSON with every non-ASCII character escaped, as Python's json.dumps writes it (lower-case
        // hex) and as other serialisers do (upper-case).
        let ascii = |upper: bool| -> String {
            secret
                .encode_utf16()
                .map(|u| match u {
                    0x22 => "\\\"".to_owned(),
                    u if u < 0x80 => char::from(u as u8).to_string(),
                    u if upper => format!("\\u{u:04X}"),
                    u => format!("\\u{u:04x}"),
                })
                .collect()
        };
        texts.push((
            "json ascii".into(),
            format!("{{\"k\": \"{}\"}}", ascii(false)),
        ));
        texts.push((
            "json ascii upper".into(),
            format!("{{\"k\": \"{}\"}}", ascii(true)),
        ));
        let html_safe: String = secret
            .encode_utf16()
            .map(|u| match u {
                u if u < 0x80 && !b"\"&'+<>`\\".contains(&(u as u8)) => {
                    char::from(u as u8).to_string()
                }
                u => format!("\\u{u:04X}"),
            })
            .collect();
        texts.push((
            "json html-safe".into(),
            format!("{{\"k\":\"{html_safe}\"}}"),
        ));
        for prefix in ["", "u", "u:", "usr:", "user:"] {
            let blob = format!("{prefix}{secret}!");
            texts.push((format!("base64 after {prefix:?}"), STANDARD.encode(&blob)));
            texts.push((
                format!("base64url after {prefix:?}"),
                URL_SAFE.encode(&blob),
            ));
        }
        for (what, text) in texts {
            let mut leaks = Vec::new();
            detector.search(&text, &what, &mut leaks);
            assert_eq!(leaks.len(), 1, "{what}: {text}");
        }
        let short = LeakDetector::new(["Qz"]);
        let mut leaks = Vec::new();
        short.search("a Qz b", "value", &mut leaks);
        short.search(
            &STANDARD.encode("Qz"),
            "base64 of a short secret",
            &mut leaks,
        );
        let places: Vec<&str> = leaks.iter().map(|l| l.location.as_str()).collect();
        assert_eq!(
            places,
            ["value", "base64 of a short secret"],
            "UXo= is 4 characters"
        );
        let mut leaks = Vec::new();
        short.search("UXo", "a 3-character fragment", &mut leaks);
        assert!(leaks.is_empty());
    }

    #[test]
    fn only_jwt_shaped_values_get_a_signature_needle() {
        assert_eq!(jwt_signature(TOKEN), TOKEN.rsplit('.').next());
        assert_eq!(jwt_signature("a.b.c"), None);
        assert_eq!(jwt_signature("eyJh.eyJi.short"), None);
        assert_eq!(jwt_signature("example.com.and.more"), None);
        assert_eq!(jwt_signature("eyJh.eyJi.has space in the signature"), None);
    }
}
