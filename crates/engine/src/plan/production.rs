//! The production stage's plan: production's own settings, the swap (or swap with preview, a canary, or the
//! image set directly), the watch, and what a failure does.

use super::*;

#[allow(clippy::too_many_arguments)]
pub(super) fn plan_production(
    spec: &ReleaseSpec,
    env_name: &str,
    env: &EnvironmentSpec,
    production: &crate::spec::ProductionSpec,
    state: &LiveState,
    build: &BuildInfo,
    journal: &JournalTags,
    plan: &mut Plan,
) {
    let source = &production.source_slot;
    let prod = SlotName::production();
    let direct = source.is_production();
    common_preflight(state, journal, plan);
    if !direct {
        hosting_preflight(spec, state, plan);
    }
    let serving = state.production().and_then(|s| s.release.as_deref());
    if !direct && serving == Some(build.release_id.as_str()) {
        plan_production_resumed(production, build, journal, plan);
        return;
    }
    if direct {
        plan.preflight.push(check(
            "source",
            matches!(spec.app.kind, AppKind::Container { .. }),
            if matches!(spec.app.kind, AppKind::Container { .. }) {
                "no staging slot: the image is set on production directly".to_owned()
            } else {
                "a code app is released through a slot; set stages.production.sourceSlot to the staged slot"
                    .to_owned()
            },
        ));
    } else {
        let held = state.slot(source).and_then(|s| s.release.as_deref());
        let expected = journal.slot_release(source);
        let ok = state.slot(source).is_some()
            && held == Some(build.release_id.as_str())
            && (expected.is_none() || expected == held)
            && journal.phase == Some(Phase::Staged);
        plan.preflight.push(check(
            "staged-release",
            ok || build.assume_staged,
            if !ok && build.assume_staged {
                format!(
                    "assumed for this plan: slot {source} holds release {} once the staging stage ran (it holds {} now)",
                    build.release_id,
                    held.unwrap_or("an unknown release")
                )
            } else if ok {
                format!("slot {source} holds release {} and passed its gate", build.release_id)
            } else {
                format!(
                    "slot {source} holds {} (journal phase {}), not a staged release {}; run the staging stage for this release first",
                    held.unwrap_or("an unknown release"),
                    journal.phase.map_or("none".to_owned(), |p| p.to_string()),
                    build.release_id
                )
            },
        ));
    }

    if !direct {
        substitution_note(spec, env_name, env, plan);
    }
    let travelling = spec.travelling_settings();
    let (pull, set) = settings_changes(env, state, &prod, Written::StickyOnly(&travelling));
    let travelling_cs = spec.travelling_connection_strings();
    let set_cs = connection_string_changes(env, state, &prod, Written::StickyOnly(&travelling_cs));
    if !env.connection_strings.is_empty() {
        sticky_preflight(spec, plan);
    }
    let remove = owned_removals(
        env_name,
        env,
        state,
        journal,
        &prod,
        (!direct).then_some(source),
        !direct,
        plan,
    );
    // Read before the lock: a missing secret fails the run before it takes the lock.
    plan.steps.extend(pull);
    plan.steps.push(step(
        Action::AcquireLock,
        "two releases of the same app at once would interleave their changes",
    ));
    plan.steps.extend(set);
    plan.steps.extend(set_cs);
    plan.steps.extend(remove);
    push_site_config(env, &prod, state, plan);
    if !direct {
        let (_, travel) =
            settings_changes(env, state, source, Written::TravellingOnly(&travelling));
        plan.steps.extend(travel);
        plan.steps.extend(connection_string_changes(
            env,
            state,
            source,
            Written::TravellingOnly(&travelling_cs),
        ));
    }
    push_hooks(&production.hooks, &mut plan.steps);
    let canary = !direct && production.strategy == Strategy::Canary;
    if canary {
        super::canary::plan_canary(production, state, journal, plan);
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Swapping,
        },
        "a run cut short during the swap must be recognised by the next one",
    ));
    if direct {
        push_site_changes(
            spec,
            state,
            &prod,
            plan,
            "there is no staging slot: production takes the new image, the previous tag is recorded for rollback",
        );
    } else {
        if production.strategy == Strategy::SwapWithPreview {
            plan.steps.push(step(
                Action::ApplySlotConfig {
                    source: source.to_owned(),
                    target: SlotName::production(),
                },
                "the release is first verified with production's settings before it serves traffic",
            ));
            plan.steps.extend(health_step(
                production.health.as_ref(),
                source,
                "the release must be healthy with production's settings",
            ));
        }
        plan.steps.push(step(
            Action::Swap {
                source: source.to_owned(),
                target: SlotName::production(),
            },
            "the warmed-up slot takes production traffic with no downtime",
        ));
        if canary {
            plan.steps.push(step(
                Action::RestoreRouting,
                "production serves the release itself now: the canary's share goes back to 0 % and the rules are as before the release",
            ));
        }
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Swapped,
        },
        "production now serves the release; the previous one is kept for rollback",
    ));
    if let Some(health) = &production.health {
        plan.steps.push(watch_step(
            production,
            health,
            if direct {
                "production is watched so a bad release is caught while the previous tag is one image change away"
            } else {
                "production is watched so a bad release is caught while the previous one is one swap away"
            },
        ));
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Released,
        },
        "the release becomes the last known-good one",
    ));
    plan.steps
        .push(step(Action::ReleaseLock, "the stage is done"));

    if canary {
        super::canary::plan_abort(source, &mut plan.on_failure);
    }
    match production.rollback {
        RollbackMode::Automatic => {
            if direct {
                if let Some(previous) = state.production().and_then(|s| s.image()) {
                    let new_image = match &spec.app.kind {
                        AppKind::Container { repository, tag } => {
                            Some(format!("{repository}:{tag}"))
                        }
                        AppKind::Code { .. } => None,
                    };
                    plan.on_failure.push(step(
                        Action::SetImage {
                            slot: SlotName::production(),
                            before: new_image,
                            after: previous.to_owned(),
                        },
                        "automatic rollback: the previous tag goes back",
                    ));
                }
            } else {
                if production.strategy == Strategy::SwapWithPreview {
                    // A canary's reset is in its abort, above.
                    plan.on_failure.push(step(
                        Action::ResetSlotConfig {
                            source: source.to_owned(),
                        },
                        "a failed preview is cancelled before production is touched",
                    ));
                }
                plan.on_failure.push(step(
                    Action::Swap {
                        source: source.to_owned(),
                        target: SlotName::production(),
                    },
                    "automatic rollback, only if the swap happened: swapping back restores the previous release",
                ));
            }
            plan.on_failure.extend(health_step(
                production.health.as_ref(),
                &prod,
                "production must be healthy again after the rollback",
            ));
            if production.undo_hooks_on_rollback {
                let reason = "the config allows undoing hooks after a rollback";
                push_undos(&production.hooks, &mut plan.on_failure, reason);
                if let Some(staging) = &spec.staging {
                    push_undos(&staging.hooks, &mut plan.on_failure, reason);
                }
            }
            plan.on_failure.push(step(
                Action::WriteJournal {
                    phase: Phase::RolledBack,
                },
                "the previous release is the last known-good again",
            ));
        }
        RollbackMode::Manual => plan.on_failure.push(step(
            Action::WriteJournal {
                phase: Phase::Failed,
            },
            "rollback is manual: run `slot-release rollback`",
        )),
    }
    plan.on_failure
        .push(step(Action::ReleaseLock, "the stage is over"));
}

/// Production already serves the release (a run stopped after the swap): finish the watch and record it.
fn plan_production_resumed(
    production: &crate::spec::ProductionSpec,
    build: &BuildInfo,
    journal: &JournalTags,
    plan: &mut Plan,
) {
    plan.preflight.push(check(
        "staged-release",
        true,
        format!(
            "production already serves release {}: the swap happened, only the watch remains",
            build.release_id
        ),
    ));
    plan.steps.push(step(
        Action::AcquireLock,
        "two releases of the same app at once would interleave their changes",
    ));
    if journal.canary.is_some() {
        plan.steps.push(step(
            Action::RestoreRouting,
            "the interrupted canary's swap happened but its routing rules were not put back yet",
        ));
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Swapped,
        },
        "production serves the release; the previous one is kept for rollback",
    ));
    if let Some(health) = &production.health {
        plan.steps.push(watch_step(
            production,
            health,
            "the watch of the interrupted run did not finish",
        ));
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Released,
        },
        "the release becomes the last known-good one",
    ));
    plan.steps
        .push(step(Action::ReleaseLock, "the stage is done"));
    if production.rollback == RollbackMode::Automatic {
        plan.on_failure.push(step(
            Action::Swap {
                source: production.source_slot.clone(),
                target: SlotName::production(),
            },
            "automatic rollback: swapping back restores the previous release",
        ));
        plan.on_failure.push(step(
            Action::WriteJournal {
                phase: Phase::RolledBack,
            },
            "the previous release is the last known-good again",
        ));
    } else {
        plan.on_failure.push(step(
            Action::WriteJournal {
                phase: Phase::Failed,
            },
            "rollback is manual: run `slot-release rollback`",
        ));
    }
    plan.on_failure
        .push(step(Action::ReleaseLock, "the stage is over"));
}

/// Files the staging deploy substituted travel with the swap as they are: the plan says which of the
/// names that replaced keys have another value in production, and what takes precedence there.
fn substitution_note(spec: &ReleaseSpec, env_name: &str, env: &EnvironmentSpec, plan: &mut Plan) {
    let Some((staging_name, staging)) = spec
        .staging
        .as_ref()
        .and_then(|s| Some((&s.environment, spec.environments.get(&s.environment)?)))
    else {
        return;
    };
    if staging
        .substitute
        .as_ref()
        .is_none_or(|s| s.json.is_empty() && !s.xml)
    {
        return;
    }
    let differ: Vec<&str> = staging
        .settings
        .iter()
        .filter(|(name, value)| env.settings.get(*name) != Some(*value))
        .map(|(name, _)| name.as_str())
        .collect();
    let detail = if differ.is_empty() {
        format!(
            "the files substituted from {staging_name}'s settings travel with the swap; every name has the same value in {env_name}"
        )
    } else {
        format!(
            "the files substituted from {staging_name}'s settings travel with the swap and keep {staging_name}'s values for any of these names they hold: {}; in {env_name} the app settings of those names (sticky, written by this stage) take precedence over the files for apps that read settings from the environment (ASP.NET Core, and .NET Framework's appSettings and connectionStrings on App Service); see docs/substitution.md",
            differ.join(", ")
        )
    };
    plan.preflight.push(check("substitution", true, detail));
}
