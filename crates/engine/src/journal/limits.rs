//! Azure Resource Manager's tag limits, as the journal meets them: values split over numbered
//! continuation tags, and the check (with advice) that a tag set fits before it is written.

use std::collections::BTreeMap;

use super::{
    JOURNAL_TAGS, TAG_HISTORY, TAG_LKG, TAG_LOCK, TAG_PREFIX, TAG_PREVIOUS_IMAGE,
    TAG_PREVIOUS_SETTINGS, TAG_RELEASE, TAG_SLOTS,
};
use crate::error::Error;

/// Most tags Azure Resource Manager allows on one resource (foreign tags included).
pub const MAX_TAGS: usize = 50;
/// Longest tag name Azure Resource Manager accepts, in characters (UTF-16 code units, as ARM counts).
pub const MAX_TAG_NAME_LEN: usize = 512;
/// Longest tag value Azure Resource Manager accepts, in characters (UTF-16 code units, as ARM counts).
pub const MAX_TAG_VALUE_LEN: usize = 256;

/// A length as ARM (.NET) measures it: a character outside the BMP counts twice, so a value that passes
/// here passes there whatever the script.
pub(super) fn arm_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The name of the `index`th continuation of a journal tag (`index` from 1).
pub(super) fn continuation_name(base: &str, index: usize) -> String {
    format!("{base}.{index}")
}

/// Splits a value into parts that each fit a tag value, on character boundaries. An empty value is one
/// empty part, so it is still written.
pub(super) fn split_value(value: &str) -> Vec<&str> {
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
pub(super) fn journal_base(name: &str) -> Option<&'static str> {
    JOURNAL_TAGS.into_iter().find(|base| {
        name == *base
            || name
                .strip_prefix(base)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
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
pub(super) fn journal_tag_advice(base: &str) -> &'static str {
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
