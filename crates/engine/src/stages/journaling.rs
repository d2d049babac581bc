//! The journal and records a stage writes around every irreversible step: site tags, each slot's deployment record, the release history.

use super::*;

impl Exec<'_> {
    /// The largest journal this run can write, so Azure's tag limits are checked before the first change
    /// instead of failing a journal write halfway through a release.
    pub(super) fn projected_journal(
        &self,
        plan: &Plan,
        state: &LiveState,
    ) -> Result<JournalTags, Error> {
        let mut journal = JournalTags::from_tags(&state.tags)?;
        let release = self.opts.release_id.clone();
        journal.release = Some(release.clone());
        journal.phase = Some(Phase::RollingBack);
        journal
            .slots
            .insert(SlotName::production(), release.clone());
        if let Some(slot) = self.staging_slot() {
            journal.slots.insert(slot.clone(), release);
        }
        let production = state.production();
        if matches!(self.spec.app.kind, crate::spec::AppKind::Container { .. }) {
            journal.previous_image = production
                .and_then(|p| p.linux_fx_version.clone())
                .or(journal.previous_image);
        }
        for step in &plan.steps {
            if let Action::SetSettings { slot, changes } = &step.action
                && slot.is_production()
            {
                for change in changes.iter().filter(|c| {
                    matches!(c.after, Shown::Plain(_))
                        && !matches!(c.before, Some(Shown::Secret(_)))
                }) {
                    journal.previous_settings.insert(
                        change.name.clone(),
                        production.and_then(|p| p.settings.get(&change.name).cloned()),
                    );
                }
            }
        }
        Ok(journal)
    }

    /// Writes the journal with one `Merge` of its own tags (claims and foreign tags untouched), then
    /// deletes the tags it emptied. Under the settle token: a journal write that has begun finishes
    /// after a cancel (within what is left of the stop), so the journal says where the release stopped.
    pub(super) async fn write_tags(&self) -> Result<(), Error> {
        let port = &self.ctx.port;
        let live = port.tags(&self.settle).await?;
        let merge = self.journal.merge_from(&live);
        port.merge_tags(&merge, &self.settle).await?;
        let leftovers = JournalTags::leftovers(&merge);
        if !leftovers.is_empty() {
            // Only while still empty: a value is never lost to this clean-up.
            port.delete_tags(&leftovers, &self.settle).await?;
        }
        Ok(())
    }

    /// The slot the staging stage deploys to; a run's `environment` names it only in the staging stage,
    /// where it is the environment the plan applied.
    pub(super) fn staging_slot(&self) -> Option<&SlotName> {
        let environment = self
            .opts
            .environment
            .as_deref()
            .filter(|_| self.stage.stage == Stage::Staging);
        self.spec.staging_slot(environment)
    }

    pub(super) fn record(&self, phase: Phase) -> DeploymentRecord {
        DeploymentRecord {
            release: self.opts.release_id.clone(),
            release_name: self.opts.release_name.clone(),
            phase: phase.as_str().to_owned(),
            slots: self.journal.slots.clone(),
            previous_image: self.journal.previous_image.clone(),
            last_known_good: self.journal.last_known_good.clone(),
            hooks: self.stage.hooks.clone(),
            package_sha256: self.package_sha256.clone(),
            artifact: self.artifact.clone(),
            owned: self.journal.owned.clone(),
        }
    }

    /// Records that the stage reached `phase`: the journal's new state and its effects come from
    /// [`machine::next`]; this only gathers the facts and interprets the effects.
    pub(super) async fn write_journal(&mut self, phase: Phase) -> Result<(), Failure> {
        let staging_slot = self.staging_slot();
        let released = (phase == Phase::Released).then(|| self.history_entry());
        let rollback_target = self
            .stage
            .plan
            .as_ref()
            .filter(|_| self.stage.stage == Stage::Rollback)
            .map(|p| p.release_id.clone());
        let image_before = self
            .production_image
            .clone()
            .filter(|_| self.image_set.is_none());
        let event = machine::Event {
            stage: self.stage.stage,
            phase,
            release: &self.opts.release_id,
            staging_slot,
            source_slot: self.spec.production.as_ref().map(|p| &p.source_slot),
            swapped: self.swapped,
            image_before: image_before.as_deref(),
            released,
            rollback_target: rollback_target.as_deref(),
            routing: &self.production_routing,
        };
        let (mut journal, effects) = machine::next(&self.journal, &event);
        if let Some(owns) = self.stage.plan.as_ref().and_then(|p| p.owns.as_ref()) {
            // Recorded from the first journal write on: a name taken out stays owned while a slot still
            // holds it, so a run that stops before its removals leaves the next one the same work.
            journal.owned.get_or_insert_with(BTreeMap::new).insert(
                owns.slot.clone(),
                owns.to_owned_names(&self.opts.release_id),
            );
        }
        self.journal = journal;
        for effect in effects {
            match effect {
                machine::Effect::RestoreProductionSettings => {
                    self.restore_production_settings().await;
                }
                machine::Effect::WriteTags => self
                    .write_tags()
                    .await
                    .map_err(port_err("write the journal"))?,
                machine::Effect::PutRecord { slot } => {
                    // Part of the journal: the slot's record is how the next run reads what it holds.
                    let record = self.record(phase);
                    self.ctx
                        .port
                        .put_record(&slot, &self.opts.release_id, &record, &self.settle)
                        .await
                        .map_err(port_err("write the deployment record"))?;
                }
            }
        }
        Ok(())
    }

    /// The history entry of this release, once it passed its watch: how to get it back (its image, or the
    /// artifact its package came from) and the run that released it.
    pub(super) fn history_entry(&self) -> crate::history::Entry {
        let image = match &self.spec.app.kind {
            AppKind::Container { repository, tag } => Some(format!("{repository}:{tag}")),
            AppKind::Code { .. } => None,
        };
        let holder = &self.opts.lock.holder;
        let run = holder.get("runId").map(|id| {
            let pipeline = holder
                .get("pipeline")
                .map_or(String::new(), |p| format!("pipeline {p}, "));
            format!("{pipeline}run {id}")
        });
        crate::history::Entry {
            id: self.opts.release_id.clone(),
            name: self.opts.release_name.clone(),
            released_unix: self.ctx.port.now_unix(),
            image,
            run,
            package_sha256: self.package_sha256.clone(),
            artifact: self.artifact.clone(),
            outcome: crate::history::Outcome::Released,
        }
    }
}
