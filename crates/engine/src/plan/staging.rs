//! The build and staging stages' plans: package (or image) first, then everything that makes the staging
//! slot hold the release and prove it healthy, production untouched.

use super::*;

pub(super) fn plan_build(spec: &ReleaseSpec, plan: &mut Plan) {
    match &spec.app.kind {
        AppKind::Code { root, .. } => plan.steps.push(step(
            Action::BuildPackage {
                root: root.display().to_string(),
            },
            "a deterministic zip with a manifest is what staging deploys",
        )),
        AppKind::Container { repository, tag } => plan.steps.push(step(
            Action::ResolveImage {
                image: format!("{repository}:{tag}"),
            },
            "the image is built and pushed by your own step; its tag is recorded for staging",
        )),
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn plan_staging(
    spec: &ReleaseSpec,
    env_name: &str,
    env: &EnvironmentSpec,
    staging: &crate::spec::StagingSpec,
    state: &LiveState,
    build: &BuildInfo,
    journal: &JournalTags,
    plan: &mut Plan,
) {
    let slot = &env.slot;
    let exists = state.slot(slot).is_some();
    plan.preflight.push(check(
        "slot",
        exists || env.create_slot,
        if exists {
            format!("slot {slot} exists")
        } else if env.create_slot {
            format!("slot {slot} is missing and will be created")
        } else {
            format!(
                "slot {slot} does not exist; create it or set createSlot: true on the environment"
            )
        },
    ));
    plan.preflight.push(check(
        "target",
        !slot.is_production(),
        if slot.is_production() {
            "the staging environment is bound to the production slot; staging must never touch production".to_owned()
        } else {
            format!("staging deploys to slot {slot}, not production")
        },
    ));
    hosting_preflight(spec, state, plan);
    containers_preflight(spec, state, slot, plan);
    if state.hosting.function_app {
        functions_preflight(env, state, slot, build.layout.as_ref(), plan);
    } else {
        startup_preflight(spec, state, slot, build.layout.as_ref(), plan);
        artifact_type_preflight(spec, state, slot, build.layout.as_ref(), plan);
    }
    let live = state.slot(slot);
    let mut scm_at = None;
    if let AppKind::Code { .. } = spec.app.kind {
        // The value the release leaves on the slot: the config's when it declares one, else the slot's.
        let (run_from, origin) = match env.settings.get("WEBSITE_RUN_FROM_PACKAGE") {
            Some(v) => (Some(v), "the config sets"),
            None => (
                live.and_then(|s| s.settings.get("WEBSITE_RUN_FROM_PACKAGE")),
                "the slot has",
            ),
        };
        let url = run_from.is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v.starts_with("http://") || v.starts_with("https://")
        });
        plan.preflight.push(check(
            "run-from-package",
            !url,
            if url {
                format!("{origin} WEBSITE_RUN_FROM_PACKAGE on {slot} to a URL: the site then runs the zip at that URL, never the one deployed, and Kudu refuses deployments with 409 ConflictRunFromRemoteZipConfigured; set it to 1 (the deployed zip is kept under /home/data/SitePackages) or remove it")
            } else if run_from.is_some_and(|v| v.trim() == "1") {
                format!("{slot} runs from its package (WEBSITE_RUN_FROM_PACKAGE=1): the zip is kept under /home/data/SitePackages and wwwroot is read-only")
            } else {
                "WEBSITE_RUN_FROM_PACKAGE does not point at a URL".to_owned()
            },
        ));
        // The build check is judged once the plan knows whether a removal takes the setting away; it
        // keeps its place among the checks of the code package.
        scm_at = Some(plan.preflight.len());
    }
    common_preflight(state, journal, plan);

    // Only the slot production swaps from has names that travel: they reach production with the swap.
    let swapped_from = spec
        .production
        .as_ref()
        .is_some_and(|p| p.source_slot == *slot);
    let (travelling, travelling_cs) = if swapped_from {
        (
            spec.travelling_settings(),
            spec.travelling_connection_strings(),
        )
    } else {
        (BTreeSet::new(), BTreeSet::new())
    };
    let (pull, set) = settings_changes(env, state, slot, Written::All(&travelling));
    let set_cs = connection_string_changes(env, state, slot, Written::All(&travelling_cs));
    if !env.connection_strings.is_empty() {
        sticky_preflight(spec, plan);
    }
    // The slot production swaps from also holds, after a swap, what production's release owned.
    let partner = spec
        .production
        .as_ref()
        .filter(|p| p.source_slot == *slot)
        .map(|_| SlotName::production());
    let remove = owned_removals(
        env_name,
        env,
        state,
        journal,
        slot,
        partner.as_ref(),
        false,
        plan,
    );
    if let Some(at) = scm_at {
        let effective = |name| Effective::of(name, env, live, removes(&remove, name));
        let settings = BuildSettings {
            build: effective(SCM_BUILD),
            run_from_package: effective("WEBSITE_RUN_FROM_PACKAGE"),
        };
        let mut checks = vec![scm_build_check(env_name, slot, &settings)];
        if let Some(stack) = effective_stack(spec, state, slot) {
            if state.hosting.function_app {
                checks.extend(python_functions_dependencies(
                    stack.runtime,
                    settings.builds(),
                    build.layout.as_ref(),
                ));
            } else {
                checks.extend(dependencies_check(
                    env_name,
                    slot,
                    stack.runtime,
                    &settings,
                    build.layout.as_ref(),
                ));
            }
        }
        plan.preflight.splice(at..at, checks);
    }
    // Secrets are read before the lock: reading changes nothing, and a missing or disabled secret then
    // fails the run before it has taken the lock or written anything.
    plan.steps.extend(pull);
    plan.steps.push(step(
        Action::AcquireLock,
        "two releases of the same app at once would interleave their changes",
    ));
    if !exists {
        plan.steps.push(step(
            Action::CreateSlot {
                slot: slot.to_owned(),
            },
            "the config asks for the slot to be created when missing",
        ));
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Staging,
        },
        "a later run must know a release was started here",
    ));
    plan.steps.extend(set);
    plan.steps.extend(set_cs);
    plan.steps.extend(remove);
    push_site_config(env, slot, state, plan);
    push_site_changes(spec, state, slot, plan, "the slot must run the new release");
    if let AppKind::Code { .. } = spec.app.kind {
        plan.steps.push(step(
            Action::DeployPackage {
                slot: slot.to_owned(),
                sha256: build.package_sha256.clone(),
                substitute: substitution(env_name, env),
                artifact_type: build
                    .layout
                    .as_ref()
                    .and_then(|l| l.onedeploy_type)
                    .map(str::to_owned),
            },
            "the release's package goes to the slot, never to production directly",
        ));
    }
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Deployed,
        },
        "the slot now holds the release",
    ));
    push_hooks(&staging.hooks, &mut plan.steps);
    plan.steps.extend(health_step(
        staging.health.as_ref(),
        slot,
        "production is only touched once the slot is healthy",
    ));
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Staged,
        },
        "production will verify the slot holds this release before swapping",
    ));
    plan.steps
        .push(step(Action::ReleaseLock, "the stage is done"));

    push_undos(
        &staging.hooks,
        &mut plan.on_failure,
        "hooks already run are undone in reverse order (only those that ran)",
    );
    plan.on_failure.push(step(
        Action::WriteJournal {
            phase: Phase::Failed,
        },
        "the slot is marked failed; production is not touched",
    ));
    plan.on_failure
        .push(step(Action::ReleaseLock, "the stage is over"));
}

/// What the deploy substitutes in its copy of the package: the files, and the names of the plain settings
/// that may replace a key (never a secret's, never a value).
fn substitution(
    env_name: &str,
    env: &EnvironmentSpec,
) -> Option<crate::substitute::SubstitutionPlan> {
    let rules = env.substitute.as_ref()?;
    if rules.json.is_empty() && !rules.xml {
        return None;
    }
    Some(crate::substitute::SubstitutionPlan {
        environment: env_name.to_owned(),
        json: rules.json.clone(),
        xml: rules.xml,
        names: env.settings.keys().cloned().collect(),
    })
}
