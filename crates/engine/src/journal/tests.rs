//! The journal's tags: round trips, continuation tags, limits and the advice when a tag set does not fit.

use super::limits::split_value;
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
    let err = check_tag_limits(&BTreeMap::from([(long_name.clone(), "v".to_owned())])).unwrap_err();
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

    let err =
        check_tag_limits(&BTreeMap::from([(TAG_LOCK.to_owned(), "x".repeat(257))])).unwrap_err();
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
            // An app command's holder description can be long: it is split like any journal value.
            proptest::option::of(("[a-z]{1,20}", "\\PC{0,300}", 0i64..4_000_000_000)),
            // A canary's rules before it: any percent ARM could hold reads back as the same number.
            proptest::option::of((
                0u8..100,
                proptest::collection::vec(("[a-z]{1,20}", "[a-z0-9.-]{1,60}", 0.0f64..100.0), 0..4),
            )),
        )
            .prop_map(
                |(
                    (release, last_known_good, previous_image),
                    phase,
                    slots,
                    settings,
                    command,
                    canary,
                )| {
                    JournalTags {
                        release,
                        phase,
                        last_known_good,
                        slots,
                        previous_image,
                        previous_settings: settings,
                        history: Vec::new(),
                        owned: None,
                        command: command.map(|(slot, who, at_unix)| {
                            Box::new(CommandEntry {
                                command: "stop".to_owned(),
                                slot: sn(&slot),
                                at_unix,
                                run: "20261205.3".to_owned(),
                                who,
                                outcome: "succeeded".to_owned(),
                            })
                        }),
                        canary: canary.map(|(percent, rules)| {
                            Box::new(CanaryRecord {
                                percent,
                                before: rules
                                    .into_iter()
                                    .map(|(name, host, percent)| crate::state::RoutingRule {
                                        name,
                                        host,
                                        percent,
                                        other: serde_json::Map::new(),
                                    })
                                    .collect(),
                            })
                        }),
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
