//! The release history kept with the app: the last releases that reached production, oldest first, each
//! with its outcome, so `rollback` can return to the release before the current one, or to any release it
//! names.
//!
//! It lives in the journal's tags as versioned JSON (`{"v":1,"r":[…]}`), split over continuation tags like
//! every long journal value. Each entry says how to get the release back: an image reference (containers),
//! or the pipeline artifact that holds its package (code apps), with the package's SHA-256 to verify it.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How many releases the history keeps.
pub const MAX_ENTRIES: usize = 10;

/// The version of the history's JSON form; a later version of the task reads every earlier one.
pub const HISTORY_VERSION: u32 = 1;

/// Where a release's package can be downloaded again: the pipeline artifact that the run which built it
/// published (what `DownloadPipelineArtifact@2` needs with `source: specific`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactSource {
    /// The pipeline (definition) id, `System.DefinitionId` of the run that built it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// The run (build) id, `Build.BuildId` of the run that built it.
    pub run: String,
    /// The artifact's name (`slot-release-package` in the templates).
    pub artifact: String,
}

impl ArtifactSource {
    /// How messages name it: "artifact slot-release-package of run 601 (pipeline 8)".
    pub fn describe(&self) -> String {
        format!(
            "artifact {} of run {}{}",
            self.artifact,
            self.run,
            self.pipeline
                .as_deref()
                .map_or(String::new(), |p| format!(" (pipeline {p})"))
        )
    }
}

/// What became of a release that reached production.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// It passed its watch and served production.
    #[default]
    Released,
    /// A rollback later took it out of production: a plain `rollback` never returns to it.
    RolledBack,
}

/// One release that reached production and passed its watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The release's identity.
    #[serde(rename = "i")]
    pub id: String,
    /// Its display name (the build number).
    #[serde(rename = "n", default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// When it passed its watch (Unix seconds).
    #[serde(rename = "t", default)]
    pub released_unix: i64,
    /// The image it ran (containers).
    #[serde(rename = "img", default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The pipeline run that released it, as people name it ("pipeline 8, run 601").
    #[serde(rename = "run", default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The SHA-256 of its package (code apps), to verify the artifact when it is deployed again.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub package_sha256: Option<String>,
    /// Where its package can be downloaded again (code apps deployed from a build's artifact).
    #[serde(rename = "src", default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<ArtifactSource>,
    /// What became of it.
    #[serde(rename = "o", default, skip_serializing_if = "is_released")]
    pub outcome: Outcome,
}

fn is_released(outcome: &Outcome) -> bool {
    *outcome == Outcome::Released
}

impl Entry {
    /// How logs name it.
    pub fn label(&self) -> String {
        crate::identity::label(&self.name, &self.id)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    v: u32,
    r: Vec<Entry>,
}

/// Reads a history written by [`encode`]; an unreadable or newer one reads as empty (never a wrong one).
pub fn decode(json: &str) -> Vec<Entry> {
    serde_json::from_str::<Stored>(json)
        .ok()
        .filter(|s| s.v <= HISTORY_VERSION)
        .map(|s| s.r)
        .unwrap_or_default()
}

/// The history's stored form.
pub fn encode(entries: &[Entry]) -> String {
    serde_json::to_string(&Stored {
        v: HISTORY_VERSION,
        r: entries.to_vec(),
    })
    .unwrap_or_default()
}

/// Records a release as the newest; one already there moves to the end. The oldest go past
/// [`MAX_ENTRIES`].
pub fn push(entries: &mut Vec<Entry>, entry: Entry) {
    entries.retain(|e| e.id != entry.id);
    entries.push(entry);
    let excess = entries.len().saturating_sub(MAX_ENTRIES);
    entries.drain(..excess);
}

/// The release before `current` that was not rolled back since (the one a plain `rollback` returns to):
/// after v1 → v2 → v3, a rollback to v2 and a release v4, `rollback` returns to v2, never to the bad v3.
pub fn before<'a>(entries: &'a [Entry], current: &str) -> Option<&'a Entry> {
    let at = entries.iter().position(|e| e.id == current)?;
    entries[..at]
        .iter()
        .rev()
        .find(|e| e.outcome == Outcome::Released)
}

/// Marks `id` as taken out of production by a rollback (nothing when the history does not know it).
pub fn mark_rolled_back(entries: &mut [Entry], id: &str) {
    if let Some(e) = entries.iter_mut().find(|e| e.id == id) {
        e.outcome = Outcome::RolledBack;
    }
}

/// The release `wanted` names, by identity or by display name; an error says why none is chosen.
pub fn find<'a>(entries: &'a [Entry], wanted: &str) -> Result<&'a Entry, String> {
    if let Some(e) = entries.iter().find(|e| e.id == wanted) {
        return Ok(e);
    }
    let named: Vec<&Entry> = entries.iter().filter(|e| e.name == wanted).collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "release {wanted} is not in the app's release history ({})",
            if entries.is_empty() {
                "it is empty".to_owned()
            } else {
                entries
                    .iter()
                    .map(Entry::label)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
        many => Err(format!(
            "{} releases in the history are named {wanted}; name one by its id: {}",
            many.len(),
            many.iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, name: &str) -> Entry {
        Entry {
            id: id.into(),
            name: name.into(),
            released_unix: 1,
            image: None,
            run: None,
            package_sha256: None,
            artifact: None,
            outcome: Outcome::Released,
        }
    }

    #[test]
    fn a_rolled_back_release_is_skipped_by_a_plain_rollback_and_kept_in_the_history() {
        let mut h = vec![entry("b1", "1"), entry("b2", "2"), entry("b3", "3")];
        mark_rolled_back(&mut h, "b3");
        push(&mut h, entry("b4", "4"));
        assert_eq!(before(&h, "b4").map(|e| e.id.as_str()), Some("b2"));
        assert_eq!(h[2].outcome, Outcome::RolledBack);
        // The outcome and the artifact survive the stored form; a released entry stores no outcome.
        h[0].artifact = Some(ArtifactSource {
            pipeline: Some("8".into()),
            run: "601".into(),
            artifact: "slot-release-package".into(),
        });
        let stored = encode(&h);
        assert_eq!(decode(&stored), h);
        assert_eq!(stored.matches("\"o\"").count(), 1, "{stored}");
        assert!(
            stored.contains(
                r#""src":{"pipeline":"8","run":"601","artifact":"slot-release-package"}"#
            ),
            "{stored}"
        );
        mark_rolled_back(&mut h, "unknown");
        assert_eq!(decode(&stored), h);
    }

    #[test]
    fn keeps_the_last_ten_in_order_and_moves_a_repeat_to_the_end() {
        let mut h = Vec::new();
        for i in 0..12 {
            push(&mut h, entry(&format!("b{i}"), &format!("2026.{i}")));
        }
        assert_eq!(h.len(), MAX_ENTRIES);
        assert_eq!(h[0].id, "b2");
        push(&mut h, entry("b5", "2026.5"));
        assert_eq!(h.last().unwrap().id, "b5");
        assert_eq!(h.len(), MAX_ENTRIES);
        assert_eq!(decode(&encode(&h)), h);
    }

    #[test]
    fn finds_the_previous_release_and_any_by_id_or_unique_name() {
        let h = vec![
            entry("b1", "20261204.1"),
            entry("b2", "20261204.2"),
            entry("b9", "20261204.2"),
            entry("b3", "20261204.3"),
        ];
        assert_eq!(before(&h, "b3").map(|e| e.id.as_str()), Some("b9"));
        assert_eq!(before(&h, "b1"), None);
        assert_eq!(before(&h, "nope"), None);
        assert_eq!(find(&h, "20261204.1").unwrap().id, "b1");
        assert_eq!(find(&h, "b9").unwrap().id, "b9");
        let err = find(&h, "20261204.2").unwrap_err();
        assert!(
            err.contains("2 releases") && err.contains("b2, b9"),
            "{err}"
        );
        let err = find(&h, "20261201.1").unwrap_err();
        assert!(err.contains("not in the app's release history"), "{err}");
    }

    #[test]
    fn an_unreadable_or_newer_history_reads_empty() {
        assert!(decode("not json").is_empty());
        assert!(decode(r#"{"v":99,"r":[{"i":"x"}]}"#).is_empty());
        assert_eq!(decode(r#"{"v":1,"r":[{"i":"x"}]}"#)[0].id, "x");
    }
}
