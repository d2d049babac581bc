//! ARM's Tags API at a resource's scope (`…/providers/Microsoft.Resources/tags/default`), as Azure serves it.
//!
//! Unlike a site PATCH, whose `tags` replace the whole set, `PATCH` here takes an `operation`: `Merge` adds
//! or updates the given tags and leaves the others alone, `Replace` replaces the set, `Delete` removes the
//! given names (only where the value matches, when one is given). Each request is applied whole under the
//! state lock, so two clients merging different tags at once both keep theirs, which is what the release
//! lock's claims rely on. The limits are ARM's (50 tags, names ≤ 512, values ≤ 256), checked on the set the
//! resource would be left with before anything is applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::Response;

use crate::arm::resource_id;
use crate::server::{error_json, json};
use crate::state::now_rfc3339;
use crate::{Shared, lock};

/// The operations of `PATCH …/tags/default`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Merge,
    Replace,
    Delete,
}

fn bad_request(message: &str) -> Response {
    error_json(StatusCode::BAD_REQUEST, "InvalidRequestContent", message)
}

/// The tags of a request body (`properties.tags`), values as text.
fn body_tags(body: &serde_json::Value) -> Result<BTreeMap<String, String>, Box<Response>> {
    let Some(tags) = body.pointer("/properties/tags") else {
        return Err(Box::new(bad_request(
            "The request content was invalid: 'properties.tags' is required.",
        )));
    };
    let Some(tags) = tags.as_object() else {
        return Err(Box::new(bad_request(
            "The request content was invalid: 'properties.tags' must be an object.",
        )));
    };
    Ok(tags
        .iter()
        .map(|(k, v)| {
            let text = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            (k.clone(), text)
        })
        .collect())
}

/// Applies `operation` to `current`; tag names compare case-insensitively, as ARM's do.
fn apply(
    operation: Operation,
    current: &BTreeMap<String, String>,
    given: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    match operation {
        Operation::Replace => given,
        Operation::Merge => {
            let mut out = current.clone();
            for (name, value) in given {
                out.retain(|k, _| !k.eq_ignore_ascii_case(&name));
                out.insert(name, value);
            }
            out
        }
        Operation::Delete => {
            let mut out = current.clone();
            out.retain(|k, v| {
                !given.iter().any(|(name, value)| {
                    k.eq_ignore_ascii_case(name) && (value.is_empty() || value == v)
                })
            });
            out
        }
    }
}

/// `GET`, `PUT` or `PATCH` of the tags resource of one site or slot.
pub(crate) fn handle(
    shared: &Arc<Shared>,
    method: &Method,
    body: &serde_json::Value,
    name: &str,
    slot: &str,
) -> Response {
    let operation = match *method {
        Method::GET => None,
        Method::PUT => Some(Operation::Replace),
        Method::PATCH => match body.get("operation").and_then(|o| o.as_str()) {
            Some(o) if o.eq_ignore_ascii_case("merge") => Some(Operation::Merge),
            Some(o) if o.eq_ignore_ascii_case("replace") => Some(Operation::Replace),
            Some(o) if o.eq_ignore_ascii_case("delete") => Some(Operation::Delete),
            _ => {
                return bad_request(
                    "The request content was invalid: 'operation' must be one of Merge, Replace or Delete.",
                );
            }
        },
        _ => {
            return error_json(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The requested method is not allowed on the tags resource.",
            );
        }
    };
    let given = match operation {
        Some(_) => match body_tags(body) {
            Ok(t) => Some(t),
            Err(r) => return *r,
        },
        None => None,
    };
    let mut state = lock(&shared.state);
    let Some(app) = state.apps.get_mut(name) else {
        return error_json(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The Resource 'Microsoft.Web/sites/{name}' was not found."),
        );
    };
    let id = resource_id(app, slot);
    let Some(site) = app.slot_mut(slot) else {
        return error_json(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The Resource 'Microsoft.Web/sites/{name}/slots/{slot}' was not found."),
        );
    };
    if let (Some(operation), Some(given)) = (operation, given) {
        let next = apply(operation, &site.tags, given);
        if let Err(TagRefusal { code, message }) = check_tag_limits(&next) {
            return error_json(StatusCode::BAD_REQUEST, code, &message);
        }
        site.tags = next;
        site.last_modified = now_rfc3339();
    }
    json(
        StatusCode::OK,
        &serde_json::json!({
            "id": format!("{id}/providers/Microsoft.Resources/tags/default"),
            "name": "default",
            "type": "Microsoft.Resources/tags",
            "properties": { "tags": site.tags },
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn merge_keeps_what_it_is_not_given() {
        let current = tags(&[("a", "1"), ("B", "2")]);
        let out = apply(Operation::Merge, &current, tags(&[("b", "3"), ("c", "4")]));
        assert_eq!(out, tags(&[("a", "1"), ("b", "3"), ("c", "4")]));
    }

    #[test]
    fn delete_removes_names_and_only_matching_values() {
        let current = tags(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let out = apply(
            Operation::Delete,
            &current,
            tags(&[("A", ""), ("b", "other")]),
        );
        assert_eq!(out, tags(&[("b", "2"), ("c", "3")]));
        let out = apply(Operation::Delete, &current, tags(&[("b", "2")]));
        assert_eq!(out, tags(&[("a", "1"), ("c", "3")]));
    }

    #[test]
    fn replace_replaces() {
        let current = tags(&[("a", "1")]);
        assert_eq!(
            apply(Operation::Replace, &current, tags(&[("z", "9")])),
            tags(&[("z", "9")])
        );
    }
}

// Azure Resource Manager's limits on a resource's tags. Lengths are counted as ARM (.NET) counts
// them, in UTF-16 code units, so a character outside the BMP costs two.
/// Most tags one resource may carry.
const MAX_TAGS: usize = 50;
/// Longest tag name.
const MAX_TAG_NAME_LEN: usize = 512;
/// Longest tag value.
const MAX_TAG_VALUE_LEN: usize = 256;

/// The tag set a site/slot PUT or PATCH body asks for (`None` when it has no `tags`), refused with
/// ARM's 400 errors when it breaks a tag limit. The body's `tags` replace the resource's tags, so the
/// set checked is exactly the set the resource would be left with.
pub(crate) fn site_body_tags(
    body: &serde_json::Value,
    value_text: impl Fn(&serde_json::Value) -> String,
) -> Result<Option<BTreeMap<String, String>>, TagRefusal> {
    let Some(tags) = body.get("tags").and_then(|t| t.as_object()) else {
        return Ok(None);
    };
    let tags: BTreeMap<String, String> = tags
        .iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    check_tag_limits(&tags)?;
    Ok(Some(tags))
}

/// A tag write ARM refuses: its error code and message (always a 400).
#[derive(Debug)]
pub(crate) struct TagRefusal {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl TagRefusal {
    pub(crate) fn response(&self) -> Response {
        error_json(StatusCode::BAD_REQUEST, self.code, &self.message)
    }
}

/// ARM's own codes and wording for each broken limit, so clients see what real Azure would say.
pub(crate) fn check_tag_limits(tags: &BTreeMap<String, String>) -> Result<(), TagRefusal> {
    if tags.len() > MAX_TAGS {
        return Err(TagRefusal {
            code: "InvalidTags",
            message: format!(
                "Too many tags specified. Requested tag count - '{}'. Maximum number of tags allowed - '{MAX_TAGS}'.",
                tags.len()
            ),
        });
    }
    let utf16_len = |s: &str| s.encode_utf16().count();
    if let Some(name) = tags.keys().find(|k| utf16_len(k) > MAX_TAG_NAME_LEN) {
        return Err(TagRefusal {
            code: "InvalidTagNameLength",
            message: format!(
                "Tag name too large.  Following tag name '{name}' exceeded the maximum length. Maximum allowed length for tag name - '{MAX_TAG_NAME_LEN}' characters."
            ),
        });
    }
    if let Some(value) = tags.values().find(|v| utf16_len(v) > MAX_TAG_VALUE_LEN) {
        return Err(TagRefusal {
            code: "InvalidTagValueLength",
            message: format!(
                "Tag value too large.  Following tag value '{value}' exceeded the maximum length. Maximum allowed length for tag value - '{MAX_TAG_VALUE_LEN}' characters."
            ),
        });
    }
    Ok(())
}
