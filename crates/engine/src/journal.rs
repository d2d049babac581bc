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
/// Every tag the journal writes, each possibly followed by continuation tags.
const JOURNAL_TAGS: [&str; 9] = [
    TAG_RELEASE,
    TAG_PHASE,
    TAG_LKG,
    TAG_SLOTS,
    TAG_PREVIOUS_IMAGE,
    TAG_LOCK,
    TAG_PREVIOUS_SETTINGS,
    TAG_HISTORY,
    TAG_OWNED,
];

/// Most tags Azure Resource Manager allows on one resource (foreign tags included).
pub const MAX_TAGS: usize = 50;
/// Longest tag name Azure Resource Manager accepts, in characters (UTF-16 code units, as ARM counts).
pub const MAX_TAG_NAME_LEN: usize = 512;
/// Longest tag value Azure Resource Manager accepts, in characters (UTF-16 code units, as ARM counts).
pub const MAX_TAG_VALUE_LEN: usize = 256;

/// A length as ARM (.NET) measures it: a character outside the BMP counts twice, so a value that passes
/// here passes there whatever the script.
fn arm_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The name of the `index`th continuation of a journal tag (`index` from 1).
fn continuation_name(base: &str, index: usize) -> String {
    format!("{base}.{index}")
}

/// Splits a value into parts that each fit a tag value, on character boundaries. An empty value is one
/// empty part, so it is still written.
fn split_value(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut units = 0;
    for (i, c) in value.char_indices() {
        if units + c.len_utf16() > MAX_TAG_VALUE_LEN {
            parts.push(&value[start..i]);
            start = i;
            units = 0;
        }
        units += c.len_utf16();
    }
    parts.push(&value[start..]);
    parts
}

/// Writes a value under `base` and as many continuation tags as it needs.
pub(crate) fn put_split(tags: &mut BTreeMap<String, String>, base: &str, value: &str) {
    let mut parts = split_value(value).into_iter();
    tags.insert(base.to_owned(), parts.next().unwrap_or_default().to_owned());
    for (i, part) in parts.enumerate() {
        tags.insert(continuation_name(base, i + 1), part.to_owned());
    }
}

/// Reads a value written by [`put_split`]: `base` followed by its continuations up to the first gap.
pub(crate) fn get_split(tags: &BTreeMap<String, String>, base: &str) -> Option<String> {
    let mut value = tags.get(base)?.clone();
    for part in (1..).map_while(|i| tags.get(&continuation_name(base, i))) {
        value.push_str(part);
    }
    Some(value)
}

/// The journal tag a tag name belongs to (itself or one of its continuations), if any.
fn journal_base(name: &str) -> Option<&'static str> {
    JOURNAL_TAGS.into_iter().find(|base| {
        name == *base
            || name
                .strip_prefix(base)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

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
    pub const ALL: [Phase; 9] = [
        Phase::Staging,
        Phase::Deployed,
        Phase::Staged,
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

/// Checks a tag set Slot Release is about to write on the site against Azure Resource Manager's limits
/// ([`MAX_TAGS`], [`MAX_TAG_NAME_LEN`], [`MAX_TAG_VALUE_LEN`]); the first limit broken is reported, the tag
/// count first.
pub fn check_tag_limits(tags: &BTreeMap<String, String>) -> Result<(), Error> {
    if tags.len() > MAX_TAGS {
        let mut per_journal_tag: BTreeMap<&str, usize> = BTreeMap::new();
        let mut journal = 0;
        for name in tags.keys().filter(|k| k.starts_with(TAG_PREFIX)) {
            journal += 1;
            if let Some(base) = journal_base(name) {
                *per_journal_tag.entry(base).or_default() += 1;
            }
        }
        let largest_journal_tag = per_journal_tag
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .max_by_key(|(_, n)| *n)
            .map(|(base, n)| (base.to_owned(), n));
        return Err(Error::TooManyTags {
            count: tags.len(),
            journal,
            foreign: tags.len() - journal,
            largest_journal_tag,
        });
    }
    if let Some(name) = tags.keys().find(|k| arm_len(k) > MAX_TAG_NAME_LEN) {
        return Err(Error::TagNameTooLong {
            name: name.clone(),
            len: arm_len(name),
        });
    }
    if let Some((name, value)) = tags.iter().find(|(_, v)| arm_len(v) > MAX_TAG_VALUE_LEN) {
        return Err(Error::TagValueTooLong {
            name: name.clone(),
            len: arm_len(value),
        });
    }
    Ok(())
}

pub(crate) fn too_many_tags_message(
    count: usize,
    journal: usize,
    foreign: usize,
    largest: Option<&(String, usize)>,
) -> String {
    let excess = count.saturating_sub(MAX_TAGS);
    let mut remedies = Vec::new();
    if foreign >= excess {
        remedies.push(format!(
            "remove at least {excess} of the other tags from the site"
        ));
    } else if foreign > 0 {
        remedies.push(format!(
            "remove other tags from the site (all {foreign} are not enough on their own)"
        ));
    }
    if let Some((base, n)) = largest {
        remedies.push(format!(
            "shorten what the journal keeps in {base}, which takes {n} tags: {}",
            journal_tag_advice(base)
        ));
    }
    if remedies.is_empty() {
        remedies.push("report this as a bug in Slot Release's journal".to_owned());
    }
    format!(
        "the site would carry {count} tags, but Azure allows at most {MAX_TAGS} on a resource: \
         {journal} hold Slot Release's journal and {foreign} are other tags on the site; {}",
        remedies.join("; or ")
    )
}

/// What a user can change to shrink one journal tag.
fn journal_tag_advice(base: &str) -> &'static str {
    match base {
        TAG_PREVIOUS_SETTINGS => {
            "have the release change fewer app settings in production, or shorter ones (production's previous values are kept for rollback)"
        }
        TAG_SLOTS | TAG_RELEASE | TAG_LKG => "use shorter release ids or fewer slots",
        TAG_PREVIOUS_IMAGE => "use a shorter image reference",
        TAG_HISTORY => {
            "use shorter image references and release ids (the history keeps the last 10 releases)"
        }
        TAG_LOCK => "remove the tag: it is a lock written by an older version of Slot Release",
        _ => "keep its values shorter",
    }
}

pub(crate) fn value_too_long_advice(name: &str) -> String {
    if name.starts_with(TAG_PREFIX) {
        "the journal splits its values to fit, so this is a bug in Slot Release; please report it"
            .into()
    } else {
        "shorten that tag's value on the site, or remove the tag".into()
    }
}

/// A name short enough to quote in a message (a 500-character tag name helps nobody).
pub(crate) fn abbreviate(name: &str) -> String {
    const KEEP: usize = 64;
    match name.char_indices().nth(KEEP) {
        Some((i, _)) => format!("{}…", &name[..i]),
        None => name.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sn(name: &str) -> SlotName {
        SlotName::new(name).unwrap()
    }

    #[test]
    fn tags_round_trip_and_keep_foreign_tags() {
        let mut journal = JournalTags {
            release: Some("20261122.4".into()),
            phase: Some(Phase::Swapping),
            last_known_good: Some("20261121.1".into()),
            previous_image: Some("contoso.azurecr.io/web:1".into()),
            ..JournalTags::default()
        };
        journal.slots.insert(sn("production"), "20261121.1".into());
        journal.slots.insert(sn("staging"), "20261122.4".into());
        journal
            .previous_settings
            .insert("RELEASE_VERSION".into(), Some("20261121.1".into()));
        journal.previous_settings.insert("NEW_FLAG".into(), None);
        let mut tags = BTreeMap::from([("owner".to_owned(), "web-team".to_owned())]);
        journal.apply_to(&mut tags);
        assert_eq!(tags["owner"], "web-team");
        assert_eq!(
            tags["slotrelease.slots"],
            "production=20261121.1,staging=20261122.4"
        );
        assert_eq!(JournalTags::from_tags(&tags).unwrap(), journal);
    }

    #[test]
    fn swap_exchanges_slot_releases() {
        let mut journal = JournalTags::default();
        journal.slots.insert(sn("production"), "a".into());
        journal.slots.insert(sn("staging"), "b".into());
        journal.swap(&sn("staging"), &sn("production"));
        assert_eq!(journal.slot_release(&sn("production")), Some("b"));
        assert_eq!(journal.slot_release(&sn("staging")), Some("a"));
    }

    #[test]
    fn every_phase_parses_back() {
        for phase in Phase::ALL {
            assert_eq!(Phase::parse(phase.as_str()), Some(phase));
        }
    }

    fn assert_within_value_limit(tags: &BTreeMap<String, String>) {
        for (name, value) in tags {
            assert!(
                value.encode_utf16().count() <= MAX_TAG_VALUE_LEN,
                "{name} has a value of {} UTF-16 units",
                value.encode_utf16().count()
            );
            assert!(value.chars().count() <= MAX_TAG_VALUE_LEN);
        }
    }

    fn journal_tag_names(tags: &BTreeMap<String, String>) -> Vec<&str> {
        tags.keys()
            .map(String::as_str)
            .filter(|k| k.starts_with(TAG_PREFIX))
            .collect()
    }

    /// Settings whose JSON is a few tags long, in several scripts (two-byte, three-byte, four-byte).
    fn long_previous_settings() -> BTreeMap<String, Option<String>> {
        let mut settings = BTreeMap::new();
        for i in 0..12 {
            settings.insert(
                format!("SETTING_{i:02}"),
                Some(format!("Grüße aus Zürich – 東京の設定 🚀 número {i}")),
            );
        }
        settings.insert("REMOVED_BY_RELEASE".into(), None);
        settings.insert("ÜNICODE_NAME_日本".into(), Some("🚀".repeat(150)));
        settings
    }

    #[test]
    fn long_non_ascii_previous_settings_round_trip_in_continuation_tags() {
        let journal = JournalTags {
            release: Some("20261122.4".into()),
            phase: Some(Phase::Swapped),
            previous_settings: long_previous_settings(),
            ..JournalTags::default()
        };
        let json = serde_json::to_string(&journal.previous_settings).unwrap();
        assert!(json.encode_utf16().count() > 3 * MAX_TAG_VALUE_LEN);
        let mut tags = BTreeMap::from([("owner".to_owned(), "web-team".to_owned())]);
        journal.apply_to(&mut tags);
        assert_within_value_limit(&tags);
        assert!(tags.contains_key("slotrelease.previousSettings.1"));
        assert!(tags.contains_key("slotrelease.previousSettings.3"));
        assert_eq!(tags["owner"], "web-team");
        assert_eq!(JournalTags::from_tags(&tags).unwrap(), journal);
        // Writing back what was read changes nothing.
        let mut again = tags.clone();
        JournalTags::from_tags(&tags).unwrap().apply_to(&mut again);
        assert_eq!(again, tags);
    }

    #[test]
    fn values_split_on_character_boundaries_by_utf16_length() {
        assert_eq!(split_value(""), vec![""]);
        assert_eq!(split_value(&"a".repeat(256)).len(), 1);
        let ascii = "a".repeat(257);
        let parts = split_value(&ascii);
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [256, 1]);
        let accented = "é".repeat(300);
        let parts = split_value(&accented);
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            [256, 44]
        );
        assert_eq!(parts.concat(), accented);
        // Outside the BMP a character is two UTF-16 units: 128 fit in one tag, never half of one.
        let rockets = "🚀".repeat(200);
        let parts = split_value(&rockets);
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            [128, 72]
        );
        let mixed = format!("a{}", "🚀".repeat(200));
        let parts = split_value(&mixed);
        assert_eq!(parts[0].encode_utf16().count(), 255);
        assert_eq!(parts.concat(), mixed);
    }

    #[test]
    fn shrinking_a_value_removes_its_stale_continuations_and_keeps_foreign_tags() {
        let mut journal = JournalTags {
            release: Some("r1".into()),
            previous_settings: long_previous_settings(),
            ..JournalTags::default()
        };
        let mut tags = BTreeMap::from([
            ("owner".to_owned(), "web-team".to_owned()),
            ("previousSettings.1".to_owned(), "not ours".to_owned()),
            ("costCenter".to_owned(), "x".repeat(256)),
        ]);
        journal.apply_to(&mut tags);
        let long_count = journal_tag_names(&tags).len();
        assert!(long_count >= 5, "{:?}", journal_tag_names(&tags));

        journal.previous_settings = BTreeMap::from([("GREETING".to_owned(), Some("hi".into()))]);
        journal.apply_to(&mut tags);
        assert_eq!(
            journal_tag_names(&tags),
            ["slotrelease.previousSettings", "slotrelease.release"]
        );
        assert_eq!(JournalTags::from_tags(&tags).unwrap(), journal);

        journal.previous_settings.clear();
        journal.apply_to(&mut tags);
        assert_eq!(journal_tag_names(&tags), ["slotrelease.release"]);
        assert_eq!(tags["owner"], "web-team");
        assert_eq!(tags["previousSettings.1"], "not ours");
        assert_eq!(tags["costCenter"], "x".repeat(256));
        assert_eq!(tags.len(), 4);
    }

    #[test]
    fn long_slots_lock_and_image_are_split_too() {
        let mut journal = JournalTags {
            release: Some(format!("release-{}", "9".repeat(300))),
            previous_image: Some(format!(
                "contoso.azurecr.io/{}/web@sha256:{}",
                "team/".repeat(40),
                "ab".repeat(32)
            )),
            ..JournalTags::default()
        };
        for slot in ["production", "staging", "canary", "qa"] {
            journal
                .slots
                .insert(sn(slot), format!("{slot}-{}", "2026.11.22-".repeat(15)));
        }
        let mut tags = BTreeMap::new();
        journal.apply_to(&mut tags);
        assert_within_value_limit(&tags);
        for base in [TAG_RELEASE, TAG_SLOTS, TAG_PREVIOUS_IMAGE] {
            assert!(
                tags.contains_key(&format!("{base}.1")),
                "{base} needs a continuation"
            );
        }
        assert_eq!(JournalTags::from_tags(&tags).unwrap(), journal);
        check_tag_limits(&tags).unwrap();
    }

    #[test]
    fn a_slot_name_the_journal_never_writes_is_refused_naming_the_tag() {
        // Tags are live state anyone can edit: `stag ing` cannot be a slot, so which release is where is
        // unknown and the journal is not read at all.
        let tags = BTreeMap::from([(TAG_SLOTS.to_owned(), "production=r1,stag ing=r2".to_owned())]);
        let err = JournalTags::from_tags(&tags).unwrap_err();
        assert!(
            matches!(err, Error::JournalSlotInvalid { tag: TAG_SLOTS, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("slotrelease.slots"), "{err}");
        let cause = std::error::Error::source(&err).map(ToString::to_string);
        assert!(cause.is_some_and(|c| c.contains("`stag ing`")), "{err:?}");
    }

    #[test]
    fn a_value_written_before_continuations_existed_still_reads() {
        let tags = BTreeMap::from([
            ("slotrelease.release".to_owned(), "r7".to_owned()),
            ("slotrelease.phase".to_owned(), "released".to_owned()),
            (
                "slotrelease.previousSettings".to_owned(),
                r#"{"A":"1","B":null}"#.to_owned(),
            ),
        ]);
        let journal = JournalTags::from_tags(&tags).unwrap();
        assert_eq!(journal.release.as_deref(), Some("r7"));
        assert_eq!(journal.phase, Some(Phase::Released));
        assert_eq!(
            journal.previous_settings,
            BTreeMap::from([
                ("A".to_owned(), Some("1".to_owned())),
                ("B".to_owned(), None)
            ])
        );
    }

    fn foreign_tags(count: usize) -> BTreeMap<String, String> {
        (0..count)
            .map(|i| (format!("team.tag{i:02}"), format!("value {i}")))
            .collect()
    }

    #[test]
    fn check_tag_limits_refuses_51_tags_and_says_what_to_remove() {
        check_tag_limits(&foreign_tags(50)).unwrap();
        let err = check_tag_limits(&foreign_tags(51)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooManyTags {
                    count: 51,
                    journal: 0,
                    foreign: 51,
                    largest_journal_tag: None,
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("remove at least 1 of the other tags from the site"),
            "{err}"
        );

        // Foreign tags + the release and phase + previous settings over several tags = 51.
        let journal = JournalTags {
            release: Some("r1".into()),
            phase: Some(Phase::Staging),
            previous_settings: long_previous_settings(),
            ..JournalTags::default()
        };
        let mut ours = BTreeMap::new();
        journal.apply_to(&mut ours);
        let settings_tags = ours.len() - 2;
        assert!(settings_tags >= 3, "{ours:?}");
        let site = foreign_tags(MAX_TAGS + 1 - ours.len());
        let mut tags = site.clone();
        journal.apply_to(&mut tags);
        assert_eq!(tags.len(), 51);
        let err = journal.check_fits(&site).unwrap_err();
        assert_eq!(
            err.to_string(),
            check_tag_limits(&tags).unwrap_err().to_string()
        );
        let Error::TooManyTags {
            count,
            journal: journal_count,
            foreign,
            largest_journal_tag,
        } = &err
        else {
            panic!("expected too many tags, got {err:?}");
        };
        assert_eq!(
            (
                *count,
                *journal_count,
                *foreign,
                largest_journal_tag.clone()
            ),
            (
                51,
                ours.len(),
                site.len(),
                Some((TAG_PREVIOUS_SETTINGS.to_owned(), settings_tags))
            )
        );
        let message = err.to_string();
        assert!(message.contains("would carry 51 tags"), "{message}");
        assert!(
            message.contains(&format!(
                "{} hold Slot Release's journal and {} are other tags",
                ours.len(),
                site.len()
            )),
            "{message}"
        );
        assert!(
            message.contains("remove at least 1 of the other tags from the site"),
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "slotrelease.previousSettings, which takes {settings_tags} tags"
            )),
            "{message}"
        );
        assert!(message.contains("fewer app settings"), "{message}");

        // With fewer foreign tags the same journal fits.
        journal.check_fits(&foreign_tags(site.len() - 1)).unwrap();
    }

    #[test]
    fn check_tag_limits_refuses_long_names_and_values_and_names_the_tag() {
        let at_limit = BTreeMap::from([
            ("n".repeat(MAX_TAG_NAME_LEN), "v".repeat(MAX_TAG_VALUE_LEN)),
            ("rockets".to_owned(), "🚀".repeat(128)),
        ]);
        check_tag_limits(&at_limit).unwrap();

        let long_name = "n".repeat(MAX_TAG_NAME_LEN + 1);
        let err =
            check_tag_limits(&BTreeMap::from([(long_name.clone(), "v".to_owned())])).unwrap_err();
        assert!(
            matches!(&err, Error::TagNameTooLong { name, len: 513 } if *name == long_name),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("513 characters"), "{message}");
        assert!(message.contains("rename or remove that tag"), "{message}");
        assert!(message.len() < 300, "the name is abbreviated: {message}");

        let err = check_tag_limits(&BTreeMap::from([(
            "costCenter".to_owned(),
            "🚀".repeat(129),
        )]))
        .unwrap_err();
        assert!(
            matches!(&err, Error::TagValueTooLong { name, len: 258 } if name == "costCenter"),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("'costCenter'"), "{message}");
        assert!(message.contains("shorten that tag's value"), "{message}");

        let err = check_tag_limits(&BTreeMap::from([(TAG_LOCK.to_owned(), "x".repeat(257))]))
            .unwrap_err();
        assert!(err.to_string().contains("bug in Slot Release"), "{err}");
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn journal() -> impl Strategy<Value = JournalTags> {
            let text = || proptest::option::of("\\PC{1,300}");
            (
                (text(), text(), text()),
                proptest::option::of(proptest::sample::select(Phase::ALL.to_vec())),
                proptest::collection::btree_map(
                    "[a-z]([a-z0-9-]{0,19}[a-z0-9])?".prop_map(|name| sn(&name)),
                    // Identities may hold the slots tag's own separators: they are escaped.
                    "[A-Za-z0-9._+,=;% -]{1,120}",
                    0..6,
                ),
                proptest::collection::btree_map(
                    "\\PC{1,40}",
                    proptest::option::of("\\PC{0,200}"),
                    0..12,
                ),
            )
                .prop_map(
                    |((release, last_known_good, previous_image), phase, slots, settings)| {
                        JournalTags {
                            release,
                            phase,
                            last_known_good,
                            slots,
                            previous_image,
                            previous_settings: settings,
                            history: Vec::new(),
                            owned: None,
                        }
                    },
                )
        }

        proptest! {
            #[test]
            fn any_journal_round_trips_within_tag_value_limits(journal in journal()) {
                let mut tags = BTreeMap::from([("owner".to_owned(), "web-team".to_owned())]);
                journal.apply_to(&mut tags);
                for (name, value) in &tags {
                    prop_assert!(value.encode_utf16().count() <= MAX_TAG_VALUE_LEN, "{}", name);
                    prop_assert!(name.encode_utf16().count() <= MAX_TAG_NAME_LEN);
                }
                prop_assert_eq!(&tags["owner"], "web-team");
                prop_assert_eq!(JournalTags::from_tags(&tags).unwrap(), journal.clone());

                // A merge of an emptier journal over it reads back as that journal at once, and after
                // its leftovers are deleted leaves exactly that journal's tags.
                let smaller = JournalTags { previous_settings: BTreeMap::new(), ..journal.clone() };
                let merge = smaller.merge_from(&tags);
                let mut merged = tags.clone();
                merged.extend(merge.clone());
                prop_assert_eq!(JournalTags::from_tags(&merged).unwrap(), smaller.clone());
                merged.retain(|k, _| !JournalTags::leftovers(&merge).contains_key(k));
                let mut fresh = BTreeMap::from([("owner".to_owned(), "web-team".to_owned())]);
                smaller.apply_to(&mut fresh);
                prop_assert_eq!(&merged, &fresh);
                // Rewriting an emptier journal over it leaves no stale continuation behind.
                smaller.apply_to(&mut tags);
                let mut fresh = BTreeMap::from([("owner".to_owned(), "web-team".to_owned())]);
                smaller.apply_to(&mut fresh);
                prop_assert_eq!(tags, fresh);
            }
        }
    }
}
