//! The journal's record of the last app command (`slot-release app start|stop|restart`, `slot delete`):
//! who ran what on which slot, when, and how it ended, kept with the release's own tags so the next
//! release, and a person reading the tags, sees that a slot was stopped or deleted outside a release.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use slot_release_config::SlotName;

/// One app command as the journal keeps it (short field names: it lives in a 256-character tag, split
/// over continuation tags when the holder's description is long).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CommandEntry {
    /// `start`, `stop`, `restart` or `delete`.
    #[serde(rename = "c")]
    pub command: String,
    /// The slot it acted on (a tag edited into a name no slot can have decodes as no entry).
    #[serde(rename = "s")]
    pub slot: SlotName,
    /// When it ran (Unix seconds, when it took the lock).
    #[serde(rename = "t")]
    pub at_unix: i64,
    /// The run's identity (the pipeline run's, else a local timestamp), as a release's would be.
    #[serde(rename = "r")]
    pub run: String,
    /// Who ran it: pipeline, run, stage, job and agent as the agent describes them; empty outside a
    /// pipeline.
    #[serde(rename = "w", default, skip_serializing_if = "String::is_empty")]
    pub who: String,
    /// `succeeded`, `failed` or `cancelled`.
    #[serde(rename = "o")]
    pub outcome: String,
}

impl CommandEntry {
    /// The tag value.
    pub(crate) fn encode(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }

    /// Reads a tag value; one edited by hand into something else counts as none (it decides nothing).
    pub(crate) fn decode(value: &str) -> Option<CommandEntry> {
        serde_json::from_str(value).ok()
    }

    /// One line for people: `stop of staging by … at …: succeeded`.
    pub fn describe(&self) -> String {
        let who = if self.who.is_empty() {
            String::new()
        } else {
            format!(" by {}", self.who)
        };
        format!(
            "{} of slot {}{who} at {}: {}",
            self.command,
            self.slot,
            crate::lock::human_time(self.at_unix),
            self.outcome
        )
    }
}
