//! The container kinds beyond `DOCKER|`: a sitecontainers app (`linuxFxVersion: SITECONTAINERS`) is
//! released by rolling out its main container's image, sidecars kept; a Docker Compose app (`COMPOSE|…`)
//! is refused before any change, since App Service retires Compose on 2027-03-31.

use super::*;
use crate::state::SlotState;

/// The retirement date of Docker Compose on App Service.
pub const COMPOSE_RETIREMENT: &str = "2027-03-31";

/// The `compose` and `sitecontainers` checks for the slot a stage changes.
pub(super) fn containers_preflight(
    spec: &ReleaseSpec,
    state: &LiveState,
    slot: &SlotName,
    plan: &mut Plan,
) {
    // The slot's own kind; a slot about to be created is cloned from production.
    let Some(live) = state.slot(slot).or_else(|| state.production()) else {
        return;
    };
    let fx = live.linux_fx_version.as_deref().unwrap_or_default().trim();
    if fx.len() >= 8 && fx[..8].eq_ignore_ascii_case("COMPOSE|") {
        plan.preflight.push(check(
            "compose",
            false,
            format!(
                "{slot} runs Docker Compose (linuxFxVersion COMPOSE|…), which App Service retires on {COMPOSE_RETIREMENT}; Slot Release does not release Compose apps: migrate the app to sitecontainers (linuxFxVersion SITECONTAINERS: the Compose service that serves the site becomes the main container, the others sidecars), then release the main container's image"
            ),
        ));
        return;
    }
    if !live.runs_site_containers() {
        return;
    }
    // App Service pulls each sitecontainer with its own `authType`; the slot-wide pull settings a
    // `registry` writes would be ignored, and the release sends the main container back with its auth
    // as it is (only the image changes), so a `registry` here would promise what nothing does.
    let registries: Vec<String> = spec
        .environments
        .iter()
        .filter_map(|(name, env)| env.registry.as_ref().map(|_| name.clone()))
        .collect();
    if !registries.is_empty() {
        plan.preflight.push(check(
            "registry",
            false,
            format!(
                "{slot} is a sitecontainers app, whose containers each pull with their own authType (Anonymous, UserCredentials, SystemIdentity, UserAssigned); the release keeps the main container's as it is and changes only its image, so `registry` in environment(s) {} would not be used: set the main container's authType once (e.g. az webapp sitecontainers update) and remove `registry` from release.yml",
                registries.join(", ")
            ),
        ));
    }
    plan.preflight.push(match (&spec.app.kind, live.main_container()) {
        (AppKind::Code { .. }, _) => check(
            "sitecontainers",
            false,
            format!(
                "{slot} is a sitecontainers app (linuxFxVersion SITECONTAINERS), which runs images, not a code package: set app.kind: container and app.image to roll out its main container"
            ),
        ),
        (AppKind::Container { .. }, None) => check(
            "sitecontainers",
            false,
            format!(
                "{slot} is a sitecontainers app but none of its sitecontainers is the main one (isMain: true): there is no container to roll the image out to; mark the container that serves the site as main"
            ),
        ),
        (AppKind::Container { .. }, Some(main)) => check(
            "sitecontainers",
            true,
            format!(
                "{slot} is a sitecontainers app: the image goes to its main container {}; {}",
                main.name,
                sidecars_kept(live)
            ),
        ),
    });
}

/// "sidecars kept: a, b" or "no sidecars".
pub(super) fn sidecars_kept(live: &SlotState) -> String {
    let sidecars = live.sidecars();
    if sidecars.is_empty() {
        "no sidecars".to_owned()
    } else {
        format!("sidecars kept as they are: {}", sidecars.join(", "))
    }
}
