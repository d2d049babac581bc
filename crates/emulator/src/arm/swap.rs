//! Swap routes: `slotsswap` (long-running), swap with preview (`applySlotConfig`, `resetSlotConfig`),
//! `slotsdiffs`, and the swap itself with Azure's semantics (contract §4).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;

use super::lro::{OpError, run_operation, start_operation};
use super::route::Ctx;
use super::site_config::swapped_keys;
use super::{not_found, resource_id};
use crate::fault::Fault;
use crate::platform::ConnectionString;
use crate::server::{error_json, json};
use crate::state::{App, Preview, now_rfc3339};
use crate::{Shared, lock};

/// `slotsswap` (202, long-running) or `applySlotConfig` (200 when done).
async fn swap_or_apply(ctx: Ctx, op: &str) -> Response {
    let Ctx {
        shared,
        api_version,
        name,
        rg,
        slot,
        body,
        ..
    } = ctx;

    let Some(target) = body
        .get("targetSlot")
        .and_then(|t| t.as_str())
        .map(str::to_ascii_lowercase)
    else {
        return error_json(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The parameter targetSlot has an invalid value.",
        );
    };
    if target == slot {
        return error_json(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Cannot swap slot '{slot}' with itself."),
        );
    }
    let target_exists = lock(&shared.state)
        .apps
        .get(&name)
        .is_some_and(|a| a.slot(&target).is_some());
    if !target_exists {
        return not_found(
            "Microsoft.Web/sites/slots",
            &format!("{name}/{target}"),
            &rg,
        );
    }
    let apply_only = op == "applyslotconfig";
    let op_name = if apply_only {
        "ApplySlotConfig"
    } else {
        "SwapSiteSlots"
    };
    let (s2, n2, src) = (shared.clone(), name.clone(), slot.clone());
    let work = async move { swap(s2, n2, src, target, apply_only).await };
    if apply_only {
        // Phase 1 of swap with preview answers 200 when done (`ApplySlotConfig.json`).
        run_operation(&shared, &name, op_name, work).await
    } else {
        start_operation(&shared, &api_version, (&name, &slot), op_name, work)
    }
}

/// `POST slotsswap`.
pub(super) async fn slotsswap(ctx: Ctx) -> Response {
    swap_or_apply(ctx, "slotsswap").await
}

/// `POST applySlotConfig`.
pub(super) async fn apply_slot_config(ctx: Ctx) -> Response {
    swap_or_apply(ctx, "applyslotconfig").await
}

/// `POST resetSlotConfig`: undoes phase 1 of a swap with preview (200 when done).
pub(super) async fn reset_slot_config(ctx: Ctx) -> Response {
    let Ctx { shared, name, .. } = ctx;

    let (s2, n2) = (shared.clone(), name.clone());
    run_operation(&shared, &name, "ResetSlotConfig", async move {
        reset_preview(&s2, &n2);
        Ok(())
    })
    .await
}

/// Non-sticky entries of `from` plus sticky entries of `sticky_from` (`sticky` sees each entry's
/// own map, as the default-sticky rule of app settings reads the slot's override setting).
fn combine_by<V: Clone>(
    from: &BTreeMap<String, V>,
    sticky_from: &BTreeMap<String, V>,
    sticky: impl Fn(&str, &BTreeMap<String, V>) -> bool,
) -> BTreeMap<String, V> {
    let mut out: BTreeMap<String, V> = from
        .iter()
        .filter(|(k, _)| !sticky(k, from))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in sticky_from {
        if sticky(k, sticky_from) {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// App settings: non-sticky ones of `from`, sticky ones of `sticky_from`.
fn combine(
    app: &App,
    from: &BTreeMap<String, String>,
    sticky_from: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    combine_by(from, sticky_from, |k, m| app.is_sticky(k, m))
}

/// Connection strings: non-sticky ones of `from`, sticky ones of `sticky_from`.
fn combine_cs(
    app: &App,
    from: &BTreeMap<String, ConnectionString>,
    sticky_from: &BTreeMap<String, ConnectionString>,
) -> BTreeMap<String, ConnectionString> {
    combine_by(from, sticky_from, |k, _| app.is_sticky_connection_string(k))
}

/// A slot's settings and connection strings, as phase 1 found them.
type Original = (BTreeMap<String, String>, BTreeMap<String, ConnectionString>);

fn swap_failed(app: &str, slot: &str, detail: &str) -> OpError {
    OpError::new(
        400,
        "BadRequest",
        format!(
            "Cannot swap slots for site '{app}' because the application initialization in '{slot}' slot either took too long or failed. Please check application initialization configuration and consider using 'WEBSITE_SWAP_WARMUP_PING_PATH' and 'WEBSITE_SWAP_WARMUP_PING_STATUSES' application settings. Details: {detail}"
        ),
    )
}

/// Restores the source slot's settings and connection strings after a failed phase 1 and
/// restarts it.
fn revert_source(shared: &Arc<Shared>, app: &str, source: &str, original: Original) {
    if let Some(s) = lock(&shared.state)
        .apps
        .get_mut(app)
        .and_then(|a| a.slot_mut(source))
    {
        (s.app_settings, s.connection_strings) = original;
    }
    crate::runtime::restart(shared, app, source);
}

/// The swap: phase 1 (target's sticky settings applied to the source, source restarted and warmed
/// up; aborted with both slots unchanged on failure), then, unless only applying, phase 2 (content,
/// non-sticky settings and stack exchanged; sticky settings stay; the warmed process now serves
/// the target; the source restarts with the old target's content).
async fn swap(
    shared: Arc<Shared>,
    app_name: String,
    source: String,
    target: String,
    apply_only: bool,
) -> Result<(), OpError> {
    let (original, applied) = {
        let mut state = lock(&shared.state);
        let app = state
            .apps
            .get_mut(&app_name)
            .ok_or_else(|| OpError::new(404, "ResourceNotFound", "The app no longer exists."))?;
        let preview = app
            .preview
            .clone()
            .filter(|p| p.source == source && p.target == target);
        match preview {
            Some(p) => ((p.original_settings, p.original_connection_strings), true),
            None => {
                let (src, src_cs) = app
                    .slot(&source)
                    .map(|s| (s.app_settings.clone(), s.connection_strings.clone()))
                    .unwrap_or_default();
                let (tgt, tgt_cs) = app
                    .slot(&target)
                    .map(|s| (s.app_settings.clone(), s.connection_strings.clone()))
                    .unwrap_or_default();
                let combined = combine(app, &src, &tgt);
                let combined_cs = combine_cs(app, &src_cs, &tgt_cs);
                if let Some(s) = app.slot_mut(&source) {
                    s.app_settings = combined;
                    s.connection_strings = combined_cs;
                }
                ((src, src_cs), false)
            }
        }
    };
    if !applied {
        crate::runtime::restart(&shared, &app_name, &source);
        let timeout = lock(&shared.faults).take(
            |f| matches!(f, Fault::SwapTimesOut { app, .. } if app.eq_ignore_ascii_case(&app_name)),
        );
        if let Some(Fault::SwapTimesOut { millis, .. }) = timeout {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            revert_source(&shared, &app_name, &source, original);
            return Err(OpError::new(
                500,
                "SwapTimedOut",
                format!(
                    "The swap of '{source}' into '{target}' timed out while warming up '{source}'; it was aborted and both slots are unchanged."
                ),
            ));
        }
        let injected = lock(&shared.faults).take(
            |f| matches!(f, Fault::SwapWarmupFails { app } if app.eq_ignore_ascii_case(&app_name)),
        );
        let (instance, settings, stopped) = {
            let state = lock(&shared.state);
            let s = state.apps.get(&app_name).and_then(|a| a.slot(&source));
            (
                s.and_then(|s| s.instance.clone()),
                s.map(|s| s.app_settings.clone()).unwrap_or_default(),
                s.is_some_and(|s| s.stopped),
            )
        };
        let warm = if injected.is_some() {
            Err("the warm-up request failed (injected fault)".to_owned())
        } else {
            match (&instance, stopped) {
                (_, true) => Err(format!("slot '{source}' is stopped")),
                (Some(i), false) => crate::runtime::warm_up(&shared, i, &settings).await,
                (None, false) => Err("the app is not running".to_owned()),
            }
        };
        if let Err(detail) = warm {
            revert_source(&shared, &app_name, &source, original);
            return Err(swap_failed(&app_name, &source, &detail));
        }
    }
    if apply_only {
        if let Some(app) = lock(&shared.state).apps.get_mut(&app_name) {
            app.preview = Some(Preview {
                source,
                target,
                original_settings: original.0,
                original_connection_strings: original.1,
            });
        }
        return Ok(());
    }
    {
        let unhealthy = lock(&shared.faults).take(|f| matches!(f, Fault::AppUnhealthyAfterSwap { app } if app.eq_ignore_ascii_case(&app_name)));
        let mut state = lock(&shared.state);
        let app = state
            .apps
            .get_mut(&app_name)
            .ok_or_else(|| OpError::new(404, "ResourceNotFound", "The app no longer exists."))?;
        let (Some(mut src), Some(mut tgt)) = (app.slots.remove(&source), app.slots.remove(&target))
        else {
            return Err(OpError::new(
                404,
                "ResourceNotFound",
                "A slot of the swap no longer exists.",
            ));
        };
        let keys = swapped_keys(&src.app_settings, &tgt.app_settings);
        let new_source_settings = combine(app, &tgt.app_settings, &original.0);
        let new_source_cs = combine_cs(app, &tgt.connection_strings, &original.1);
        // The source now runs with non-sticky(source) + sticky(target): exactly the target's future.
        let new_target_settings = std::mem::take(&mut src.app_settings);
        let new_target_cs = std::mem::take(&mut src.connection_strings);
        std::mem::swap(&mut src.content_dir, &mut tgt.content_dir);
        std::mem::swap(&mut src.deployments, &mut tgt.deployments);
        std::mem::swap(&mut src.instance, &mut tgt.instance);
        std::mem::swap(&mut src.forced_unhealthy, &mut tgt.forced_unhealthy);
        // A sitecontainers app's containers are its stack: they follow the content.
        std::mem::swap(&mut src.site_containers, &mut tgt.site_containers);
        // `/home` is the content: a site run from a package takes its kept packages along.
        std::mem::swap(&mut src.mounted_package, &mut tgt.mounted_package);
        crate::kudu_job::swap_site_packages(&app.root_dir, &src.name, &tgt.name);
        for key in keys {
            let a = src.site_config.remove(key);
            let b = tgt.site_config.remove(key);
            if let Some(b) = b {
                src.site_config.insert(key.to_owned(), b);
            }
            if let Some(a) = a {
                tgt.site_config.insert(key.to_owned(), a);
            }
        }
        tgt.app_settings = new_target_settings;
        src.app_settings = new_source_settings;
        tgt.connection_strings = new_target_cs;
        src.connection_strings = new_source_cs;
        src.requests_served = 0;
        tgt.requests_served = 0;
        if unhealthy.is_some() {
            tgt.forced_unhealthy = true;
        }
        let now = now_rfc3339();
        src.last_modified.clone_from(&now);
        tgt.last_modified = now;
        app.slots.insert(source.clone(), src);
        app.slots.insert(target.clone(), tgt);
        app.preview = None;
    }
    crate::runtime::restart(&shared, &app_name, &source);
    Ok(())
}

fn reset_preview(shared: &Arc<Shared>, app_name: &str) {
    let preview = lock(&shared.state)
        .apps
        .get_mut(app_name)
        .and_then(|a| a.preview.take());
    if let Some(p) = preview {
        let original = (p.original_settings, p.original_connection_strings);
        revert_source(shared, app_name, &p.source, original);
    }
}

fn text(v: Option<&serde_json::Value>) -> Option<String> {
    v.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
}

/// `POST [slots/{slot}/]slotsdiffs` with `{"targetSlot"}`: one `SlotDifference` per non-sticky
/// setting or connection string and swappable stack setting whose value differs, i.e. what the swap would move.
pub(super) async fn slots_diffs(ctx: Ctx) -> Response {
    let Ctx {
        shared,
        body,
        name,
        slot,
        rg,
        ..
    } = ctx;
    let (name, slot, rg) = (name.as_str(), slot.as_str(), rg.as_str());
    let Some(target) = body
        .get("targetSlot")
        .and_then(|t| t.as_str())
        .map(str::to_ascii_lowercase)
    else {
        return error_json(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The parameter targetSlot has an invalid value.",
        );
    };
    let state = lock(&shared.state);
    let Some(app) = state.apps.get(name) else {
        return not_found("Microsoft.Web/sites", name, rg);
    };
    let (Some(src), Some(tgt)) = (app.slot(slot), app.slot(&target)) else {
        return not_found("Microsoft.Web/sites/slots", &format!("{name}/{target}"), rg);
    };
    let mut diffs: Vec<(&str, String, Option<String>, Option<String>)> = Vec::new();
    let names: std::collections::BTreeSet<&String> = src
        .app_settings
        .keys()
        .chain(tgt.app_settings.keys())
        .collect();
    for key in names {
        let sticky = app.is_sticky(key, &src.app_settings) || app.is_sticky(key, &tgt.app_settings);
        let (a, b) = (src.app_settings.get(key), tgt.app_settings.get(key));
        if !sticky && a != b {
            diffs.push(("AppSetting", key.clone(), a.cloned(), b.cloned()));
        }
    }
    let names: std::collections::BTreeSet<&String> = src
        .connection_strings
        .keys()
        .chain(tgt.connection_strings.keys())
        .collect();
    for key in names {
        let (a, b) = (
            src.connection_strings.get(key),
            tgt.connection_strings.get(key),
        );
        if !app.is_sticky_connection_string(key) && a != b {
            let shown = |c: Option<&ConnectionString>| c.map(|c| c.value.clone());
            diffs.push(("ConnectionString", key.clone(), shown(a), shown(b)));
        }
    }
    for key in swapped_keys(&src.app_settings, &tgt.app_settings) {
        let (a, b) = (
            text(src.site_config.get(key)),
            text(tgt.site_config.get(key)),
        );
        if a != b {
            diffs.push(("General", key.to_owned(), a, b));
        }
    }
    let base = resource_id(app, slot);
    let value: Vec<serde_json::Value> = diffs
        .into_iter()
        .enumerate()
        .map(|(i, (kind, setting, current, other))| {
            serde_json::json!({
                "id": format!("{base}/slotsdiffs/{i}"),
                "name": setting,
                "type": "Microsoft.Web/sites/slotsdiffs",
                "properties": {
                    "level": "Information",
                    "settingType": kind,
                    "diffRule": "SettingsWillBeSwapped",
                    "settingName": setting,
                    "valueInCurrentSlot": current.unwrap_or_default(),
                    "valueInTargetSlot": other.unwrap_or_default(),
                    "description": format!("The setting '{setting}' will be swapped."),
                }
            })
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"value": value, "nextLink": null}),
    )
}
