//! Site and slot routes: get, create (slot PUT), patch, delete, the lists, restart/start/stop and the
//! Tags API of a site or slot.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::lro::run_operation;
use super::route::Ctx;
use super::{create_slot_resource, not_found, site_json, slot_list};
use crate::server::json;
use crate::state::{PRODUCTION, now_rfc3339};
use crate::{Shared, lock};

/// `GET` a site or slot.
pub(super) async fn get_site(ctx: Ctx) -> Response {
    let Ctx {
        shared,
        name,
        rg,
        slot,
        ..
    } = ctx;

    let state = lock(&shared.state);
    match state
        .apps
        .get(&name)
        .and_then(|a| a.slot(&slot).map(|s| site_json(&shared, a, s)))
    {
        Some(v) => json(StatusCode::OK, &v),
        None => not_found("Microsoft.Web/sites", &name, &rg),
    }
}

/// `PUT` a slot: creates it (202 with the LRO headers) or updates it like a PATCH.
pub(super) async fn create_slot(ctx: Ctx) -> Response {
    let Ctx {
        shared,
        api_version,
        name,
        slot,
        body,
        ..
    } = ctx;

    create_slot_resource(&shared, &api_version, &name, &slot, &body)
}

/// `PATCH` (or `PUT` of production) a site or slot: tags and `properties.siteConfig`.
pub(super) async fn patch_site(ctx: Ctx) -> Response {
    let Ctx {
        shared,
        name,
        rg,
        slot,
        body,
        ..
    } = ctx;

    // Checked before the lock is taken and anything is written, so a refused request
    // leaves tags and siteConfig as they were (ARM validates the whole body first).
    let new_tags = match crate::tags::site_body_tags(&body, |v| {
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
    }) {
        Ok(t) => t,
        Err(refusal) => return refusal.response(),
    };
    let new_config = match super::site_config::checked(body.pointer("/properties/siteConfig")) {
        Ok(c) => c,
        Err(refusal) => return *refusal,
    };
    let v = {
        let mut state = lock(&shared.state);
        let Some(app) = state.apps.get_mut(&name) else {
            return not_found("Microsoft.Web/sites", &name, &rg);
        };
        let Some(s) = app.slot_mut(&slot) else {
            return not_found("Microsoft.Web/sites/slots", &slot, &rg);
        };
        if let Some(tags) = new_tags {
            s.tags = tags;
        }
        if let Some(cfg) = &new_config {
            super::config::merge(&mut s.site_config, cfg);
        }
        s.last_modified = now_rfc3339();
        let app = &state.apps[&name];
        app.slot(&slot)
            .map(|s| site_json(&shared, app, s))
            .unwrap_or_default()
    };
    json(StatusCode::OK, &v)
}

/// `DELETE` a slot (200 with no body; its process stops). Production is the site itself and is
/// never deleted through the slot API; a swap with preview involving the slot is abandoned.
pub(super) async fn delete_slot(ctx: Ctx) -> Response {
    let Ctx {
        shared, name, slot, ..
    } = ctx;

    if slot == PRODUCTION {
        return crate::server::error_json(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The production slot cannot be deleted. Delete the site instead.",
        );
    }
    let removed = lock(&shared.state).apps.get_mut(&name).and_then(|a| {
        if a.preview
            .as_ref()
            .is_some_and(|p| p.source == slot || p.target == slot)
        {
            a.preview = None;
        }
        a.slots.remove(&slot)
    });
    lock(&shared.metrics).forget(&name, &slot);
    if let Some(s) = removed
        && let Some(i) = &s.instance
    {
        i.stop();
    }
    StatusCode::OK.into_response()
}

/// `restart`, `start`, `stop` (200 when done).
async fn site_action(ctx: Ctx, op: &str) -> Response {
    let Ctx {
        shared, name, slot, ..
    } = ctx;

    let stopped = match op {
        "start" => Some(false),
        "stop" => Some(true),
        _ => None,
    };
    let (s2, n2, sl2) = (shared.clone(), name.clone(), slot.clone());
    let work = async move {
        if let Some(stopped) = stopped
            && let Some(s) = lock(&s2.state)
                .apps
                .get_mut(&n2)
                .and_then(|a| a.slot_mut(&sl2))
        {
            s.stopped = stopped;
        }
        crate::runtime::restart(&s2, &n2, &sl2);
        Ok(())
    };
    let op_name = match op {
        "start" => "StartSite",
        "stop" => "StopSite",
        _ => "RestartSite",
    };
    // Azure answers 200 once the slot is (re)started or stopped; `synchronous=true` on a
    // restart changes nothing here because the emulator's restart is already done by then.
    run_operation(&shared, &name, op_name, work).await
}

/// `POST restart`.
pub(super) async fn restart(ctx: Ctx) -> Response {
    site_action(ctx, "restart").await
}

/// `POST start`.
pub(super) async fn start(ctx: Ctx) -> Response {
    site_action(ctx, "start").await
}

/// `POST stop`.
pub(super) async fn stop(ctx: Ctx) -> Response {
    site_action(ctx, "stop").await
}

/// The Tags API of a site or slot (`providers/Microsoft.Resources/tags/default`).
pub(super) async fn tags(ctx: Ctx) -> Response {
    crate::tags::handle(&ctx.shared, &ctx.method, &ctx.body, &ctx.name, &ctx.slot)
}

/// `GET …/sites/{name}/slots`: the app's slots but production.
pub(super) async fn list_slots(ctx: Ctx) -> Response {
    slot_list(&ctx.shared, &ctx.name)
}

/// `GET …/resourceGroups/{rg}/providers/Microsoft.Web/sites`: the group's apps.
pub(super) async fn list_in_group(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let sub = params.get("sub").cloned().unwrap_or_default();
    let rg = params.get("rg").cloned().unwrap_or_default();
    if let Err(r) = super::check_scope(&shared, &sub, &rg) {
        return *r;
    }
    let state = lock(&shared.state);
    let value: Vec<serde_json::Value> = state
        .apps
        .values()
        .filter(|a| {
            a.subscription_id.eq_ignore_ascii_case(&sub)
                && a.resource_group.eq_ignore_ascii_case(&rg)
        })
        .filter_map(|a| a.slot(PRODUCTION).map(|s| site_json(&shared, a, s)))
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"value": value, "nextLink": null}),
    )
}
