//! What a failed or cancelled stage does: the plan's failure steps that apply to what happened, production's settings restored, the journal left for the next run.

use super::*;

impl Exec<'_> {
    /// After a failure: the plan's failure steps that apply to what happened. Returns the stage's result.
    pub(super) async fn recover(&mut self, plan: &Plan) -> RunResult {
        let mut result = RunResult::Failed;
        if !self.lock_held() {
            // Refused by the lock, or failed before taking it: nothing was changed, and a run without the
            // lock must not change anything now, the journal included.
            return result;
        }
        let mut restore_failed = false;
        // The swap back was under way when the run was cancelled: Azure finishes a swap it accepted, so
        // which release production runs is not known here.
        let mut restore_unknown = false;
        let damage = machine::Damage {
            stage: self.stage.stage,
            swapped: self.swapped,
            applied_preview: self.applied_preview,
            image_set: self.image_set.is_some(),
            hooks_ran: !self.completed_hooks.is_empty(),
            lock_held: self.lock_held(),
        };
        let production_changed = damage.swapped || damage.image_set;
        let applies = machine::recovery(plan.on_failure.iter().map(|s| &s.action), &damage);
        let mut release_lock = None;
        for (step, applies) in plan.on_failure.iter().zip(applies) {
            if !applies {
                continue;
            }
            if matches!(step.action, Action::ReleaseLock) {
                // Given back last: the journal and production's own settings below are still written
                // under it, so no other run starts on the app before they are.
                release_lock = Some(step);
                continue;
            }
            if matches!(step.action, Action::RestoreRouting) {
                // A write a stop must still make, as production's settings are: under the settle token and
                // without the run's fence, so a cancelled canary still takes its share of traffic back.
                if let Err(Failure { error: err, .. }) = self.restore_routing().await {
                    self.log().error(&format!(
                        "Production's traffic routing rules could not be put back; the next run puts them back from the journal: {}",
                        chain(&err).join(": ")
                    ));
                }
                continue;
            }
            if restore_failed {
                // Production still runs the release: its gate, the undo of its hooks and a `rolledBack`
                // journal would all describe a rollback that did not happen.
                continue;
            }
            let restoring = matches!(step.action, Action::Swap { .. } | Action::SetImage { .. });
            // A failure while recovering is logged and recovery goes on: every remaining step still helps.
            let outcome = self.timed(step).await;
            if restoring {
                match outcome {
                    Ok(()) => {
                        result = RunResult::RolledBack;
                        self.restore_production_settings().await;
                    }
                    Err(Failure { error: err, .. })
                        if self.ctx.cancel.is_cancelled() || err.is_cancelled() =>
                    {
                        restore_failed = true;
                        restore_unknown = true;
                        self.log().warning(&format!(
                            "The run was cancelled while the automatic swap back was running; Azure finishes a swap it accepted, so production may already run the previous release again. The next run (the rollback stage) reads what each slot holds and finishes the rollback: {}",
                            chain(&err).join(": ")
                        ));
                    }
                    Err(Failure { error: err, .. }) => {
                        restore_failed = true;
                        self.log().error(&format!(
                            "The automatic rollback failed, production still runs release {}: {}; run the rollback stage to retry it",
                            self.opts.release_name,
                            chain(&err).join(": ")
                        ));
                    }
                }
            }
        }
        if restore_unknown {
            // Unsettled on purpose: the next run reconciles the slots from their deployment records.
            let _ = self.write_journal(Phase::RollingBack).await;
        } else if restore_failed {
            // `failed` with the slots as they are keeps the rollback stage's way open: it sees production
            // holding this release and swaps the last known-good one back.
            let _ = self.write_journal(Phase::Failed).await;
        }
        if self.stage.stage == Stage::Production && !production_changed {
            // The swap did not happen: production's own settings go back with its own release.
            self.restore_production_settings().await;
            // Production was never touched: the slot is still staged and the production stage can be retried.
            let _ = self.write_journal(Phase::Staged).await;
        }
        // The lock can be lost while recovering (taken over once stale): then it is not ours to give.
        if let Some(step) = release_lock
            && self.lock_held()
        {
            let _ = self.timed(step).await;
        }
        result
    }

    /// Puts back the production settings this run wrote over (best effort, logged): production runs the
    /// previous release again and must run it with that release's settings.
    pub(super) async fn restore_production_settings(&mut self) {
        // This run's own record (secret values included) first; the journal's covers an earlier run's.
        let mut before = std::mem::take(&mut self.production_settings_before);
        let recorded = std::mem::take(&mut self.journal.previous_settings);
        for (name, value) in recorded.clone() {
            before.entry(name).or_insert(value);
        }
        // Only this run's: a connection string's value is a secret, which the journal never holds.
        let strings = std::mem::take(&mut self.production_connection_strings_before);
        if before.is_empty() && strings.is_empty() {
            return;
        }
        let set: BTreeMap<String, SettingValue> = before
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), SettingValue::Plain(v.clone()?))))
            .collect();
        let remove: BTreeSet<String> = before
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        let started = Instant::now();
        let mut outcome = Ok(());
        // Under the settle token: a cancelled run still puts production's own settings back.
        if !set.is_empty() {
            outcome = self
                .ctx
                .port
                .set_settings(&SlotName::production(), &set, &self.settle)
                .await;
        }
        if outcome.is_ok() && !remove.is_empty() {
            outcome = self
                .ctx
                .port
                .remove_settings(&SlotName::production(), &remove, &self.settle)
                .await;
        }
        if outcome.is_ok() && !strings.is_empty() {
            outcome = self.restore_production_connection_strings(&strings).await;
        }
        let description = if strings.is_empty() {
            format!(
                "restore {} production setting(s) this release wrote",
                before.len()
            )
        } else {
            format!(
                "restore {} production setting(s) and {} connection string(s) this release wrote",
                before.len(),
                strings.len()
            )
        };
        let note = outcome.as_ref().err().map(|e| chain(e).join(": "));
        if note.is_some() {
            // Kept in the journal, so the rollback stage can try again; connection strings only for a
            // later attempt of this run.
            self.journal.previous_settings = recorded;
            self.production_connection_strings_before = strings;
        }
        self.log().info(&format!(
            "[{}] {description} ({})",
            if note.is_none() { "done" } else { "FAILED" },
            format_ms(started.elapsed().as_millis() as u64)
        ));
        self.stage.steps.push(StepRecord {
            description,
            ok: note.is_none(),
            duration_ms: started.elapsed().as_millis() as u64,
            note,
        });
    }

    /// Puts production's connection strings back as the stage found them (under the settle token, like the
    /// settings).
    async fn restore_production_connection_strings(
        &self,
        strings: &BTreeMap<String, Option<ConnectionStringState>>,
    ) -> Result<(), Error> {
        let production = SlotName::production();
        let set: BTreeMap<String, ConnectionStringValue> = strings
            .iter()
            .filter_map(|(name, was)| {
                let was = was.as_ref()?;
                Some((
                    name.clone(),
                    ConnectionStringValue {
                        kind: was.kind.clone(),
                        value: SettingValue::Plain(was.value.clone()),
                    },
                ))
            })
            .collect();
        let remove: BTreeSet<String> = strings
            .iter()
            .filter(|(_, was)| was.is_none())
            .map(|(name, _)| name.clone())
            .collect();
        if !set.is_empty() {
            self.ctx
                .port
                .set_connection_strings(&production, &set, &self.settle)
                .await?;
        }
        if !remove.is_empty() {
            self.ctx
                .port
                .remove_connection_strings(&production, &remove, &self.settle)
                .await?;
        }
        Ok(())
    }

    /// Cancellation: record where the release stopped and give the lock back, within the stop's budget.
    /// Both write under the settle token, not the run's (already cancelled), so they are made.
    pub(super) async fn abandon(&mut self) {
        self.log().warning(
            "Cancelled: no further steps start; the journal records where the release stopped",
        );
        if !self.lock_held() {
            // A run without the lock changed nothing, and must not start now.
            return;
        }
        if !self.production_touched {
            // Production still runs its own release: it gets its own settings back.
            self.restore_production_settings().await;
        }
        // A cancelled canary takes its share of production's traffic back, whether its swap began or not:
        // the rules before it are right either way, and the journal keeps them until they are back.
        if let Err(Failure { error: err, .. }) = self.restore_routing().await {
            self.log().error(&format!(
                "Production's traffic routing rules could not be put back; the next run puts them back from the journal: {}",
                chain(&err).join(": ")
            ));
        }
        let _ = self.release_lock().await;
    }
}
