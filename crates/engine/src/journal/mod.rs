//! The journal: the release record kept with the app in Azure, so an ephemeral agent can resume or roll back.
//!
//! Two parts, neither of which restarts the app: compact resource tags on the site (release, phase, which
//! release is in which slot, last known-good, previous image, the lock) and a Kudu deployment record with the
//! full story (hook results, timings). Tags are the source of truth for decisions; the record is for people.
//!
//! Azure Resource Manager holds a resource to at most [`MAX_TAGS`] tags, names of [`MAX_TAG_NAME_LEN`] and
//! values of [`MAX_TAG_VALUE_LEN`] characters. A journal value longer than that (previous settings, a long
//! image reference, many slots) is split over numbered continuation tags: `slotrelease.previousSettings`
//! holds the first part, `slotrelease.previousSettings.1`, `.2`, … the rest, in order.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::identity::{escape_for_tag, unescape_from_tag};
use crate::lock::CLAIM_PREFIX;
use crate::state::SlotName;

mod command;
mod limits;
#[cfg(test)]
mod tests;

pub use command::CommandEntry;
pub use limits::{MAX_TAG_NAME_LEN, MAX_TAG_VALUE_LEN, MAX_TAGS, check_tag_limits};
pub(crate) use limits::{
    abbreviate, get_split, put_split, too_many_tags_message, value_too_long_advice,
};

/// Every journal tag name starts with this.
pub const TAG_PREFIX: &str = "slotrelease.";
const TAG_RELEASE: &str = "slotrelease.release";
const TAG_PHASE: &str = "slotrelease.phase";
const TAG_LKG: &str = "slotrelease.lastKnownGood";
const TAG_SLOTS: &str = "slotrelease.slots";
const TAG_PREVIOUS_IMAGE: &str = "slotrelease.previousImage";
const TAG_LOCK: &str = "slotrelease.lock";
const TAG_PREVIOUS_SETTINGS: &str = "slotrelease.previousSettings";
const TAG_HISTORY: &str = "slotrelease.history";
const TAG_OWNED: &str = "slotrelease.owned";
const TAG_COMMAND: &str = "slotrelease.command";
const TAG_CANARY: &str = "slotrelease.canary";
/// Every tag the journal writes, each possibly followed by continuation tags.
const JOURNAL_TAGS: [&str; 11] = [
    TAG_RELEASE,
    TAG_PHASE,
    TAG_LKG,
    TAG_SLOTS,
    TAG_PREVIOUS_IMAGE,
    TAG_LOCK,
    TAG_PREVIOUS_SETTINGS,
    TAG_HISTORY,
    TAG_OWNED,
    TAG_COMMAND,
    TAG_CANARY,
];

/// How far a release got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Staging began: settings and content of the slot are changing.
    Staging,
    /// The package or image is in the slot; hooks and the gate have not passed yet.
    Deployed,
    /// The slot passed its gate and waits for production.
    Staged,
    /// A canary is under way: production's settings are on the source slot and a share of production's
    /// traffic may be routed to it (the journal's `canary` says which, and the rules before).
    Canary,
    /// A swap (or direct image change) of production is under way.
    Swapping,
    /// Production serves the release and is being watched.
    Swapped,
    /// The release passed its watch: it is the last known-good one.
    Released,
    /// The stage failed and was cleaned up; production was not changed by it.
    Failed,
    /// A rollback is under way.
    RollingBack,
    /// Production was restored to the last known-good release.
    RolledBack,
}

impl Phase {
    /// Every phase.
    pub const ALL: [Phase; 10] = [
        Phase::Staging,
        Phase::Deployed,
        Phase::Staged,
        Phase::Canary,
        Phase::Swapping,
        Phase::Swapped,
        Phase::Released,
        Phase::Failed,
        Phase::RollingBack,
        Phase::RolledBack,
    ];

    /// The phase's name in tags and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Staging => "staging",
            Phase::Deployed => "deployed",
            Phase::Staged => "staged",
            Phase::Canary => "canary",
            Phase::Swapping => "swapping",
            Phase::Swapped => "swapped",
            Phase::Released => "released",
            Phase::Failed => "failed",
            Phase::RollingBack => "rollingBack",
            Phase::RolledBack => "rolledBack",
        }
    }

    /// Parses a tag value.
    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether a run may start here without resuming or rolling back first.
    /// `Staged` is settled: the slot waits for production, which is the next stage's job.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Phase::Staged | Phase::Released | Phase::Failed | Phase::RolledBack
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The compact journal held in the site's tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalTags {
    /// The current (or last) release.
    pub release: Option<String>,
    /// The phase it reached.
    pub phase: Option<Phase>,
    /// The last known-good release.
    pub last_known_good: Option<String>,
    /// Which release is in which slot.
    pub slots: BTreeMap<SlotName, String>,
    /// The image production ran before the current release (containers).
    pub previous_image: Option<String>,
    /// Production's values (`None`: unset) of the settings the current release wrote over there before its
    /// swap, so a rollback in a later run can put them back. Values delivered as secrets are never kept.
    pub previous_settings: BTreeMap<String, Option<String>>,
    /// The releases that passed their watch, oldest first (see [`crate::history`]).
    pub history: Vec<crate::history::Entry>,
    /// Per slot, the setting and connection-string names the config of the last release there owns, so
    /// a name taken out of `release.yml` is removed instead of coming back with a swap. `None`: a journal
    /// written before ownership was recorded (nothing is removed until a release records it).
    pub owned: Option<BTreeMap<SlotName, Owned>>,
    /// The last app command run outside a release (start, stop, restart, slot delete), kept so it is
    /// seen; releases carry it over unchanged.
    /// Boxed: rare, and kept out of the size of every journal a state machine passes around.
    pub command: Option<Box<CommandEntry>>,
    /// A canary whose routing is not put back yet: the share it routes and production's routing rules
    /// before it began. Recorded before the first rule changes, cleared once the rules are back.
    /// Boxed, as `command` is: most journals have none.
    pub canary: Option<Box<CanaryRecord>>,
}

/// What a canary changed in production's routing, kept until the rules are as they were again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CanaryRecord {
    /// The percent of production's traffic routed to the source slot (the last share asked for: a run
    /// stopped during the change may have left the one before).
    #[serde(rename = "p")]
    pub percent: u8,
    /// Production's routing rules before the release, put back exactly on completion or abort.
    #[serde(rename = "before", default)]
    pub before: Vec<crate::state::RoutingRule>,
}

/// The names a release's config owns on one slot: what it declared, and names it took out that may still
/// be around (on the slot, or in the other one of a swap) until a later release finds them gone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Owned {
    /// The release that recorded them.
    #[serde(rename = "r")]
    pub release: String,
    /// App setting names (plain and Key Vault ones).
    #[serde(
        rename = "s",
        default,
        skip_serializing_if = "std::collections::BTreeSet::is_empty"
    )]
    pub settings: std::collections::BTreeSet<String>,
    /// Connection string names.
    #[serde(
        rename = "c",
        default,
        skip_serializing_if = "std::collections::BTreeSet::is_empty"
    )]
    pub connection_strings: std::collections::BTreeSet<String>,
}

impl JournalTags {
    /// Reads the journal from the site's tags (joining continuation tags); other tags are ignored.
    ///
    /// The tags are live state anyone with access to the site can edit. A slot name the journal could
    /// never have written is refused with an error naming the tag: every decision about which release a
    /// slot holds goes by it, so guessing would be worse than stopping.
    pub fn from_tags(tags: &BTreeMap<String, String>) -> Result<JournalTags, Error> {
        let get = |k: &str| get_split(tags, k).filter(|v| !v.is_empty());
        let slots = get(TAG_SLOTS)
            .map(|s| {
                s.split(',')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(slot, rel)| {
                        let slot =
                            SlotName::new(slot).map_err(|source| Error::JournalSlotInvalid {
                                tag: TAG_SLOTS,
                                source,
                            })?;
                        Ok((slot, unescape_from_tag(rel)))
                    })
                    .collect::<Result<BTreeMap<_, _>, Error>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(JournalTags {
            release: get(TAG_RELEASE),
            phase: get(TAG_PHASE).and_then(|p| Phase::parse(&p)),
            last_known_good: get(TAG_LKG),
            slots,
            previous_image: get(TAG_PREVIOUS_IMAGE),
            previous_settings: get(TAG_PREVIOUS_SETTINGS)
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default(),
            history: get(TAG_HISTORY)
                .map(|v| crate::history::decode(&v))
                .unwrap_or_default(),
            // An owned list that does not parse (edited by hand) counts as none: nothing is removed.
            owned: get(TAG_OWNED).and_then(|v| serde_json::from_str(&v).ok()),
            command: get(TAG_COMMAND)
                .and_then(|v| CommandEntry::decode(&v))
                .map(Box::new),
            canary: get(TAG_CANARY)
                .map(|v| {
                    // Not guessed: without the rules before, an abort could not put them back.
                    serde_json::from_str(&v).map_err(|e| Error::JournalTagInvalid {
                        tag: TAG_CANARY,
                        reason: e.to_string(),
                    })
                })
                .transpose()?
                .map(Box::new),
        })
    }

    /// Writes the journal into a tag map, keeping every tag that is not the journal's. Every value written
    /// fits [`MAX_TAG_VALUE_LEN`]; longer ones go on in continuation tags. All earlier journal tags are
    /// dropped first, so continuations a shorter value no longer needs do not linger.
    pub fn apply_to(&self, tags: &mut BTreeMap<String, String>) {
        tags.retain(|k, _| !k.starts_with(TAG_PREFIX) || k.starts_with(CLAIM_PREFIX));
        for (base, value) in self.tag_values() {
            put_split(tags, base, &value);
        }
    }

    /// Checks that the journal, written over `site_tags` (the site's tags as they are, foreign ones
    /// included), stays within Azure's tag limits.
    pub fn check_fits(&self, site_tags: &BTreeMap<String, String>) -> Result<(), Error> {
        let mut tags = site_tags.clone();
        self.apply_to(&mut tags);
        check_tag_limits(&tags)
    }

    /// Each journal tag's whole value, before splitting; absent fields have no entry.
    fn tag_values(&self) -> Vec<(&'static str, String)> {
        let slots = (!self.slots.is_empty()).then(|| {
            self.slots
                .iter()
                .map(|(s, r)| format!("{s}={}", escape_for_tag(r)))
                .collect::<Vec<_>>()
                .join(",")
        });
        let previous_settings = (!self.previous_settings.is_empty())
            .then(|| serde_json::to_string(&self.previous_settings).ok())
            .flatten();
        [
            (TAG_RELEASE, self.release.clone()),
            (TAG_PHASE, self.phase.map(|p| p.as_str().to_owned())),
            (TAG_LKG, self.last_known_good.clone()),
            (TAG_SLOTS, slots),
            (TAG_PREVIOUS_IMAGE, self.previous_image.clone()),
            (TAG_PREVIOUS_SETTINGS, previous_settings),
            (
                TAG_HISTORY,
                (!self.history.is_empty()).then(|| crate::history::encode(&self.history)),
            ),
            (
                TAG_OWNED,
                self.owned
                    .as_ref()
                    .and_then(|o| serde_json::to_string(o).ok()),
            ),
            (
                TAG_COMMAND,
                self.command.as_deref().and_then(CommandEntry::encode),
            ),
            (
                TAG_CANARY,
                self.canary
                    .as_ref()
                    .and_then(|c| serde_json::to_string(c).ok()),
            ),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }

    /// The release the journal says is in a slot.
    pub fn slot_release(&self, slot: &SlotName) -> Option<&str> {
        self.slots.get(slot).map(String::as_str)
    }

    /// The release the journal says is in production.
    pub fn production_release(&self) -> Option<&str> {
        self.slot_release(&SlotName::production())
    }

    /// Records that two slots exchanged their releases.
    pub fn swap(&mut self, a: &SlotName, b: &SlotName) {
        let ra = self.slots.remove(a);
        let rb = self.slots.remove(b);
        if let Some(r) = rb {
            self.slots.insert(a.clone(), r);
        }
        if let Some(r) = ra {
            self.slots.insert(b.clone(), r);
        }
    }

    /// The one `Merge` that turns the journal in `live` into this one, without a moment in which a reader
    /// could join a value from parts of two writes: every journal tag this journal no longer has (a
    /// continuation a shorter value does not need, a field now empty) is written empty in the same
    /// request; [`JournalTags::leftovers`] names them for a later clean-up. Claims and foreign tags are not
    /// touched.
    pub fn merge_from(&self, live: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut merge = BTreeMap::new();
        self.apply_to(&mut merge);
        for name in live.keys() {
            if is_journal_tag(name) && !merge.contains_key(name) {
                merge.insert(name.clone(), String::new());
            }
        }
        merge
    }

    /// The empty journal tags a [`JournalTags::merge_from`] left, to delete (only while still empty).
    pub fn leftovers(merge: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        merge
            .iter()
            .filter(|(_, v)| v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Whether a tag belongs to the journal (claims of the lock do not).
fn is_journal_tag(name: &str) -> bool {
    name.starts_with(TAG_PREFIX) && !name.starts_with(CLAIM_PREFIX)
}

/// A hook's outcome as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookRecord {
    /// Hook name.
    pub name: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// Exit code, when it ran to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The tail of its output (already masked).
    pub output: String,
    /// Whether its undo ran.
    pub undone: bool,
}

/// The full record written as a Kudu deployment record's message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRecord {
    /// Release identity.
    pub release: String,
    /// The release's display name (the build number).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_name: String,
    /// The SHA-256 of the package deployed (code apps), so the history can verify it when it comes back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_sha256: Option<String>,
    /// Where that package can be downloaded again, from the build record of the artifact deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<crate::history::ArtifactSource>,
    /// Phase reached.
    pub phase: String,
    /// Which release is in which slot.
    #[schemars(with = "BTreeMap<String, String>")]
    pub slots: BTreeMap<SlotName, String>,
    /// The image production ran before (containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_image: Option<String>,
    /// The last known-good release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_known_good: Option<String>,
    /// Hook results.
    #[serde(default)]
    pub hooks: Vec<HookRecord>,
    /// The setting and connection-string names the release's config owns, per slot (see
    /// [`JournalTags::owned`]); here whole even when the tags had no room for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<BTreeMap<String, Owned>>")]
    pub owned: Option<BTreeMap<SlotName, Owned>>,
}
