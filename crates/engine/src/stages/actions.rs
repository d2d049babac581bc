//! What the steps are made of: hooks (agent and slot), probe targets, secrets, connection strings, the staged-release check, the swap and the package build.

use super::*;

impl Exec<'_> {
    pub(super) fn hook_runner(&self, slot: &SlotName) -> HookRunner {
        let environment = self
            .stage
            .plan
            .as_ref()
            .and_then(|p| p.environment.as_deref())
            .and_then(|name| self.spec.environments.get(name));
        // A connection string's pulled secret is kept under a key that is no variable name.
        let mut secrets: BTreeMap<String, slot_release_pipelines::Secret> = self
            .secrets
            .iter()
            .filter(|(k, _)| !plan::is_connection_string_key(k))
            .map(|(k, v)| (k.clone(), slot_release_pipelines::Secret::new(v.expose())))
            .collect();
        // Agent hooks see the environment's connection strings under the names App Service gives the
        // app (`SQLAZURECONNSTR_Db`), so a migration run on the agent reaches the same database as the
        // app. Every value is a secret for printing, whatever its origin.
        for (name, cs) in environment.iter().flat_map(|e| &e.connection_strings) {
            let value = match &cs.value {
                crate::spec::ConnectionValue::Text(text) => Some(text.clone()),
                crate::spec::ConnectionValue::Secret(_) => self
                    .secrets
                    .get(&plan::connection_string_secret_key(name))
                    .map(|v| v.expose().to_owned()),
            };
            if let Some(value) = value {
                secrets.insert(
                    format!("{}{name}", connection_string_env_prefix(&cs.kind)),
                    slot_release_pipelines::Secret::new(&value),
                );
            }
        }
        let env = hooks::HookEnvironment {
            // Agent hooks see the settings of the environment this stage applies.
            vars: environment.map(|e| e.settings.clone()).unwrap_or_default(),
            secrets,
            remove: Vec::new(),
        };
        HookRunner::new(
            self.log().clone(),
            HookRunnerConfig::new(&self.opts.hook_dir),
            env,
        )
        .with_remote(Arc::new(SlotCommand::new(self.ctx.port.clone(), slot)))
    }

    pub(super) fn find_hook(&self, name: &str) -> Option<HookSpec> {
        let staging = self.spec.staging.iter().flat_map(|s| s.hooks.iter());
        let production = self.spec.production.iter().flat_map(|p| p.hooks.iter());
        let mut all = staging.chain(production);
        all.find(|h| h.name == name).cloned()
    }

    /// Where slot hooks run: the slot production swaps from in the production stage, else the staging
    /// slot; without a staging stage, the slot production's own hooks ran in.
    pub(super) fn hook_slot(&self) -> SlotName {
        let source = self.spec.production.as_ref().map(|p| &p.source_slot);
        let slot = match self.stage.stage {
            Stage::Production => source,
            _ => self.staging_slot().or(source),
        };
        slot.cloned().unwrap_or_else(SlotName::production)
    }

    pub(super) async fn target(&self, slot: &SlotName) -> Result<ProbeTarget, Failure> {
        let base_url = self
            .ctx
            .port
            .slot_url(slot, &self.ctx.cancel)
            .await
            .map_err(port_err("address the slot"))?;
        Ok(ProbeTarget {
            base_url,
            label: slot.to_string(),
        })
    }

    /// What a gate or the watch of `slot` probes with: the port's prober, or, for a check that asks for a
    /// function key, one sending the slot's key, read now (the slot's own, whatever a swap moved) and
    /// registered with the log's masking before anything can print it. It is held nowhere else: not in
    /// the plan, the journal or the release record.
    pub(super) async fn prober_for(
        &self,
        slot: &SlotName,
        check: &crate::health::HealthCheck,
    ) -> Result<std::sync::Arc<dyn crate::health::Prober>, Failure> {
        let port = &self.ctx.port;
        if check.function_key.is_none() {
            return Ok(port.prober());
        }
        let key = port
            .function_key(slot, &self.ctx.cancel)
            .await
            .map_err(port_err("read the function key the health check sends"))?;
        self.log().register_secret(key.expose());
        Ok(port.keyed_prober(key))
    }

    /// Reads a planned set of secrets (those not read yet), registers each value with the log's masking
    /// the moment it is read, and delivers the ones meant for pipeline variables.
    pub(super) async fn pull_secrets(
        &mut self,
        vault: &str,
        secrets: &[plan::SecretPull],
    ) -> Result<(), Failure> {
        let missing: Vec<String> = secrets
            .iter()
            .filter(|p| !self.secrets.contains_key(&p.key()))
            .map(|p| p.secret.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let values = self
            .ctx
            .port
            .get_secrets(vault, &missing, &self.ctx.cancel)
            .await
            .map_err(port_err("pull secrets"))?;
        // Every value is masked before anything else can print it.
        for value in values.values() {
            self.log().register_secret(value.expose());
        }
        let wanted: Vec<&plan::SecretPull> = secrets
            .iter()
            .filter(|p| !self.secrets.contains_key(&p.key()))
            .collect();
        for pull in wanted {
            let value = values.get(&pull.secret).cloned().ok_or_else(|| {
                Failure::failed(Error::MissingSecret {
                    vault: vault.to_owned(),
                    secret: pull.secret.clone(),
                })
            })?;
            if pull.delivery == crate::spec::SecretDelivery::PipelineVariable {
                self.log()
                    .set_variable(
                        &pull.setting,
                        value.expose(),
                        VariableOptions {
                            secret: true,
                            ..VariableOptions::default()
                        },
                    )
                    .map_err(|source| Failure::failed(Error::PipelineVariable { source }))?;
            }
            self.secrets.insert(pull.key(), value);
        }
        Ok(())
    }

    /// Sets a step's connection strings, stickiness first (so no swap can carry a new value the wrong way;
    /// the lock keeps other releases from swapping between the two writes).
    pub(super) async fn set_connection_strings(
        &mut self,
        slot: &SlotName,
        changes: &[plan::ConnectionStringChange],
    ) -> Result<(), Failure> {
        let mut values = BTreeMap::new();
        for change in changes {
            let value = match &change.write {
                Some(text) => SettingValue::Plain(text.expose().to_owned()),
                None => match self
                    .secrets
                    .get(&plan::connection_string_secret_key(&change.name))
                {
                    Some(secret) => SettingValue::Secret(secret.clone()),
                    None => {
                        return Err(Failure::failed(Error::MissingSecret {
                            vault: String::new(),
                            secret: change.name.clone(),
                        }));
                    }
                },
            };
            values.insert(
                change.name.clone(),
                ConnectionStringValue {
                    kind: change.kind.clone(),
                    value,
                },
            );
            if slot.is_production() {
                self.note_production_connection_string(&change.name);
            }
        }
        let names = |pick: fn(&plan::ConnectionStringChange) -> bool| -> BTreeSet<String> {
            changes
                .iter()
                .filter(|c| pick(c))
                .map(|c| c.name.clone())
                .collect()
        };
        let (stick, unstick) = (names(|c| c.becomes_sticky), names(|c| c.becomes_travelling));
        let port = self.ctx.port.clone();
        let cancel = self.ctx.cancel.clone();
        if !stick.is_empty() || !unstick.is_empty() {
            port.set_sticky_connection_strings(&stick, &unstick, &cancel)
                .await
                .map_err(port_err("change sticky connection string names"))?;
        }
        port.set_connection_strings(slot, &values, &cancel)
            .await
            .map_err(port_err("set connection strings"))
    }

    /// Removes connection strings, then takes the names no slot holds any more off the sticky list.
    pub(super) async fn remove_connection_strings(
        &mut self,
        slot: &SlotName,
        removals: &[plan::SettingRemoval],
    ) -> Result<(), Failure> {
        let names: BTreeSet<String> = removals.iter().map(|r| r.name.clone()).collect();
        if slot.is_production() {
            for name in &names {
                self.note_production_connection_string(name);
            }
        }
        let port = self.ctx.port.clone();
        let cancel = self.ctx.cancel.clone();
        port.remove_connection_strings(slot, &names, &cancel)
            .await
            .map_err(port_err("remove connection strings"))?;
        let unstick: BTreeSet<String> = removals
            .iter()
            .filter(|r| r.unsticks)
            .map(|r| r.name.clone())
            .collect();
        if !unstick.is_empty() {
            port.set_sticky_connection_strings(&BTreeSet::new(), &unstick, &cancel)
                .await
                .map_err(port_err("change sticky connection string names"))?;
        }
        Ok(())
    }

    /// Keeps production's connection string as the stage found it, before this run first changes it, so a
    /// swap that does not happen (or is undone) can put it back: sticky ones stay with the slot.
    fn note_production_connection_string(&mut self, name: &str) {
        let before = self.production_connection_strings.get(name).cloned();
        self.production_connection_strings_before
            .entry(name.to_owned())
            .or_insert(before);
    }

    /// Before the plan is printed: the stage's planned secrets (a missing one fails the run here). Every
    /// other secret the config references was registered once when the run started (see [`run`]).
    pub(super) async fn register_secrets_first(&mut self, plan: &Plan) -> Result<(), Failure> {
        if self.stage.stage == Stage::Build {
            return Ok(());
        }
        for step in &plan.steps {
            if let Action::PullSecrets { vault, secrets, .. } = &step.action {
                self.pull_secrets(vault, secrets).await?;
            }
        }
        Ok(())
    }

    /// Under the lock, immediately before the swap into production: the slot still holds this release
    /// (what the plan saw may have changed since: another run's staging, a manual deployment).
    pub(super) async fn recheck_staged(&self, source: &SlotName) -> Result<(), Failure> {
        let state = self.read_state().await?;
        let holds = state.slot(source).and_then(|s| s.release.clone());
        if holds.as_deref() == Some(self.opts.release_id.as_str()) {
            return Ok(());
        }
        if state.production().and_then(|s| s.release.as_deref())
            == Some(self.opts.release_id.as_str())
        {
            // An earlier run of this release swapped already (the swap ended after it died).
            return Ok(());
        }
        Err(Failure::failed(Error::NotStaged {
            slot: source.to_owned(),
            holds: holds.unwrap_or_else(|| "no release of Slot Release".to_owned()),
            release: self.opts.release_name.clone(),
        }))
    }

    /// Swaps, waiting out an operation still running on the app (e.g. the swap of an interrupted run).
    /// When that operation turns out to have been the same swap, the swap is done and not repeated.
    pub(super) async fn swap(&self, source: &SlotName, target: &SlotName) -> Result<(), Failure> {
        let port = &self.ctx.port;
        let deadline = Instant::now() + SWAP_CONFLICT_WAIT;
        // What the target holds once this swap is done: if the running operation leaves it so (the
        // same swap, or the swap back of a run that died), swapping again would undo it.
        let expected = self.slot_releases.get(source).cloned();
        loop {
            let err = match port.swap(source, target, &self.ctx.cancel).await {
                Ok(()) => return Ok(()),
                Err(err) => err,
            };
            if !err.is_conflict() || Instant::now() >= deadline || self.ctx.cancel.is_cancelled() {
                return Err(port_err("swap")(err));
            }
            self.log()
                .info("Another operation is running on the app; waiting for it to finish");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
                () = self.ctx.cancel.cancelled() => return Err(port_err("swap")(err)),
            }
            let state = self.read_state().await?;
            let serving = state.slot(target).and_then(|s| s.release.as_deref());
            if let Some(expected) = expected.as_deref()
                && serving == Some(expected)
            {
                self.log().info(&format!(
                    "The running operation was this swap: slot {target} already holds {expected}"
                ));
                return Ok(());
            }
            if target.is_production()
                && serving == Some(self.opts.release_id.as_str())
                && !self.swapped
            {
                self.log().info(
                    "The running operation was this release's swap: production already serves it",
                );
                return Ok(());
            }
        }
    }

    pub(super) async fn build_package(&mut self) -> Result<(), Failure> {
        let AppKind::Code { root, exclude } = &self.spec.app.kind else {
            return Ok(());
        };
        if let Some(package) = &self.package {
            // Given, or built and verified before the stage started (`artifact::prepare`): built once.
            self.log().info(&format!(
                "Package {} prepared before the stage: not built again",
                package.display()
            ));
            return Ok(());
        }
        let mut spec = package::PackageSpec::new(root.clone());
        spec.exclude = exclude.clone();
        let run = &self.opts.build_run;
        let info = package::BuildInfo {
            version: self.opts.release_id.clone(),
            commit: run.source_version.clone(),
            build_id: run
                .build_id
                .clone()
                .unwrap_or_else(|| self.opts.release_id.clone()),
            created_from: run
                .repository_name
                .clone()
                .unwrap_or_else(|| "local build".to_owned()),
        };
        let options = package::BuildOptions {
            progress: Some(self.log().clone()),
            cancel: self.ctx.cancel.clone(),
            ..package::BuildOptions::default()
        };
        let built =
            match package::build_in_background(&spec, &info, &self.opts.work_dir, &options).await {
                Ok(built) => built,
                Err(package::PackageError::Cancelled) => {
                    return Err(Failure::cancelled(Error::Cancelled {
                        step: None,
                        during: Some("build the package".to_owned()),
                    }));
                }
                Err(source) => return Err(Failure::failed(Error::Package { source })),
            };
        self.log().info(&format!(
            "Package {} ({} bytes, sha256 {})",
            built.path.display(),
            built.size,
            built.sha256.as_str()
        ));
        self.package_sha256 = Some(built.sha256.as_str().to_owned());
        self.package = Some(built.path);
        Ok(())
    }
}

/// The environment variable prefix App Service gives a connection string of `kind` (as ARM spells it);
/// the config admits only known types, so `CUSTOMCONNSTR_` is never reached for one from release.yml.
fn connection_string_env_prefix(kind: &str) -> &'static str {
    slot_release_config::ConnectionStringType::try_from(kind.to_owned())
        .map_or("CUSTOMCONNSTR_", |t| t.env_prefix())
}
