//! A release's identity: immutable, unique across pipelines, and encoded losslessly wherever Azure keeps it.
//!
//! A release has two names. Its **identity** ([`ReleaseId`]) decides everything: which release a slot holds,
//! whose lock is whose, what a rollback returns to. In a pipeline it comes from the run (build id, pipeline
//! definition, collection), so two pipelines that share a build number are still two releases. Its **display
//! name** is the build number (`20261204.1`, or any text Azure Pipelines allows), shown to people and never
//! compared. Azure stores the identity in places with their own alphabets (Kudu deployment ids, tag values);
//! every such encoding here is reversible, so no comparison ever mixes an encoded form with a raw one.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The longest identity or display name accepted (Azure Pipelines' limit on a build number).
pub const MAX_LEN: usize = 255;

/// A release's identity. Never empty, at most [`MAX_LEN`] characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReleaseId(String);

impl ReleaseId {
    /// Checks an identity.
    pub fn new(id: impl Into<String>) -> Result<ReleaseId, Error> {
        let id = id.into();
        let problem = if id.trim().is_empty() {
            Some("it is empty")
        } else if id.chars().count() > MAX_LEN {
            Some("it is longer than 255 characters")
        } else if id.chars().any(char::is_control) {
            Some("it contains a control character")
        } else {
            None
        };
        match problem {
            Some(reason) => Err(Error::InvalidReleaseId {
                id: id.chars().filter(|c| !c.is_control()).take(80).collect(),
                reason: reason.to_owned(),
            }),
            None => Ok(ReleaseId(id)),
        }
    }

    /// The identity as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identity as a Kudu deployment id, which allows only ASCII letters, digits, `-` and `_`:
    /// letters, digits and `-` stay, every other byte becomes `_` and two hex digits. Reversible by
    /// [`ReleaseId::from_kudu_id`], and two identities never share a Kudu id.
    pub fn kudu_id(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for byte in self.0.bytes() {
            if byte.is_ascii_alphanumeric() || byte == b'-' {
                out.push(byte as char);
            } else {
                out.push_str(&format!("_{byte:02x}"));
            }
        }
        out
    }

    /// Reverses [`ReleaseId::kudu_id`]; `None` for an id this encoding cannot have produced.
    pub fn from_kudu_id(kudu: &str) -> Option<ReleaseId> {
        let mut bytes = Vec::with_capacity(kudu.len());
        let mut rest = kudu.as_bytes();
        while let Some((&first, tail)) = rest.split_first() {
            if first == b'_' {
                let hex = tail.get(..2)?;
                let hex = std::str::from_utf8(hex).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                rest = &tail[2..];
            } else if first.is_ascii_alphanumeric() || first == b'-' {
                bytes.push(first);
                rest = tail;
            } else {
                return None;
            }
        }
        ReleaseId::new(String::from_utf8(bytes).ok()?).ok()
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ReleaseId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ReleaseId::new(value)
    }
}

impl From<ReleaseId> for String {
    fn from(id: ReleaseId) -> String {
        id.0
    }
}

/// A release as a run knows it: its identity and the name people see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    /// The identity, compared everywhere.
    pub id: ReleaseId,
    /// The display name (the build number), never compared.
    pub name: String,
}

impl Release {
    /// A release whose display name is its identity (`--release-id`, local runs).
    pub fn named_by_id(id: ReleaseId) -> Release {
        Release {
            name: id.as_str().to_owned(),
            id,
        }
    }

    /// How logs name the release: the display name, with the identity when it says more.
    pub fn label(&self) -> String {
        label(&self.name, self.id.as_str())
    }
}

/// How people read a release: its display name with its identity beside it, or the identity alone when
/// the name is empty or says nothing more.
pub fn label(name: &str, id: &str) -> String {
    if name.is_empty() || name == id {
        id.to_owned()
    } else {
        format!("{name} ({id})")
    }
}

/// Where a run's identity and display name come from, strongest first.
#[derive(Debug, Clone, Default)]
pub struct IdentitySources {
    /// `--release-id`: beats everything, and is also the display name.
    pub explicit: Option<String>,
    /// The pipeline run's identity (build id, definition, collection).
    pub run: Option<String>,
    /// `Build.BuildNumber`.
    pub build_number: Option<String>,
}

impl IdentitySources {
    /// The release: an explicit id; else the run's identity named by its build number; else the build
    /// number alone (a pipeline that hides its ids); else `fallback` (a local run).
    pub fn resolve(&self, fallback: impl FnOnce() -> String) -> Result<Release, Error> {
        let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
        if let Some(id) = nonempty(&self.explicit) {
            return Ok(Release::named_by_id(ReleaseId::new(id)?));
        }
        if let Some(run) = nonempty(&self.run) {
            let id = ReleaseId::new(run)?;
            let name = nonempty(&self.build_number).unwrap_or_else(|| id.as_str().to_owned());
            return Ok(Release { id, name });
        }
        let id = nonempty(&self.build_number).unwrap_or_else(fallback);
        Ok(Release::named_by_id(ReleaseId::new(id)?))
    }
}

/// Escapes the characters the journal's tag encodings use as separators (`%`, `,`, `=`, `;`), so any
/// identity fits in them and reads back unchanged.
pub(crate) fn escape_for_tag(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            ',' => out.push_str("%2C"),
            '=' => out.push_str("%3D"),
            ';' => out.push_str("%3B"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape_for_tag`]. Text written before escaping existed has no `%` sequences and reads as is.
pub(crate) fn unescape_from_tag(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let decoded = match rest.get(at..at + 3) {
            Some("%25") => Some('%'),
            Some("%2C") => Some(','),
            Some("%3D") => Some('='),
            Some("%3B") => Some(';'),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_build_numbers_survive_the_kudu_id() {
        for name in [
            "20261204.1",
            "20261204.12",
            "1.0.0 rc_1",
            "Ärger 🚀",
            "a-b",
            "a_2d",
        ] {
            let id = ReleaseId::new(name).unwrap();
            let kudu = id.kudu_id();
            assert!(
                kudu.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{kudu}"
            );
            assert_eq!(ReleaseId::from_kudu_id(&kudu).as_ref(), Some(&id), "{name}");
        }
        // The old lossy mapping sent both of these to `20261204-1`; now they stay apart.
        assert_ne!(
            ReleaseId::new("20261204.1").unwrap().kudu_id(),
            ReleaseId::new("20261204-1").unwrap().kudu_id()
        );
    }

    #[test]
    fn identities_are_checked() {
        assert!(ReleaseId::new("").is_err());
        assert!(ReleaseId::new("a\nb").is_err());
        assert!(ReleaseId::new("x".repeat(256)).is_err());
        assert!(ReleaseId::new("x".repeat(255)).is_ok());
        assert_eq!(ReleaseId::from_kudu_id("bad_zz"), None);
        assert_eq!(ReleaseId::from_kudu_id("bad.dot"), None);
    }

    #[test]
    fn explicit_beats_the_run_which_beats_the_build_number() {
        let sources = IdentitySources {
            explicit: Some("hotfix-7".into()),
            run: Some("build-512.def-7".into()),
            build_number: Some("20261204.1".into()),
        };
        let local = || "local".to_owned();
        assert_eq!(sources.resolve(local).unwrap().label(), "hotfix-7");
        let run = IdentitySources {
            explicit: None,
            ..sources.clone()
        };
        let release = run.resolve(local).unwrap();
        assert_eq!(release.id.as_str(), "build-512.def-7");
        assert_eq!(release.name, "20261204.1");
        assert_eq!(release.label(), "20261204.1 (build-512.def-7)");
        let number_only = IdentitySources {
            build_number: Some("20261204.1".into()),
            ..IdentitySources::default()
        };
        assert_eq!(
            number_only.resolve(local).unwrap().id.as_str(),
            "20261204.1"
        );
        assert_eq!(
            IdentitySources::default()
                .resolve(local)
                .unwrap()
                .id
                .as_str(),
            "local"
        );
    }

    proptest! {
        #[test]
        fn any_identity_round_trips_through_kudu_and_tags(id in "\\PC{1,80}") {
            prop_assume!(!id.trim().is_empty());
            let id = ReleaseId::new(id).unwrap();
            prop_assert_eq!(ReleaseId::from_kudu_id(&id.kudu_id()), Some(id.clone()));
            let escaped = escape_for_tag(id.as_str());
            prop_assert!(!escaped.contains([',', '=', ';']));
            prop_assert_eq!(unescape_from_tag(&escaped), id.as_str());
        }
    }
}
