//! ARM's tag limits on sites and slots (50 tags, 512-character names, 256-character values): a write
//! just over a limit is refused with ARM's 400 error and changes nothing; a write at the limit passes.

mod common;

use std::collections::BTreeMap;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const PATCH_SITE: &str = "?api-version=2022-03-01";

fn numbered_tags(count: usize) -> BTreeMap<String, String> {
    (0..count)
        .map(|i| (format!("tag{i:02}"), format!("value {i}")))
        .collect()
}

/// Sends `tags` (plus a siteConfig change that must not land when the tags are refused) to the
/// production site and returns the status and body.
async fn patch_tags(f: &Fixture, tags: &BTreeMap<String, String>) -> (u16, Value) {
    let r = f
        .arm_call(
            Method::PATCH,
            &f.site(PATCH_SITE),
            Some(json!({
                "tags": tags,
                "properties": {"siteConfig": {"healthCheckPath": "/changed-with-tags"}},
            })),
        )
        .await;
    let status = r.status().as_u16();
    (status, r.json().await.expect("json body"))
}

fn production_tags(f: &Fixture) -> BTreeMap<String, String> {
    f.emu
        .snapshot()
        .slot(APP, "production")
        .expect("production")
        .tags
        .clone()
}

fn health_check_path(f: &Fixture) -> Option<Value> {
    f.emu
        .snapshot()
        .slot(APP, "production")
        .expect("production")
        .site_config
        .get("healthCheckPath")
        .cloned()
}

/// Asserts a 400 with the ARM error code and a message that names the offending number or text.
fn assert_refused(status: u16, body: &Value, code: &str, message_part: &str) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains(message_part),
        "message {message:?} should contain {message_part:?}"
    );
}

#[tokio::test]
async fn fifty_tags_pass_and_fifty_one_are_refused_without_change() {
    let f = start().await;
    let before = production_tags(&f);
    let config_before = health_check_path(&f);

    let (status, body) = patch_tags(&f, &numbered_tags(51)).await;
    assert_refused(
        status,
        &body,
        "InvalidTags",
        "Requested tag count - '51'. Maximum number of tags allowed - '50'.",
    );
    assert_eq!(
        production_tags(&f),
        before,
        "a refused write changes no tag"
    );
    assert_eq!(
        health_check_path(&f),
        config_before,
        "a refused write changes nothing else in the body either"
    );

    let fifty = numbered_tags(50);
    let (status, body) = patch_tags(&f, &fifty).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tags"].as_object().map(|t| t.len()), Some(50));
    assert_eq!(production_tags(&f), fifty);
    assert_eq!(
        health_check_path(&f),
        Some(json!("/changed-with-tags")),
        "an accepted write applies the rest of the body"
    );

    // The limit is on what the resource is left with: replacing 50 tags by 50 others passes.
    let others: BTreeMap<String, String> = (0..50)
        .map(|i| (format!("other{i:02}"), "x".to_owned()))
        .collect();
    let (status, body) = patch_tags(&f, &others).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(production_tags(&f), others);
}

#[tokio::test]
async fn tag_names_of_512_characters_pass_and_513_are_refused() {
    let f = start().await;
    let before = production_tags(&f);

    let long_name = "n".repeat(513);
    let tags = BTreeMap::from([
        ("owner".to_owned(), "web-team".to_owned()),
        (long_name.clone(), "v".to_owned()),
    ]);
    let (status, body) = patch_tags(&f, &tags).await;
    assert_refused(status, &body, "InvalidTagNameLength", &long_name);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Maximum allowed length for tag name - '512' characters.")),
        "{body}"
    );
    assert_eq!(production_tags(&f), before);

    let name_at_limit = "n".repeat(512);
    let tags = BTreeMap::from([(name_at_limit.clone(), "v".to_owned())]);
    let (status, body) = patch_tags(&f, &tags).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(production_tags(&f), tags);
}

#[tokio::test]
async fn tag_values_of_256_characters_pass_and_257_are_refused() {
    let f = start().await;
    let before = production_tags(&f);

    let long_value = "v".repeat(257);
    let tags = BTreeMap::from([("journal".to_owned(), long_value.clone())]);
    let (status, body) = patch_tags(&f, &tags).await;
    assert_refused(status, &body, "InvalidTagValueLength", &long_value);
    assert!(
        body["error"]["message"].as_str().is_some_and(
            |m| m.contains("Maximum allowed length for tag value - '256' characters.")
        ),
        "{body}"
    );
    assert_eq!(production_tags(&f), before);

    // Characters, not bytes: 256 two-byte characters fit.
    let tags = BTreeMap::from([
        ("ascii".to_owned(), "v".repeat(256)),
        ("accented".to_owned(), "é".repeat(256)),
    ]);
    let (status, body) = patch_tags(&f, &tags).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(production_tags(&f), tags);

    // ARM counts UTF-16 code units: a character outside the BMP costs two.
    let tags = BTreeMap::from([("emoji".to_owned(), "🚀".repeat(129))]);
    let (status, body) = patch_tags(&f, &tags).await;
    assert_refused(status, &body, "InvalidTagValueLength", "'256' characters");
    let tags = BTreeMap::from([("emoji".to_owned(), "🚀".repeat(128))]);
    let (status, body) = patch_tags(&f, &tags).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(production_tags(&f), tags);
}

#[tokio::test]
async fn slot_writes_are_held_to_the_same_limits() {
    let f = start().await;
    let slot_url = |slot: &str| f.site(&format!("/slots/{slot}{PATCH_SITE}"));

    // Creating a slot with too many tags creates nothing.
    let r = f
        .arm_call(
            Method::PUT,
            &slot_url("canary"),
            Some(json!({"location": "East US", "tags": numbered_tags(51)})),
        )
        .await;
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("json");
    assert_refused(status, &body, "InvalidTags", "'51'");
    assert!(
        f.emu.snapshot().slot(APP, "canary").is_none(),
        "a refused create leaves no slot behind"
    );

    // An existing slot keeps its tags when a PATCH is refused.
    let staging_tags = || {
        f.emu
            .snapshot()
            .slot(APP, "staging")
            .expect("staging")
            .tags
            .clone()
    };
    let before = staging_tags();
    let r = f
        .arm_call(
            Method::PATCH,
            &slot_url("staging"),
            Some(json!({"tags": {"k": "v".repeat(257)}})),
        )
        .await;
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("json");
    assert_refused(status, &body, "InvalidTagValueLength", "'256' characters");
    assert_eq!(staging_tags(), before);

    let r = f
        .arm_call(
            Method::PATCH,
            &slot_url("staging"),
            Some(json!({"tags": numbered_tags(50)})),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(staging_tags(), numbered_tags(50));
}
