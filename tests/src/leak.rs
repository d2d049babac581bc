//! The leak detector: searches everything a run left visible for every secret it was given, in every
//! form a secret takes on its way out (each line of a multi-line value, base64, URL encoding).
//!
//! It looks at the output the way a person with access to the raw log would, WITHOUT the agent's
//! masking: only the registrations themselves (`task.setsecret`, and `task.setvariable` with
//! `issecret=true`, which hands the value to the agent as a secret) are left out.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use slot_release_emulator::{Credential, StateSnapshot};
use slot_release_pipelines::agent::{agent_lines, parse_command};

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
    /// passwords, client secrets, the managed identity header and the job token.
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
                    kind: self.kinds.get(*secret).cloned().unwrap_or_default(),
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

    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use slot_release_emulator::{CredentialKind, SecretString};

    /// A JWT shaped like the emulator's: HS256 header, claims, a 43-character signature.
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0LmVtdWxhdG9yLnRlc3QiLCJleHAiOjJ9.Qm9ndXNTaWduYXR1cmVGb3JUaGVMZWFrRGV0ZWN0b3JUZXN0";
    const PUBLISHING_PASSWORD: &str = "3f9c0d1e2b4a5c6d7e8f9a0b1c2d3e4f";
    const CLIENT_SECRET: &str = "cs~8Qx/z+Lk=Pw 9";

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
        ])
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

    #[test]
    fn only_jwt_shaped_values_get_a_signature_needle() {
        assert_eq!(jwt_signature(TOKEN), TOKEN.rsplit('.').next());
        assert_eq!(jwt_signature("a.b.c"), None);
        assert_eq!(jwt_signature("eyJh.eyJi.short"), None);
        assert_eq!(jwt_signature("example.com.and.more"), None);
        assert_eq!(jwt_signature("eyJh.eyJi.has space in the signature"), None);
    }
}
