//! The one `match` on a plan step's action: what `plan` shows is what runs.

use super::*;

impl Exec<'_> {
    pub(super) async fn execute(&mut self, action: &Action) -> Result<(), Failure> {
        let port = self.ctx.port.clone();
        let cancel = self.ctx.cancel.clone();
        if action.changes_the_app() {
            // The fencing check: a run whose lock was taken over stops here, before the change.
            self.fence(&action.describe()).await?;
        }
        match action {
            Action::AcquireLock => self.acquire_lock().await?,
            Action::ReleaseLock => self
                .release_lock()
                .await
                .map_err(port_err("release the lock"))?,
            Action::WriteJournal { phase } => self.write_journal(*phase).await?,
            Action::CreateSlot { slot } => port
                .create_slot(slot, &cancel)
                .await
                .map_err(port_err("create the slot"))?,
            Action::PullSecrets { vault, secrets, .. } => self.pull_secrets(vault, secrets).await?,
            Action::SetSettings { slot, changes } => {
                let mut values = BTreeMap::new();
                for change in changes {
                    let value = match &change.after {
                        Shown::Plain(v) => SettingValue::Plain(v.clone()),
                        Shown::Secret(_) => match self.secrets.get(&change.name) {
                            Some(secret) => SettingValue::Secret(secret.clone()),
                            None => {
                                return Err(Failure::failed(Error::MissingSecret {
                                    vault: String::new(),
                                    secret: change.name.clone(),
                                }));
                            }
                        },
                    };
                    values.insert(change.name.clone(), value);
                    // Never a value that may be a secret: only plain values replaced by plain values.
                    if slot.is_production()
                        && matches!(change.after, Shown::Plain(_))
                        && !matches!(change.before, Some(Shown::Secret(_)))
                    {
                        // The journal keeps the first value seen: a retry must not record its own.
                        self.journal
                            .previous_settings
                            .entry(change.name.clone())
                            .or_insert_with(|| self.production_settings.get(&change.name).cloned());
                    }
                    if slot.is_production() {
                        // Kept before writing, so a swap that does not happen (or is undone) can put
                        // production's own values back: sticky settings stay with the slot.
                        self.production_settings_before
                            .entry(change.name.clone())
                            .or_insert_with(|| self.production_settings.get(&change.name).cloned());
                    }
                }
                let names = |pick: fn(&SettingChange) -> bool| -> BTreeSet<String> {
                    changes
                        .iter()
                        .filter(|c| pick(c))
                        .map(|c| c.name.clone())
                        .collect()
                };
                let stick = names(|c| c.becomes_sticky);
                let unstick = names(|c| c.becomes_travelling);
                if slot.is_production() && !self.journal.previous_settings.is_empty() {
                    // Recorded before the write, so a run killed after it still lets a rollback undo it.
                    self.write_tags()
                        .await
                        .map_err(port_err("record production's settings"))?;
                }
                // Stickiness first, so no swap can ever carry a new value the wrong way; the lock keeps
                // other releases from swapping between the two writes.
                if !stick.is_empty() || !unstick.is_empty() {
                    port.set_sticky(&stick, &unstick, &cancel)
                        .await
                        .map_err(port_err("change sticky setting names"))?;
                }
                port.set_settings(slot, &values, &cancel)
                    .await
                    .map_err(port_err("set settings"))?;
            }
            Action::RemoveSettings { slot, removals } => {
                let names: BTreeSet<String> = removals.iter().map(|r| r.name.clone()).collect();
                if slot.is_production() {
                    for name in &names {
                        // Kept in memory only (the value may be a secret): a swap that does not happen
                        // puts production's own settings back.
                        self.production_settings_before
                            .entry(name.clone())
                            .or_insert_with(|| self.production_settings.get(name).cloned());
                    }
                }
                port.remove_settings(slot, &names, &cancel)
                    .await
                    .map_err(port_err("remove settings"))?;
                // After the values are gone, so no slot is left with a name that would travel.
                let unstick: BTreeSet<String> = removals
                    .iter()
                    .filter(|r| r.unsticks)
                    .map(|r| r.name.clone())
                    .collect();
                if !unstick.is_empty() {
                    port.set_sticky(&BTreeSet::new(), &unstick, &cancel)
                        .await
                        .map_err(port_err("change sticky setting names"))?;
                }
            }
            Action::SetConnectionStrings { slot, changes } => {
                self.set_connection_strings(slot, changes).await?;
            }
            Action::RemoveConnectionStrings { slot, removals } => {
                self.remove_connection_strings(slot, removals).await?;
            }
            Action::SetSiteConfig { slot, changes } => {
                port.set_site_config(slot, &crate::plan::site_settings_of(changes), &cancel)
                    .await
                    .map_err(port_err("set general settings"))?;
            }
            Action::SetStack { slot, after, .. } => port
                .set_site(
                    slot,
                    &SiteChange {
                        startup_command: None,
                        linux_fx_version: Some(after.clone()),
                    },
                    &cancel,
                )
                .await
                .map_err(port_err("set the stack"))?,
            Action::SetStartupCommand { slot, after, .. } => port
                .set_site(
                    slot,
                    &SiteChange {
                        startup_command: Some(after.clone()),
                        linux_fx_version: None,
                    },
                    &cancel,
                )
                .await
                .map_err(port_err("set the startup command"))?,
            Action::SetImage {
                slot,
                before,
                after,
            } => {
                // A second image change in a stage (or any in a rollback) puts the last known-good tag back.
                let restoring = self.stage.stage == Stage::Rollback || self.image_set.is_some();
                self.production_touched |= slot.is_production();
                if slot.is_production() && !restoring {
                    self.journal.previous_image = before.clone();
                }
                self.image_set = Some(after.clone());
                port.set_image(slot, after, &cancel)
                    .await
                    .map_err(port_err("set the image"))?;
                // The slot's deployment record names the release it now runs, which is how the next
                // run reads what production holds.
                let mut record = self.record(Phase::Deployed);
                if self.stage.stage == Stage::Rollback
                    && let Some(plan) = self
                        .stage
                        .plan
                        .as_ref()
                        .filter(|p| !p.release_id.is_empty())
                {
                    // The rollback's target, which may be older than the last known-good release.
                    record.release = plan.release_id.clone();
                    record.release_name = plan
                        .release_name
                        .clone()
                        .unwrap_or_else(|| plan.release_id.clone());
                } else if restoring && let Some(lkg) = self.journal.last_known_good.clone() {
                    record.release = lkg;
                }
                // Under the settle token: once the image changed, the record naming it must follow.
                port.put_record(slot, &record.release.clone(), &record, &self.settle)
                    .await
                    .map_err(port_err("write the deployment record"))?;
            }
            Action::BuildPackage { .. } => self.build_package().await?,
            Action::ResolveImage { image } => {
                self.log().info(&format!("Image for this release: {image}"));
            }
            Action::UseKeptPackage { slot, sha256 } => {
                let Some(plan) = self.stage.plan.clone() else {
                    return Err(Failure::failed(Error::NothingToRun {
                        step: action.describe(),
                        why: "no plan".into(),
                    }));
                };
                let zip = port
                    .use_kept_package(slot, sha256, &cancel)
                    .await
                    .map_err(port_err("run the kept package"))?;
                self.log().info(&format!(
                    "Slot {slot} runs its kept package {zip} again (sha256 {sha256})"
                ));
                let name = plan.release_name.clone().unwrap_or(plan.release_id.clone());
                let record = DeploymentRecord {
                    release: plan.release_id.clone(),
                    release_name: name,
                    phase: Phase::Deployed.as_str().to_owned(),
                    package_sha256: Some(sha256.clone()),
                    ..self.record(Phase::Deployed)
                };
                port.put_record(slot, &plan.release_id, &record, &self.settle)
                    .await
                    .map_err(port_err("write the deployment record"))?;
            }
            Action::DeployPackage { slot, .. } if self.stage.stage == Stage::Rollback => {
                // A rollback never builds: it deploys the artifact of the release it brings back.
                let (Some(package), Some(plan)) = (self.package.clone(), self.stage.plan.clone())
                else {
                    return Err(Failure::failed(Error::StepFailed {
                        step: action.describe(),
                        source: Box::new(Error::Offline {
                            operation: "deploy a rollback without the release's package".into(),
                        }),
                    }));
                };
                let name = plan.release_name.clone().unwrap_or(plan.release_id.clone());
                port.deploy_zip(
                    slot,
                    &package,
                    &format!("slot-release rollback to {name}"),
                    &cancel,
                )
                .await
                .map_err(port_err("deploy the package"))?;
                // The slot's record names the release it now holds, as staging's would.
                let record = DeploymentRecord {
                    release: plan.release_id.clone(),
                    release_name: name,
                    phase: Phase::Deployed.as_str().to_owned(),
                    package_sha256: self.package_sha256.clone(),
                    ..self.record(Phase::Deployed)
                };
                port.put_record(slot, &plan.release_id, &record, &self.settle)
                    .await
                    .map_err(port_err("write the deployment record"))?;
            }
            Action::DeployPackage {
                slot, substitute, ..
            } => {
                if self.package.is_none() {
                    if let AppKind::Code { root, .. } = &self.spec.app.kind {
                        self.log().info(&format!(
                            "No package given: building one from {}",
                            root.display()
                        ));
                    }
                    self.build_package().await?;
                }
                let Some(package) = self.package.clone() else {
                    return Err(Failure::failed(Error::NothingToRun {
                        step: action.describe(),
                        why: "no package was built or given".into(),
                    }));
                };
                let package = match substitute {
                    Some(plan) => self.substituted_copy(&package, plan).await?,
                    None => package,
                };
                port.deploy_zip(
                    slot,
                    &package,
                    &format!("slot-release {}", self.opts.release_name),
                    &cancel,
                )
                .await
                .map_err(port_err("deploy the package"))?;
            }
            Action::RunHook { name, .. } => {
                let Some(hook) = self.find_hook(name) else {
                    return Err(Failure::failed(Error::NothingToRun {
                        step: action.describe(),
                        why: format!("the config has no hook {name}"),
                    }));
                };
                let runner = self.hook_runner(&self.hook_slot());
                let record = runner.run_command(&hook, CommandKind::Run, &cancel).await;
                let ok = record.outcome.is_success();
                self.stage.hooks.push(HookRecord {
                    name: name.clone(),
                    ok,
                    exit_code: match &record.outcome {
                        hooks::HookOutcome::Succeeded => Some(0),
                        hooks::HookOutcome::Failed { exit_code } => *exit_code,
                        _ => None,
                    },
                    output: record.output.clone(),
                    undone: false,
                });
                if !ok {
                    let cancelled = matches!(record.outcome, hooks::HookOutcome::Cancelled);
                    let error = Error::HookFailed {
                        hook: name.clone(),
                        outcome: record.outcome.to_string(),
                    };
                    return Err(if cancelled {
                        Failure::cancelled(error)
                    } else {
                        Failure::failed(error)
                    });
                }
                self.completed_hooks.push(hook);
            }
            Action::UndoHook { .. } => {
                let runner = self.hook_runner(&self.hook_slot());
                let refs: Vec<&HookSpec> = self.completed_hooks.iter().collect();
                // Undo must finish even when the run is being cancelled: a half-undone migration is worse.
                let report = runner.undo(&refs, &CancellationToken::new()).await;
                for undone in &report.undone {
                    if let Some(h) = self.stage.hooks.iter_mut().find(|h| h.name == undone.hook) {
                        h.undone = undone.outcome.is_success();
                    }
                }
                self.completed_hooks.clear();
                if !report.not_undone.is_empty() {
                    return Err(Failure::failed(Error::HookFailed {
                        hook: report.not_undone.join(", "),
                        outcome: "could not be undone".to_owned(),
                    }));
                }
            }
            Action::HealthGate { slot, gate } => {
                let target = self.target(slot).await?;
                let client = self.prober_for(slot, &gate.check).await?;
                // A crashed app fails the gate at once, quoting its log, instead of at the timeout.
                let crash = crate::port::SlotCrashCheck {
                    port: port.clone(),
                    slot: slot.clone(),
                    cancel: cancel.clone(),
                };
                let started = port.now_unix();
                let outcome = health::gate_with(
                    client.as_ref(),
                    &target,
                    gate,
                    Some(&crash),
                    &cancel,
                    self.log(),
                )
                .await;
                // The traffic is judged once the probes pass, over the window from the gate's start.
                let analysed = self
                    .analyse_if_passed(outcome.is_ok(), gate.check.analysis.as_ref(), slot, started)
                    .await;
                let report = match &outcome {
                    Ok(report) => Some(report),
                    Err(err) => err.gate_report(),
                };
                if let Some(r) = report {
                    let passed = r.passed && analysed.as_ref().is_none_or(Result::is_ok);
                    self.record_health(
                        "gate",
                        slot,
                        &r.url,
                        passed,
                        (r.probes_total, r.successes, r.failures),
                    );
                }
                outcome.map_err(health_failure)?;
                if let Some(analysed) = analysed {
                    analysed.map_err(health_failure)?;
                }
            }
            Action::Swap { source, target } => {
                if self.stage.stage == Stage::Production && target.is_production() && !self.swapped
                {
                    self.recheck_staged(source).await?;
                }
                self.production_touched |= target.is_production();
                self.swap(source, target).await?;
                let (a, b) = (
                    self.slot_releases.remove(source),
                    self.slot_releases.remove(target),
                );
                self.slot_releases.extend(
                    [(target.clone(), a), (source.clone(), b)]
                        .into_iter()
                        .filter_map(|(slot, r)| Some((slot, r?))),
                );
                if self.stage.stage == Stage::Rollback && target.is_production() {
                    self.restore_production_settings().await;
                }
                self.swapped = !self.swapped;
            }
            Action::ApplySlotConfig { source, target } => {
                // Set before the call: Azure applies production's settings to the slot and then warms it
                // up, so a phase one that fails (a failed warm-up, a cancel) can leave them applied, and
                // only a reset takes them off again.
                self.applied_preview = true;
                port.apply_slot_config(source, target, &cancel)
                    .await
                    .map_err(port_err("apply production settings to the slot"))?;
            }
            Action::ResetSlotConfig { source } => port
                .reset_slot_config(source, &cancel)
                .await
                .map_err(port_err("cancel the swap preview"))?,
            Action::Route {
                source,
                host,
                percent,
            } => self.route(source, host, *percent).await?,
            Action::RestoreRouting => self.restore_routing().await?,
            Action::Pause { seconds } => self.pause(*seconds).await?,
            Action::Watch { slot, watch } => {
                let target = self.target(slot).await?;
                let client = self.prober_for(slot, &watch.check).await?;
                let started = port.now_unix();
                let outcome =
                    health::watch(client.as_ref(), &target, watch, &cancel, self.log()).await;
                // Production's traffic since the swap is judged once the probes found it healthy.
                let analysed = self
                    .analyse_if_passed(
                        outcome.is_ok(),
                        watch.check.analysis.as_ref(),
                        slot,
                        started,
                    )
                    .await;
                let report = match &outcome {
                    Ok(report) => Some(report),
                    Err(err) => err.watch_report(),
                };
                if let Some(r) = report {
                    let healthy = r.healthy && analysed.as_ref().is_none_or(Result::is_ok);
                    self.record_health(
                        "watch",
                        slot,
                        &r.url,
                        healthy,
                        (r.probes_total, r.successes, r.failures),
                    );
                }
                outcome.map_err(health_failure)?;
                if let Some(analysed) = analysed {
                    analysed.map_err(health_failure)?;
                }
            }
            Action::Nothing => {}
        }
        Ok(())
    }
}

impl Exec<'_> {
    /// A gate's or the watch's traffic analysis, run once its probes passed, over the window from
    /// `started` (Unix seconds); `None` when the probes failed or the check has no analysis.
    async fn analyse_if_passed(
        &self,
        probes_passed: bool,
        analysis: Option<&crate::analysis::Analysis>,
        slot: &SlotName,
        started: i64,
    ) -> Option<Result<crate::analysis::Verdict, Error>> {
        let analysis = analysis.filter(|_| probes_passed)?;
        Some(
            crate::analysis::run(
                self.ctx.port.as_ref(),
                &self.spec.app.name,
                slot,
                analysis,
                started,
                &self.ctx.cancel,
                self.log(),
            )
            .await,
        )
    }

    /// A gate's or the watch's result for the release record (also when it failed: its report says how).
    fn record_health(
        &mut self,
        kind: &str,
        slot: &SlotName,
        url: &str,
        passed: bool,
        (probes, successes, failures): (u32, u32, u32),
    ) {
        self.stage.health.push(HealthRecord {
            kind: kind.to_owned(),
            slot: slot.to_owned(),
            url: url.to_owned(),
            passed,
            probes,
            successes,
            failures,
        });
    }
}

/// A failed or cancelled gate or watch as the stage's failure (an app command's wait too).
pub(super) fn health_failure(err: Error) -> Failure {
    let result = if err.is_cancelled() {
        RunResult::Cancelled
    } else {
        RunResult::Failed
    };
    Failure::new(
        result,
        Error::Health {
            source: Box::new(err),
        },
    )
}
