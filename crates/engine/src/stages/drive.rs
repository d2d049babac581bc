//! One stage from the live state to its end: settle, plan, refuse on a failed preflight, run each step timed and folded, recover on failure.

use super::*;

impl Exec<'_> {
    pub(super) async fn run_stage(&mut self) -> Result<(), Failure> {
        let stage = self.stage.stage;
        self.log().section(&format!("{stage} stage"));
        let mut state = if stage == Stage::Build {
            LiveState::default()
        } else {
            self.read_state().await?
        };
        if stage != Stage::Build {
            // Before anything else, and before any write: a release in flight in another run is that
            // run's, not an unfinished one to settle.
            if self.refuse_if_locked(&state.tags).await? {
                state = self.read_state().await?;
            }
        }
        if stage != Stage::Build && self.wait_for_running_swap(&state).await? {
            state = self.read_state().await?;
        }
        if stage != Stage::Build {
            state = self.wait_for_running_deployment(state).await?;
        }
        if stage != Stage::Build {
            self.reconcile(&mut state)?;
        }
        if self.settle(&mut state)? {
            self.log()
                .warning("An unfinished release is rolled back first, as asked");
            let mut rollback = Exec::new(
                self.ctx,
                self.spec,
                self.opts,
                Stage::Rollback,
                self.settle.clone(),
            );
            let result = rollback.run_stage_with(Stage::Rollback, state).await;
            if result.is_err() {
                rollback.give_back_lock().await;
            }
            self.stage.steps.extend(rollback.stage.steps);
            result?;
            state = self.read_state().await?;
        }
        let result = self.run_stage_with(stage, state).await;
        if result.is_err() {
            self.give_back_lock().await;
        }
        result
    }

    /// Every failed exit gives the lock back if the failure handling could not: a lock left behind blocks
    /// the next release for its whole time to live. Best effort, a few tries within what is left of the stop
    /// after a cancel, logged when it still fails.
    pub(super) async fn give_back_lock(&mut self) {
        if !self.lock_held() {
            return;
        }
        for attempt in 1..=3 {
            match self.release_lock().await {
                Ok(()) => return,
                Err(err) if attempt == 3 => {
                    self.log().warning(&format!(
                        "The release lock could not be given back ({}); a retry of this job takes it over, another release waits until it goes stale",
                        chain(&err).join(": ")
                    ));
                }
                Err(_) => tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = self.settle.cancelled() => {}
                },
            }
        }
    }

    pub(super) async fn run_stage_with(
        &mut self,
        stage: Stage,
        state: LiveState,
    ) -> Result<(), Failure> {
        self.journal = JournalTags::from_tags(&state.tags).map_err(Failure::failed)?;
        if self.stage.slots_before.is_empty() {
            // What each slot held when the stage began (before an unfinished release was rolled back
            // first): the summary's "before".
            self.stage.slots_before = self.journal.slots.clone();
        }
        self.slot_releases = state
            .slots
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), s.release.clone()?)))
            .collect();
        self.production_settings = state
            .production()
            .map(|s| s.settings.clone())
            .unwrap_or_default();
        self.production_routing = state.routing.clone();
        self.production_connection_strings = state
            .production()
            .map(|s| s.connection_strings.clone())
            .unwrap_or_default();
        self.production_image = state
            .production()
            .and_then(|s| s.image())
            .map(str::to_owned);
        if stage == Stage::Production
            && state.production().and_then(|s| s.release.as_deref())
                == Some(self.opts.release_id.as_str())
        {
            // An earlier run swapped already: a failing watch must swap back.
            self.swapped = true;
        }
        if stage == Stage::Production || stage == Stage::Rollback {
            // Staging's hooks completed (the slot is staged); a rollback may have to undo them.
            self.completed_hooks = self
                .spec
                .staging
                .iter()
                .flat_map(|s| s.hooks.iter().cloned())
                .collect();
            if stage == Stage::Rollback {
                // The release taken out also ran its production hooks before its swap.
                let production = self
                    .spec
                    .production
                    .iter()
                    .flat_map(|p| p.hooks.iter().cloned());
                self.completed_hooks.extend(production);
            }
        }
        if self.package_sha256.is_none() && stage != Stage::Rollback {
            // A later stage of the release (production) knows its package, and where its artifact can be
            // fetched again, by the record staging wrote.
            let staged = state
                .slots
                .values()
                .find(|s| s.release.as_deref() == Some(self.opts.release_id.as_str()));
            self.package_sha256 = staged.and_then(|s| s.package_sha256.clone());
            if self.artifact.is_none() {
                self.artifact = staged.and_then(|s| s.artifact.clone());
            }
        }
        // Staging judges the package against the stack (what App Service would start, how dependencies
        // get installed), so the package is built, when it was not given, before the plan: building
        // changes nothing in Azure.
        let mut layout = None;
        if stage == Stage::Staging && matches!(self.spec.app.kind, AppKind::Code { .. }) {
            self.build_package().await?;
            if let Some(package) = &self.package {
                layout = Some(
                    crate::package::PackageFiles::from_zip(package)
                        .map_err(|source| Failure::failed(Error::Package { source }))?,
                );
            }
        }
        let build = BuildInfo {
            release_id: self.opts.release_id.clone(),
            release_name: Some(self.opts.release_name.clone()),
            package_sha256: self.package_sha256.clone(),
            rollback_to: self.opts.rollback_to.clone(),
            package_later: false,
            assume_staged: false,
            layout,
        };
        let plan = plan::compute(PlanInput {
            target: self.opts.target_spec.as_ref(),
            spec: self.spec,
            stage,
            environment: self.opts.environment.as_deref(),
            state: &state,
            build: &build,
        })
        .map_err(|source| {
            Failure::failed(Error::Plan {
                stage,
                source: Box::new(source),
            })
        })?;
        // Every secret is read and registered before anything of the stage is printed (its plan, hook
        // output), in every stage, rollback and resume included: reading changes nothing.
        self.register_secrets_first(&plan).await?;
        {
            // Folded: the plan is long, and the steps' result lines are what a reader scans first.
            let _group = self.log().group(&format!("Plan: {stage} of {}", plan.app));
            self.log().info(plan.render().trim_end());
        }
        self.stage.plan = Some(plan.clone());
        let mut problems: Vec<String> = plan
            .problems()
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect();
        // The journal must fit next to the site's other tags and this run's claim on the lock.
        let mut with_claim = state.tags.clone();
        with_claim.extend(self.my_claim(0, true).to_tags());
        if problems.is_empty()
            && let Err(err) = self
                .projected_journal(&plan, &state)
                .and_then(|journal| journal.check_fits(&with_claim))
        {
            problems.push(format!("journal-tags: {err}"));
        }
        // A plan without slots is refused on its own: the other checks' advice would not help.
        let no_slots = plan
            .preflight
            .iter()
            .any(|c| c.name == "hosting-plan" && !c.ok);
        if let (true, Some(no)) = (no_slots, state.hosting.no_slots()) {
            return Err(Failure::failed(Error::NoDeploymentSlots {
                app: plan.app.clone(),
                plan: no.plan,
                advice: no.advice,
            }));
        }
        if !problems.is_empty() {
            return Err(Failure::failed(Error::Preflight { stage, problems }));
        }
        let total = plan.steps.len().max(1);
        for (done, step) in plan.steps.iter().enumerate() {
            // The step shows where the stage is, step by step (gates and the watch report their own).
            self.progress = ((done * 100 / total) as u8, (100 / total) as u8);
            self.log().progress(
                self.progress.0,
                &format!("{stage}: {}", step.action.describe()),
            );
            if self.ctx.cancel.is_cancelled() {
                let description = step.action.describe();
                self.abandon().await;
                return Err(Failure::cancelled(Error::Cancelled {
                    step: Some(description),
                    during: None,
                }));
            }
            if let Err(failure) = self.timed(step).await {
                if failure.result == RunResult::Cancelled || self.ctx.cancel.is_cancelled() {
                    self.abandon().await;
                    return Err(Failure::cancelled(failure.error));
                }
                let result = self.recover(&plan).await;
                return Err(Failure::new(result, failure.error));
            }
        }
        if stage == Stage::Rollback && (self.swapped || self.image_set.is_some()) {
            // A success, and news: the pipeline shows the step as succeeded with issues.
            let target = crate::identity::label(
                plan.release_name.as_deref().unwrap_or_default(),
                &plan.release_id,
            );
            self.log()
                .warning(&format!("Production was rolled back to release {target}"));
        }
        // The step's progress bar ends full: the last step began at less than 100%.
        self.log().progress(100, &format!("{stage}: done"));
        Ok(())
    }

    /// Runs one step and logs one line with its duration.
    pub(super) async fn timed(&mut self, step: &Step) -> Result<(), Failure> {
        let description = step.action.describe();
        let started = Instant::now();
        let result = {
            // One fold per step that has something to show (a hook's output, probes, waits), its result
            // line outside it: the log reads as one line per step. Book-keeping steps print only that line.
            let log = self.ctx.log.clone();
            let _group = folds(&step.action).then(|| log.group(&description));
            // A long step keeps the progress moving (through a gate's or watch's window, or its elapsed
            // time), so the step never sits on one number for minutes.
            let _ticker = long_step(&step.action).map(|window| {
                self.tick_progress(format!("{}: {description}", self.stage.stage), window)
            });
            self.execute(&step.action).await
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        let ok = result.is_ok();
        let note = result.as_ref().err().map(|f| chain(&f.error).join(": "));
        let mark = if ok { "done" } else { "FAILED" };
        self.log().info(&format!(
            "[{mark}] {description} ({})",
            format_ms(duration_ms)
        ));
        self.stage.steps.push(StepRecord {
            description,
            ok,
            duration_ms,
            note,
        });
        result
    }

    /// Reports progress every second until the guard is dropped: through `window` when the step's length is
    /// known, else the elapsed time only.
    pub(super) fn tick_progress(
        &self,
        what: String,
        window: Option<Duration>,
    ) -> tokio_util::sync::DropGuard {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let log = self.ctx.log.clone();
        let (base, span) = self.progress;
        tokio::spawn(async move {
            let started = Instant::now();
            loop {
                tokio::select! {
                    () = stopped.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let elapsed = started.elapsed();
                let share = window.map_or(0.0, |w| {
                    (elapsed.as_secs_f64() / w.as_secs_f64().max(1.0)).min(1.0)
                });
                log.progress(
                    base.saturating_add((f64::from(span) * share) as u8),
                    &format!("{what} ({}s)", elapsed.as_secs()),
                );
            }
        });
        stop.drop_guard()
    }
}

/// A step that can take long: `Some(window)` when its length is known (a gate's timeout, a watch's
/// window), `Some(None)` when only its elapsed time can be shown.
pub(super) fn long_step(action: &Action) -> Option<Option<Duration>> {
    match action {
        Action::HealthGate { gate, .. } => Some(Some(gate.timeout)),
        Action::Watch { watch, .. } => Some(Some(watch.window)),
        Action::DeployPackage { .. }
        | Action::UseKeptPackage { .. }
        | Action::Swap { .. }
        | Action::ApplySlotConfig { .. }
        | Action::RunHook { .. }
        | Action::UndoHook { .. }
        | Action::CreateSlot { .. } => Some(None),
        _ => None,
    }
}

/// Whether a step's own output (a hook's, probes, waits for Azure) is folded under it in the log.
pub(super) fn folds(action: &Action) -> bool {
    matches!(
        action,
        Action::BuildPackage { .. }
            | Action::DeployPackage { .. }
            | Action::UseKeptPackage { .. }
            | Action::RunHook { .. }
            | Action::UndoHook { .. }
            | Action::HealthGate { .. }
            | Action::Watch { .. }
            | Action::Swap { .. }
            | Action::ApplySlotConfig { .. }
            | Action::SetSettings { .. }
            | Action::SetConnectionStrings { .. }
            | Action::SetImage { .. }
    )
}
