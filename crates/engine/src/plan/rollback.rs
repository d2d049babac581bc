//! The rollback stage's plan: which release to return to (the one before the current, or the one named),
//! and how (a swap back, or its image or artifact through the staging slot and its gate).

use super::*;

/// The release a rollback restores: the one named (`--to`); else, when the journal's latest release is the
/// one production runs and it is in the history, the release before it (a release that passed its watch and
/// turned out bad later); else the last known-good release (closing a release that stopped or failed, which
/// is a no-op when production already runs it, so a second rollback changes nothing).
fn rollback_target<'a>(
    journal: &'a JournalTags,
    build: &BuildInfo,
) -> Result<(Option<String>, Option<&'a crate::history::Entry>), String> {
    let history = &journal.history;
    if let Some(wanted) = build.rollback_to.as_deref() {
        if let Ok(entry) = crate::history::find(history, wanted) {
            return Ok((Some(entry.id.clone()), Some(entry)));
        }
        if journal.last_known_good.as_deref() == Some(wanted) {
            return Ok((Some(wanted.to_owned()), None));
        }
        return crate::history::find(history, wanted).map(|_| (None, None));
    }
    let settled = journal.phase.is_none_or(|p| p.is_settled());
    let production = journal.production_release();
    if settled
        && let Some(latest) = journal.release.as_deref()
        && production == Some(latest)
        && history.iter().any(|e| e.id == latest)
    {
        return match crate::history::before(history, latest) {
            Some(previous) => Ok((Some(previous.id.clone()), Some(previous))),
            None => Err(format!(
                "production runs {latest}, the oldest release in the app's history, so there is no earlier release to return to; name one with --to"
            )),
        };
    }
    let lkg = journal.last_known_good.clone();
    let entry = lkg
        .as_deref()
        .and_then(|id| history.iter().find(|e| e.id == id));
    Ok((lkg, entry))
}

pub(super) fn plan_rollback(
    spec: &ReleaseSpec,
    target: Option<&ReleaseSpec>,
    state: &LiveState,
    journal: &JournalTags,
    build: &BuildInfo,
    plan: &mut Plan,
) {
    let (lkg, target_entry) = match rollback_target(journal, build) {
        Ok(target) => target,
        Err(why) => {
            plan.preflight.push(check("rollback-target", false, why));
            return;
        }
    };
    plan.release_id = lkg.clone().unwrap_or_default();
    plan.release_name = target_entry
        .map(|e| e.name.clone())
        .filter(|name| !name.is_empty() && Some(name) != lkg.as_ref());
    plan.preflight.push(check(
        "in-flight",
        state.in_flight.is_empty(),
        if state.in_flight.is_empty() {
            "no swap or deployment in flight".to_owned()
        } else {
            format!("still running: {}", state.in_flight.join(", "))
        },
    ));
    let production_release = journal.production_release();
    let Some(lkg) = lkg else {
        plan.preflight.push(check(
            "last-known-good",
            false,
            "the journal records no last known-good release, so there is nothing to restore; redeploy a known release with the staging and production stages",
        ));
        return;
    };
    if production_release == Some(lkg.as_str()) {
        if journal.phase.is_none_or(|p| p.is_settled()) {
            plan.steps.push(step(
                Action::Nothing,
                format!("production already runs the last known-good release {lkg}"),
            ));
            if !journal.previous_settings.is_empty() {
                // A stopped production stage wrote its settings on production before a swap that never
                // happened: closing the journal puts production's own values back.
                plan.steps = vec![step(
                    Action::WriteJournal {
                        phase: Phase::RolledBack,
                    },
                    format!(
                        "production runs {lkg} but holds settings another release wrote; they are put back"
                    ),
                )];
            }
            if !journal.previous_settings.is_empty() {
                // Putting production's settings back is a change: it happens under the lock.
                plan.steps.insert(
                    0,
                    step(
                        Action::AcquireLock,
                        "a rollback must not race another release",
                    ),
                );
                plan.steps
                    .push(step(Action::ReleaseLock, "the stage is done"));
            }
        } else {
            // A release stopped before touching production: nothing to restore, only the journal to close.
            plan.steps = vec![
                step(
                    Action::AcquireLock,
                    "a rollback must not race another release",
                ),
                step(
                    Action::WriteJournal {
                        phase: Phase::RolledBack,
                    },
                    format!(
                        "production already runs the last known-good release {lkg}; the unfinished release is closed"
                    ),
                ),
                step(Action::ReleaseLock, "the stage is done"),
            ];
        }
        return;
    }
    let source_slot = spec
        .production
        .as_ref()
        .map(|p| &p.source_slot)
        .filter(|s| !s.is_production());
    let lkg_slot = source_slot.filter(|slot| journal.slot_release(slot) == Some(lkg.as_str()));
    // The target's own image when the history records it; else the image production ran before the
    // current release (the journal's, for the last known-good release).
    let previous_image = match &spec.app.kind {
        AppKind::Container { .. } => target_entry
            .and_then(|e| e.image.as_deref())
            .or(journal.previous_image.as_deref()),
        AppKind::Code { .. } => None,
    };
    // How people and the history name the target: its build number and the run whose artifact holds it.
    let target_label = target_entry.map_or_else(|| lkg.clone(), crate::history::Entry::label);
    let artifact = target_entry.and_then(|e| e.artifact.as_ref());
    let redeploy = match (artifact, target_entry.and_then(|e| e.run.as_deref())) {
        (Some(source), _) => format!(
            "download {}{} and give its zip to the rollback (--package, task input package)",
            source.describe(),
            target_entry
                .and_then(|e| e.package_sha256.as_deref())
                .map_or(String::new(), |sha| format!(", package sha256 {sha},"))
        ),
        (None, Some(run)) => format!(
            "run the staging and production stages of {run} again (its artifact holds release {target_label}{})",
            target_entry
                .and_then(|e| e.package_sha256.as_deref())
                .map_or(String::new(), |sha| format!(", package sha256 {sha}"))
        ),
        (None, None) => format!("redeploy {target_label} with the staging and production stages"),
    };
    let restore = spec.rollback.as_ref().map(|r| r.restore);
    plan.preflight.push(check(
        "restore",
        true,
        match restore {
            Some(Restore::SwapBack) => {
                "stages.rollback.restore is swapBack: only a swap back restores production".to_owned()
            }
            Some(Restore::LastKnownGood) => {
                "stages.rollback.restore is lastKnownGood: the release is redeployed (through the staging slot when production swaps from one)".to_owned()
            }
            None => "no stages.rollback: swap back when possible, else put the previous image back".to_owned(),
        },
    ));
    // A code release in no slot comes back from its artifact: the package given to the run, checked
    // against the digest the history recorded, is deployed to the staging slot, gated, then swapped in.
    let recorded = target_entry.and_then(|e| e.package_sha256.as_deref());
    let in_no_slot = matches!(spec.app.kind, AppKind::Code { .. }) && lkg_slot.is_none();
    let given = build.package_sha256.as_deref();
    // A plan for a later job (`plan --stage rollback` before the artifact is downloaded) is made as if the
    // recorded package were given; the run itself checks the bytes it is given.
    let expected = given.or(recorded.filter(|_| build.package_later && artifact.is_some()));
    // A slot run from its package (`WEBSITE_RUN_FROM_PACKAGE=1`) still holds the release's zip where Kudu
    // kept it (`/home/data/SitePackages` follows the content on a swap): pointing the slot back at it needs
    // no artifact. A package given to the run is deployed instead, as it is under any restore.
    let kept = match (source_slot, in_no_slot, given, recorded) {
        (Some(slot), true, None, Some(sha)) if runs_from_package(state, slot) => Some((slot, sha)),
        _ => None,
    };
    let redeployable = match (source_slot, in_no_slot && kept.is_none()) {
        (Some(slot), true) => expected.map(|sha| (slot, sha)),
        _ => None,
    };
    if in_no_slot && source_slot.is_some() && kept.is_none() {
        plan.artifact = artifact.cloned();
    }
    if let Some((slot, sha)) = kept {
        plan.preflight.push(check(
            "package",
            true,
            format!(
                "release {target_label} is in no slot, but slot {slot} runs from its package (WEBSITE_RUN_FROM_PACKAGE=1) and Kudu keeps its newest packages there: the one with sha256 {sha} runs again, without its artifact"
            ),
        ));
    }
    match (redeployable, given) {
        (Some((_, given)), Some(_)) => {
            let matches = recorded == Some(given);
            plan.preflight.push(check(
                "package",
                matches,
                match recorded {
                    Some(r) if r == given => format!(
                        "the package given is release {target_label}'s (sha256 {given})"
                    ),
                    Some(r) => format!(
                        "the package given (sha256 {given}) is not release {target_label}'s package (sha256 {r}); {redeploy}"
                    ),
                    None => format!(
                        "the history records no package digest for release {target_label}, so the package given (sha256 {given}) cannot be verified; redeploy it with the staging and production stages"
                    ),
                },
            ));
            if !matches {
                return;
            }
        }
        (Some((_, recorded)), None) => plan.preflight.push(check(
            "package",
            true,
            format!(
                "release {target_label} is in no slot: the rollback job needs its package (sha256 {recorded}): {redeploy}"
            ),
        )),
        (None, _) => {}
    }
    // What the rollback does: the configured restore, or (no rollback stage) whichever is possible.
    let method = match (redeployable, restore) {
        _ if kept.is_some() => Ok(RestoreBy::Kept),
        (Some((slot, _)), _) => Ok(RestoreBy::Redeploy(slot)),
        (None, Some(Restore::SwapBack)) => lkg_slot
            .map(RestoreBy::Swap)
            .ok_or_else(|| {
                swap_back_refusal(
                    spec,
                    journal,
                    source_slot,
                    previous_image,
                    &target_label,
                    &redeploy,
                )
            }),
        (None, Some(Restore::LastKnownGood)) => match (&spec.app.kind, previous_image) {
            (AppKind::Container { .. }, Some(image)) => Ok(image_restore(source_slot, image)),
            (AppKind::Container { .. }, None) => Err(format!(
                "restore is lastKnownGood, but the journal records no previous image for release {lkg}, so there is no tag to put back; redeploy it with the staging and production stages"
            )),
            (AppKind::Code { .. }, _) => Err(format!(
                "restore is lastKnownGood, but a code app's package stays with the pipeline run that built it and the journal keeps no copy of release {lkg}'s package; run the staging and production stages for {lkg}, or set stages.rollback.restore to swapBack{}",
                lkg_slot.map_or(String::new(), |slot| format!(" (slot {slot} holds it)"))
            )),
        },
        (None, None) => lkg_slot
            .map(RestoreBy::Swap)
            .or(previous_image.map(|image| image_restore(source_slot, image)))
            .ok_or_else(|| {
                format!(
                    "release {target_label} is in no slot and no image of it is recorded, so it cannot be restored by a swap; {redeploy}"
                )
            }),
    };
    let mut steps = vec![step(
        Action::AcquireLock,
        "a rollback must not race another release",
    )];
    let redeploying = matches!(
        method,
        Ok(RestoreBy::Redeploy(_) | RestoreBy::Kept | RestoreBy::ImageVia(..))
    );
    match method {
        Ok(RestoreBy::Swap(slot)) => {
            let held = state.slot(slot).and_then(|s| s.release.as_deref());
            let verified = held == Some(lkg.as_str());
            plan.preflight.push(check(
                "last-known-good",
                verified,
                if verified {
                    format!("slot {slot} holds the last known-good release {lkg}")
                } else {
                    format!(
                        "the journal says slot {slot} holds {lkg} but its deployment record says {}; refusing to swap an unverified release",
                        held.unwrap_or("nothing")
                    )
                },
            ));
            steps.push(step(
                Action::WriteJournal {
                    phase: Phase::RollingBack,
                },
                "a run cut short during the rollback must be recognised",
            ));
            steps.push(step(
                Action::Swap {
                    source: slot.to_owned(),
                    target: SlotName::production(),
                },
                format!("the last known-good release {lkg} is in slot {slot}: swap it back"),
            ));
        }
        Ok(RestoreBy::Image(previous)) => {
            plan.preflight.push(check(
                "last-known-good",
                true,
                format!("the journal records the previous image {previous}"),
            ));
            steps.push(step(
                Action::WriteJournal {
                    phase: Phase::RollingBack,
                },
                "a run cut short during the rollback must be recognised",
            ));
            steps.push(step(
                Action::SetImage {
                    slot: SlotName::production(),
                    before: state
                        .production()
                        .and_then(|s| s.image())
                        .map(str::to_owned),
                    after: previous.to_owned(),
                },
                format!("the previous known-good image of release {lkg} is put back"),
            ));
        }
        Ok(RestoreBy::ImageVia(slot, image)) => {
            plan.preflight.push(check(
                "last-known-good",
                true,
                format!("release {target_label}'s image is recorded: {image}"),
            ));
            steps.push(step(
                Action::WriteJournal {
                    phase: Phase::RollingBack,
                },
                "a run cut short during the rollback must be recognised",
            ));
            steps.push(step(
                Action::SetImage {
                    slot: slot.to_owned(),
                    before: state.slot(slot).and_then(|s| s.image()).map(str::to_owned),
                    after: image.to_owned(),
                },
                format!(
                    "release {target_label} is in no slot: its image goes to slot {slot}, never to production directly"
                ),
            ));
            if let Some(staging) = &spec.staging {
                push_hooks(&staging.hooks, &mut steps);
            }
            let staging_health = spec.staging.as_ref().and_then(|s| s.health.as_ref());
            steps.extend(health_step(
                staging_health,
                slot,
                "production is only touched once the slot is healthy",
            ));
            steps.push(step(
                Action::Swap {
                    source: slot.to_owned(),
                    target: SlotName::production(),
                },
                format!("release {target_label} passed its gate in slot {slot}: swap it in"),
            ));
        }
        Ok(ref by @ (RestoreBy::Redeploy(_) | RestoreBy::Kept)) => {
            let (slot, deploy) = match (by, kept, redeployable) {
                (RestoreBy::Kept, Some((slot, sha)), _) => (
                    slot,
                    step(
                        Action::UseKeptPackage {
                            slot: slot.to_owned(),
                            sha256: sha.to_owned(),
                        },
                        format!(
                            "release {target_label} is in no slot: slot {slot} runs its kept package again, never production directly"
                        ),
                    ),
                ),
                (&RestoreBy::Redeploy(slot), _, Some((_, sha))) => (
                    slot,
                    step(
                        Action::DeployPackage {
                            slot: slot.to_owned(),
                            sha256: Some(sha.to_owned()),
                            substitute: None,
                            artifact_type: None,
                        },
                        format!(
                            "release {target_label} is in no slot: its package goes to slot {slot}, never to production directly"
                        ),
                    ),
                ),
                _ => return,
            };
            steps.push(step(
                Action::WriteJournal {
                    phase: Phase::RollingBack,
                },
                "a run cut short during the rollback must be recognised",
            ));
            steps.push(deploy);
            // The settings that travel with the swap, as that release was released with them (a setting
            // from `$(Build.BuildNumber)` names it again); sticky ones stay with production's slot.
            let environment = spec
                .rollback
                .as_ref()
                .map(|r| r.environment.as_str())
                .or(spec.production.as_ref().map(|p| p.environment.as_str()));
            if let Some(env) = target
                .zip(environment)
                .and_then(|(t, name)| t.environments.get(name))
            {
                // Its selected secrets come back too, so a selection that failed must stop the swap.
                selection_preflight(env, plan);
                let travelling = spec.travelling_settings();
                let (pull, travel) =
                    settings_changes(env, state, slot, Written::TravellingOnly(&travelling));
                // Its connection strings the same way: those that travel come back with the swap.
                let travelling_cs = spec.travelling_connection_strings();
                let travel_cs = connection_string_changes(
                    env,
                    state,
                    slot,
                    Written::TravellingOnly(&travelling_cs),
                );
                // Read before the lock, as every stage reads its secrets.
                for (at, p) in pull.into_iter().enumerate() {
                    steps.insert(at, p);
                }
                steps.extend(travel);
                steps.extend(travel_cs);
            }
            // The release's own staging hooks (its migrations) run as they did when it was staged.
            if let Some(staging) = &spec.staging {
                push_hooks(&staging.hooks, &mut steps);
            }
            let staging_health = spec.staging.as_ref().and_then(|s| s.health.as_ref());
            steps.extend(health_step(
                staging_health,
                slot,
                "production is only touched once the slot is healthy",
            ));
            steps.push(step(
                Action::Swap {
                    source: slot.to_owned(),
                    target: SlotName::production(),
                },
                format!("release {target_label} passed its gate in slot {slot}: swap it in"),
            ));
        }
        Err(why) => {
            plan.preflight.push(check("last-known-good", false, why));
            return;
        }
    }
    if let Some(health) = spec
        .rollback
        .as_ref()
        .and_then(|r| r.health.as_ref())
        .or(spec.production.as_ref().and_then(|p| p.health.as_ref()))
    {
        steps.push(step(
            Action::HealthGate {
                slot: SlotName::production(),
                gate: health.clone(),
            },
            "production must be healthy after the rollback",
        ));
    }
    // A redeployed release ran its own hooks: nothing of the release taken out is undone after them.
    if spec.rollback.as_ref().is_some_and(|r| r.undo_hooks) && !redeploying {
        // The rolled-back release's hooks (e.g. its migration) are undone once production no longer runs it.
        let reason = "the config asks the rollback to undo the hooks of the release taken out";
        if let Some(production) = &spec.production {
            push_undos(&production.hooks, &mut steps, reason);
        }
        if let Some(staging) = &spec.staging {
            push_undos(&staging.hooks, &mut steps, reason);
        }
    }
    steps.push(step(
        Action::WriteJournal {
            phase: Phase::RolledBack,
        },
        "the restored release is recorded as serving production",
    ));
    steps.push(step(Action::ReleaseLock, "the stage is done"));
    plan.steps = steps;
}

/// Why `restore: swapBack` cannot restore `lkg`, and what would.
fn swap_back_refusal(
    spec: &ReleaseSpec,
    journal: &JournalTags,
    source_slot: Option<&SlotName>,
    previous_image: Option<&str>,
    lkg: &str,
    redeploy: &str,
) -> String {
    let Some(slot) = source_slot else {
        return "restore is swapBack, but production has no source slot (its image was set directly), so there is nothing to swap back; set stages.rollback.restore to lastKnownGood to put the previous image back".to_owned();
    };
    let way_out = match (&spec.app.kind, previous_image) {
        (AppKind::Container { .. }, Some(_)) => {
            "set stages.rollback.restore to lastKnownGood to put its image back".to_owned()
        }
        _ => redeploy.to_owned(),
    };
    format!(
        "restore is swapBack, but slot {slot} holds {} per the journal, not release {lkg}, so swapping back would not restore it; {way_out}",
        journal.slot_release(slot).unwrap_or("no recorded release"),
    )
}

/// How a rollback puts the last known-good release back.
enum RestoreBy<'a> {
    /// Swap this slot, which holds it, into production.
    Swap(&'a SlotName),
    /// Set this image (its recorded tag) on production.
    Image(&'a str),
    /// Deploy the given package (its artifact) to this slot, gate it, and swap it in.
    Redeploy(&'a SlotName),
    /// Set this image on this slot, gate it, and swap it in.
    ImageVia(&'a SlotName, &'a str),
    /// Run the package Kudu kept in the source slot again (run from package), gate it, and swap it in.
    Kept,
}

/// Whether a slot runs from a local package (`WEBSITE_RUN_FROM_PACKAGE=1`), which Kudu keeps.
fn runs_from_package(state: &LiveState, slot: &SlotName) -> bool {
    state.slot(slot).is_some_and(|s| {
        s.settings
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("WEBSITE_RUN_FROM_PACKAGE") && v.trim() == "1")
    })
}

/// How a container's recorded image comes back: through the slot production swaps from when there is one,
/// so production is only touched once the image answers its gate there; else on production, as its
/// releases are.
fn image_restore<'a>(source_slot: Option<&'a SlotName>, image: &'a str) -> RestoreBy<'a> {
    match source_slot {
        Some(slot) => RestoreBy::ImageVia(slot, image),
        None => RestoreBy::Image(image),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Entry, Outcome};
    use crate::journal::Phase;

    fn entry(id: &str) -> Entry {
        Entry {
            id: id.into(),
            name: format!("n-{id}"),
            released_unix: 7,
            image: None,
            run: None,
            package_sha256: None,
            artifact: None,
            outcome: Outcome::Released,
        }
    }

    /// Production runs r2, released after r1 (both in the history); r1 is the last known-good.
    fn released() -> JournalTags {
        JournalTags {
            release: Some("r2".into()),
            phase: Some(Phase::Released),
            slots: [(SlotName::production(), "r2".to_owned())].into(),
            last_known_good: Some("r1".into()),
            history: vec![entry("r0"), entry("r1"), entry("r2")],
            ..JournalTags::default()
        }
    }

    fn to(wanted: Option<&str>) -> BuildInfo {
        BuildInfo {
            rollback_to: wanted.map(str::to_owned),
            ..BuildInfo::default()
        }
    }

    fn target(journal: &JournalTags, wanted: Option<&str>) -> Result<Option<String>, String> {
        rollback_target(journal, &to(wanted)).map(|(id, _)| id)
    }

    /// Which release each situation returns to; every row fails if its comparison is turned around.
    #[test]
    fn the_rollback_target_table() {
        let released = released();
        // A release that passed its watch and turned out bad: the one before it, not the known-good mark.
        assert_eq!(target(&released, None), Ok(Some("r1".into())));
        let mut marked = released.clone();
        marked.last_known_good = Some("r2".into());
        assert_eq!(target(&marked, None), Ok(Some("r1".into())));
        // Named: found in the history by id or by name.
        assert_eq!(target(&released, Some("r0")), Ok(Some("r0".into())));
        assert_eq!(target(&released, Some("n-r0")), Ok(Some("r0".into())));
        // Named, not in the history but the known-good release: allowed; anything else is refused.
        let mut lkg_only = released.clone();
        lkg_only.last_known_good = Some("r9".into());
        assert_eq!(target(&lkg_only, Some("r9")), Ok(Some("r9".into())));
        assert!(target(&released, Some("r9")).is_err());
        // Production does not run the journal's latest release (it failed before its swap): the known-good.
        let mut failed = released.clone();
        failed.release = Some("r3".into());
        failed.phase = Some(Phase::Failed);
        failed.slots.insert(SlotName::production(), "r2".into());
        failed.last_known_good = Some("r2".into());
        assert_eq!(target(&failed, None), Ok(Some("r2".into())));
        // The latest release runs in production but is not in the history: the known-good, with its entry.
        let mut unknown = released.clone();
        unknown.history.retain(|e| e.id != "r2");
        let (id, entry) = rollback_target(&unknown, &to(None)).unwrap();
        assert_eq!(id.as_deref(), Some("r1"));
        assert_eq!(entry.map(|e| e.id.as_str()), Some("r1"));
        // The oldest release in production: nothing earlier to return to.
        let mut oldest = released.clone();
        oldest.history.retain(|e| e.id == "r2");
        assert!(target(&oldest, None).unwrap_err().contains("oldest"));
    }
}
