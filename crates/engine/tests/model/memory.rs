//! An in-memory App Service for model tests: slots, settings, deployment records, tags (with ARM's merge
//! semantics), swaps and health, behind the engine's `Port`, with seeded latency, faults, kills and a log of
//! every call by run, so any interleaving of two runs is a fast, deterministic test.

// The port's error is the engine's `Error`, as large as `stages` allows for it (see its note).
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use slot_release_engine::Error;
use slot_release_engine::health::{HealthCheck, ProbeOutcome, Prober};
use slot_release_engine::journal::{DeploymentRecord, JournalTags, Phase};
use slot_release_engine::lock::CLAIM_PREFIX;
use slot_release_engine::port::{
    CommandResult, ConnectionStringValue, Port, SecretValue, SettingValue, SiteChange, SlotControl,
};
use slot_release_engine::state::{
    ConnectionStringState, LiveState, RoutingRule, SiteSettings, SlotName, SlotState,
};
use tokio_util::sync::CancellationToken;

/// One slot.
#[derive(Debug, Clone, Default)]
pub struct MemSlot {
    pub settings: BTreeMap<String, String>,
    /// Connection strings; they swap like settings unless their name is sticky.
    pub connection_strings: BTreeMap<String, ConnectionStringState>,
    pub linux_fx: Option<String>,
    pub startup: Option<String>,
    /// General settings; a swap leaves them with the slot, as App Service does.
    pub site: SiteSettings,
    /// Deployment records, oldest first (the newest active one names the slot's release).
    pub records: Vec<DeploymentRecord>,
}

impl MemSlot {
    pub fn release(&self) -> Option<String> {
        self.records
            .iter()
            .rev()
            .find(|r| r.phase != "failed")
            .map(|r| r.release.clone())
    }
}

/// What a run did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub run: u32,
    pub what: String,
    /// It changed the app (the lock protocol's own claim writes excluded).
    pub change: bool,
}

/// How a planned fault behaves when its call comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The call fails like a 500.
    Error,
    /// The process dies before the call reaches Azure.
    KillBefore,
    /// The process dies after Azure applied the call.
    KillAfter,
    /// The run is cancelled (SIGTERM) while the call is in flight, after Azure received it: the call
    /// takes effect, and a call made with the run's token reports itself cancelled.
    Cancel,
}

/// A fault at the `at`th changing call of `run`.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub run: u32,
    pub at: usize,
    pub kind: FaultKind,
}

/// A cancel aimed at one call by its name: `run` is cancelled at its `nth` call named `what` (from 1),
/// after Azure received it, as [`FaultKind::Cancel`] does; changing or not.
#[derive(Debug, Clone)]
pub struct CancelAt {
    pub run: u32,
    pub what: String,
    pub nth: usize,
}

#[derive(Debug, Default)]
pub struct World {
    pub slots: BTreeMap<SlotName, MemSlot>,
    pub tags: BTreeMap<String, String>,
    pub sticky: BTreeSet<String>,
    /// Sticky connection string names.
    pub sticky_connection_strings: BTreeSet<String>,
    pub calls: Vec<Call>,
    /// Releases that passed their staging gate (the journal or a record reached `staged` for them).
    pub gated: BTreeSet<String>,
    /// Every release production served, in order.
    pub production_history: Vec<Option<String>>,
    /// Releases whose app answers unhealthy.
    pub unhealthy: BTreeSet<String>,
    /// Runs that are dead: their calls never return.
    pub dead: BTreeSet<u32>,
    pub faults: Vec<Fault>,
    /// Changing calls made so far, per run.
    pub changes: BTreeMap<u32, usize>,
    /// Seeded latency source.
    pub rng: u64,
    /// What listing any vault returns (`secrets.select`).
    pub vault: slot_release_engine::selection::VaultListing,
    /// Cancels aimed at a call by its name.
    pub cancel_at: Vec<CancelAt>,
    /// Calls so far, per run and name.
    pub named_calls: BTreeMap<(u32, String), usize>,
    /// When each run was cancelled by a fault or a [`CancelAt`].
    pub cancelled_at: BTreeMap<u32, tokio::time::Instant>,
    /// An Azure that turns slow as a run stops: a call whose name starts with one of these takes that
    /// much longer once its run is cancelled (the writes a stop must still make).
    pub slow_when_stopping: Vec<(String, Duration)>,
    /// Production's traffic-routing rules (a rule's host is `<slot>.memory.test`, as `read_state` names it).
    pub routing: Vec<RoutingRule>,
    /// Releases that answer unhealthy once production routes a share of its traffic to their slot: a bug
    /// only real users find, which a canary's step gate must catch.
    pub unhealthy_under_traffic: BTreeSet<String>,
}

impl World {
    fn next_latency(&mut self) -> Duration {
        // xorshift: deterministic for a seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        Duration::from_millis(self.rng % 400)
    }

    fn note_production(&mut self) {
        let now = self
            .slots
            .get(&SlotName::production())
            .and_then(MemSlot::release);
        if self.production_history.last() != Some(&now) {
            self.production_history.push(now);
        }
    }
}

/// The port one run uses; every run of a test shares the world.
#[derive(Debug, Clone)]
pub struct MemPort {
    pub world: Arc<Mutex<World>>,
    pub run: u32,
    pub cancel: CancellationToken,
    pub epoch: tokio::time::Instant,
}

fn fail(what: &str) -> Error {
    Error::Offline {
        operation: format!("{what} (injected fault)"),
    }
}

fn cancelled(what: &str) -> Error {
    Error::Cancelled {
        step: None,
        during: Some(what.to_owned()),
    }
}

impl MemPort {
    /// Every call: latency, then the fault plan, then `apply` under the world's lock. As the Azure
    /// client does, `cancel` stops the call: a token cancelled before it sends nothing, a cancel during
    /// the latency abandons it before Azure got it, and a cancel after Azure applied it (the `Cancel`
    /// fault) still reports it cancelled.
    async fn call<T>(
        &self,
        what: &str,
        change: bool,
        cancel: &CancellationToken,
        apply: impl FnOnce(&mut World) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if cancel.is_cancelled() {
            return Err(cancelled(what));
        }
        let latency = {
            let mut w = self.world.lock().unwrap();
            let slow = if self.cancel.is_cancelled() {
                w.slow_when_stopping
                    .iter()
                    .filter(|(name, _)| what.starts_with(name.as_str()))
                    .map(|(_, extra)| *extra)
                    .sum()
            } else {
                Duration::ZERO
            };
            (!w.dead.contains(&self.run)).then(|| w.next_latency() + slow)
        };
        let Some(latency) = latency else {
            return std::future::pending().await;
        };
        tokio::select! {
            () = tokio::time::sleep(latency) => {}
            () = cancel.cancelled() => return Err(cancelled(what)),
        }
        let fault = {
            let mut w = self.world.lock().unwrap();
            let n = w
                .named_calls
                .entry((self.run, what.to_owned()))
                .or_default();
            *n += 1;
            let n = *n;
            let aimed = w
                .cancel_at
                .iter()
                .any(|c| c.run == self.run && c.what == what && c.nth == n);
            if aimed {
                Some(FaultKind::Cancel)
            } else if w.dead.contains(&self.run) {
                None
            } else if change {
                let n = w.changes.entry(self.run).or_default();
                *n += 1;
                let n = *n;
                let run = self.run;
                w.faults
                    .iter()
                    .find(|f| f.run == run && f.at == n)
                    .map(|f| f.kind)
            } else {
                None
            }
        };
        let dead = self.world.lock().unwrap().dead.contains(&self.run);
        if dead {
            std::future::pending::<()>().await;
        }
        match fault {
            Some(FaultKind::Error) => return Err(fail(what)),
            Some(FaultKind::KillBefore) => {
                self.world.lock().unwrap().dead.insert(self.run);
                std::future::pending::<()>().await;
            }
            Some(FaultKind::Cancel) => {
                let now = tokio::time::Instant::now();
                self.world
                    .lock()
                    .unwrap()
                    .cancelled_at
                    .entry(self.run)
                    .or_insert(now);
                self.cancel.cancel();
            }
            _ => {}
        }
        let result = {
            let mut w = self.world.lock().unwrap();
            w.calls.push(Call {
                run: self.run,
                what: what.to_owned(),
                change,
            });
            let r = apply(&mut w);
            w.note_production();
            r
        };
        if fault == Some(FaultKind::KillAfter) {
            self.world.lock().unwrap().dead.insert(self.run);
            std::future::pending::<()>().await;
        }
        if cancel.is_cancelled() {
            // Applied, but the answer never came back: the caller cannot know it happened.
            return Err(cancelled(what));
        }
        result
    }
}

fn only_claims(tags: &BTreeMap<String, String>) -> bool {
    tags.keys().all(|k| k.starts_with(CLAIM_PREFIX))
}

#[async_trait]
impl Port for MemPort {
    async fn read_state(
        &self,
        slots: &[SlotName],
        cancel: &CancellationToken,
    ) -> Result<LiveState, Error> {
        let slots = slots.to_vec();
        self.call("read state", false, cancel, move |w| {
            let mut state = LiveState {
                tags: w.tags.clone(),
                sticky_settings: w.sticky.clone(),
                sticky_connection_strings: w.sticky_connection_strings.clone(),
                routing: w.routing.clone(),
                ..LiveState::default()
            };
            for name in std::iter::once(SlotName::production()).chain(slots) {
                if let Some(s) = w.slots.get(&name) {
                    state.slots.insert(
                        name.clone(),
                        SlotState {
                            settings: s.settings.clone(),
                            connection_strings: s.connection_strings.clone(),
                            linux_fx_version: s.linux_fx.clone(),
                            startup_command: s.startup.clone(),
                            release: s.release(),
                            package_sha256: None,
                            artifact: None,
                            host_name: Some(format!("{name}.memory.test")),
                            site_config: s.site.clone(),
                            windows: None,
                            site_containers: Vec::new(),
                        },
                    );
                }
            }
            Ok(state)
        })
        .await
    }

    async fn create_slot(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<(), Error> {
        let slot = slot.to_owned();
        self.call("create slot", true, cancel, move |w| {
            w.slots.entry(slot).or_default();
            Ok(())
        })
        .await
    }

    async fn set_settings(
        &self,
        slot: &SlotName,
        settings: &BTreeMap<String, SettingValue>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let slot = slot.to_owned();
        let values: BTreeMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.clone(), stored(v)))
            .collect();
        self.call(&format!("set settings on {slot}"), true, cancel, move |w| {
            w.slots.entry(slot).or_default().settings.extend(values);
            Ok(())
        })
        .await
    }

    async fn remove_settings(
        &self,
        slot: &SlotName,
        names: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let (slot, names) = (slot.to_owned(), names.clone());
        self.call(
            &format!("remove settings on {slot}"),
            true,
            cancel,
            move |w| {
                if let Some(s) = w.slots.get_mut(&slot) {
                    remove_names(&mut s.settings, &names);
                }
                Ok(())
            },
        )
        .await
    }

    async fn set_sticky(
        &self,
        stick: &BTreeSet<String>,
        unstick: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let (stick, unstick) = (stick.clone(), unstick.clone());
        self.call("set sticky names", true, cancel, move |w| {
            restick(&mut w.sticky, stick, &unstick);
            Ok(())
        })
        .await
    }

    async fn set_connection_strings(
        &self,
        slot: &SlotName,
        strings: &BTreeMap<String, ConnectionStringValue>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let slot = slot.to_owned();
        let values: BTreeMap<String, ConnectionStringState> = strings
            .iter()
            .map(|(k, v)| {
                let state = ConnectionStringState {
                    kind: v.kind.clone(),
                    value: stored(&v.value),
                };
                (k.clone(), state)
            })
            .collect();
        self.call(
            &format!("set connection strings on {slot}"),
            true,
            cancel,
            move |w| {
                let s = w.slots.entry(slot).or_default();
                s.connection_strings.extend(values);
                Ok(())
            },
        )
        .await
    }

    async fn remove_connection_strings(
        &self,
        slot: &SlotName,
        names: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let (slot, names) = (slot.to_owned(), names.clone());
        self.call(
            &format!("remove connection strings on {slot}"),
            true,
            cancel,
            move |w| {
                if let Some(s) = w.slots.get_mut(&slot) {
                    remove_names(&mut s.connection_strings, &names);
                }
                Ok(())
            },
        )
        .await
    }

    async fn set_sticky_connection_strings(
        &self,
        stick: &BTreeSet<String>,
        unstick: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let (stick, unstick) = (stick.clone(), unstick.clone());
        self.call(
            "set sticky connection string names",
            true,
            cancel,
            move |w| {
                restick(&mut w.sticky_connection_strings, stick, &unstick);
                Ok(())
            },
        )
        .await
    }

    async fn set_site(
        &self,
        slot: &SlotName,
        change: &SiteChange,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let (slot, change) = (slot.to_owned(), change.clone());
        self.call(&format!("set site of {slot}"), true, cancel, move |w| {
            let s = w.slots.entry(slot).or_default();
            if let Some(c) = change.startup_command {
                s.startup = Some(c);
            }
            if let Some(fx) = change.linux_fx_version {
                s.linux_fx = Some(fx);
            }
            Ok(())
        })
        .await
    }

    async fn set_site_config(
        &self,
        slot: &SlotName,
        change: &SiteSettings,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let (slot, change) = (slot.to_owned(), change.clone());
        self.call(
            &format!("set general settings of {slot}"),
            true,
            cancel,
            move |w| {
                let s = &mut w.slots.entry(slot).or_default().site;
                // A PATCH: the fields given, no others.
                s.always_on = change.always_on.or(s.always_on);
                s.http20_enabled = change.http20_enabled.or(s.http20_enabled);
                s.min_tls_version = change.min_tls_version.or(s.min_tls_version.take());
                s.ftps_state = change.ftps_state.or(s.ftps_state.take());
                s.health_check_path = change.health_check_path.or(s.health_check_path.take());
                Ok(())
            },
        )
        .await
    }

    async fn deploy_zip(
        &self,
        slot: &SlotName,
        _: &Path,
        _: &str,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        self.call(&format!("deploy to {slot}"), true, cancel, |_| Ok(()))
            .await
    }

    async fn run_command(
        &self,
        slot: &SlotName,
        _: &str,
        _: Duration,
        cancel: &CancellationToken,
    ) -> Result<CommandResult, Error> {
        self.call(&format!("run a command in {slot}"), true, cancel, |_| {
            Ok(CommandResult {
                exit_code: 0,
                output: String::new(),
            })
        })
        .await
    }

    async fn swap(
        &self,
        source: &SlotName,
        target: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let (source, target) = (source.to_owned(), target.to_owned());
        self.call(&format!("swap {source} into {target}"), true, cancel, move |w| {
            let sticky = w.sticky.clone();
            let mut a = w.slots.remove(&source).unwrap_or_default();
            let mut b = w.slots.remove(&target).unwrap_or_default();
            std::mem::swap(&mut a.records, &mut b.records);
            std::mem::swap(&mut a.linux_fx, &mut b.linux_fx);
            std::mem::swap(&mut a.startup, &mut b.startup);
            // Sticky settings stay with the slot; the others travel with the content.
            let split = |s: &BTreeMap<String, String>| -> (BTreeMap<String, String>, BTreeMap<String, String>) {
                s.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .partition(|(k, _)| sticky.contains(k))
            };
            let (a_sticky, a_travel) = split(&a.settings);
            let (b_sticky, b_travel) = split(&b.settings);
            a.settings = a_sticky.into_iter().chain(b_travel).collect();
            b.settings = b_sticky.into_iter().chain(a_travel).collect();
            let sticky = &w.sticky_connection_strings;
            let split = |s: &BTreeMap<String, ConnectionStringState>| -> (BTreeMap<String, ConnectionStringState>, BTreeMap<String, ConnectionStringState>) {
                s.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .partition(|(k, _)| sticky.contains(k))
            };
            let (a_sticky, a_travel) = split(&a.connection_strings);
            let (b_sticky, b_travel) = split(&b.connection_strings);
            a.connection_strings = a_sticky.into_iter().chain(b_travel).collect();
            b.connection_strings = b_sticky.into_iter().chain(a_travel).collect();
            w.slots.insert(source, a);
            w.slots.insert(target, b);
            Ok(())
        })
        .await
    }

    async fn apply_slot_config(
        &self,
        source: &SlotName,
        _: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        self.call(
            &format!("apply slot config to {source}"),
            true,
            cancel,
            |_| Ok(()),
        )
        .await
    }

    async fn control_slot(
        &self,
        slot: &SlotName,
        control: SlotControl,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        self.call(
            &format!("{} slot {slot}", control.as_str()),
            true,
            cancel,
            |_| Ok(()),
        )
        .await
    }

    async fn delete_slot(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<(), Error> {
        let slot = slot.to_owned();
        self.call("delete slot", true, cancel, move |w| {
            w.slots.remove(&slot);
            Ok(())
        })
        .await
    }

    async fn reset_slot_config(
        &self,
        source: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        self.call(
            &format!("reset slot config of {source}"),
            true,
            cancel,
            |_| Ok(()),
        )
        .await
    }

    async fn set_routing(
        &self,
        rules: &[RoutingRule],
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let rules = rules.to_vec();
        self.call("set routing rules", true, cancel, move |w| {
            w.routing = rules;
            Ok(())
        })
        .await
    }

    async fn tags(&self, cancel: &CancellationToken) -> Result<BTreeMap<String, String>, Error> {
        self.call("read tags", false, cancel, |w| Ok(w.tags.clone()))
            .await
    }

    async fn merge_tags(
        &self,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>, Error> {
        let tags = tags.clone();
        let change = !only_claims(&tags);
        // A journal write is named by the phase it records, so a test can aim at it.
        let what = match tags.get("slotrelease.phase") {
            Some(phase) => format!("merge tags (phase {phase})"),
            None => "merge tags".to_owned(),
        };
        self.call(&what, change, cancel, move |w| {
            w.tags.extend(tags);
            // The journal reaches `staged` only after the slot's gate passed (its record follows).
            let journal =
                JournalTags::from_tags(&w.tags).expect("the engine writes a readable journal");
            if journal.phase == Some(Phase::Staged)
                && let Some(release) = journal.release
            {
                w.gated.insert(release);
            }
            Ok(w.tags.clone())
        })
        .await
    }

    async fn delete_tags(
        &self,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>, Error> {
        let tags = tags.clone();
        let change = !only_claims(&tags);
        self.call("delete tags", change, cancel, move |w| {
            w.tags.retain(|k, v| {
                !tags
                    .iter()
                    .any(|(name, value)| k == name && (value.is_empty() || value == v))
            });
            Ok(w.tags.clone())
        })
        .await
    }

    async fn put_record(
        &self,
        slot: &SlotName,
        _: &str,
        record: &DeploymentRecord,
        cancel: &CancellationToken,
    ) -> Result<(), Error> {
        let (slot, record) = (slot.to_owned(), record.clone());
        self.call(
            &format!("write a record on {slot}"),
            true,
            cancel,
            move |w| {
                if record.phase == "staged" {
                    w.gated.insert(record.release.clone());
                }
                w.slots.entry(slot).or_default().records.push(record);
                Ok(())
            },
        )
        .await
    }

    async fn get_secrets(
        &self,
        _: &str,
        names: &[String],
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, SecretValue>, Error> {
        let names = names.to_vec();
        self.call("read secrets", false, cancel, move |_| {
            Ok(names
                .into_iter()
                .map(|n| (n.clone(), SecretValue::new(format!("value-of-{n}"))))
                .collect())
        })
        .await
    }

    async fn list_secret_names(
        &self,
        _: &str,
        cancel: &CancellationToken,
    ) -> Result<slot_release_engine::selection::VaultListing, Error> {
        self.call("list secrets", false, cancel, |w| Ok(w.vault.clone()))
            .await
    }

    async fn slot_url(&self, slot: &SlotName, _: &CancellationToken) -> Result<url::Url, Error> {
        Ok(url::Url::parse(&format!("https://{slot}.memory.test/")).expect("a valid URL"))
    }

    fn prober(&self) -> Arc<dyn Prober> {
        Arc::new(self.clone())
    }

    fn now_unix(&self) -> i64 {
        1_800_000_000 + self.epoch.elapsed().as_secs() as i64
    }
}

#[async_trait]
impl Prober for MemPort {
    async fn probe(&self, url: &url::Url, _: &HealthCheck) -> ProbeOutcome {
        let slot = url
            .host_str()
            .and_then(|h| h.strip_suffix(".memory.test"))
            .unwrap_or_default()
            .to_owned();
        let healthy = {
            let w = self.world.lock().unwrap();
            let release = w.slots.get(slot.as_str()).and_then(MemSlot::release);
            let routed = w.routing.iter().any(|r| r.name == slot && r.percent > 0.0);
            (!w.dead.contains(&self.run)).then(|| {
                release.is_none_or(|r| {
                    let under_traffic = routed && w.unhealthy_under_traffic.contains(&r);
                    !(w.unhealthy.contains(&r) || under_traffic)
                })
            })
        };
        let Some(healthy) = healthy else {
            return std::future::pending().await;
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        if healthy {
            ProbeOutcome::Healthy { status: 200 }
        } else {
            ProbeOutcome::UnexpectedStatus { status: 503 }
        }
    }
}

/// What the memory world keeps of a value the run writes: a secret as the app would see it.
fn stored(value: &SettingValue) -> String {
    match value {
        SettingValue::Plain(p) => p.clone(),
        SettingValue::Secret(s) => s.expose().to_owned(),
    }
}

/// Removes the named entries of a slot's settings or connection strings, as App Service's
/// read-modify-write of either list does.
fn remove_names<V>(map: &mut BTreeMap<String, V>, names: &BTreeSet<String>) {
    map.retain(|k, _| !names.contains(k));
}

/// Marks names sticky and unmarks others, for either of the site's sticky lists.
fn restick(sticky: &mut BTreeSet<String>, stick: BTreeSet<String>, unstick: &BTreeSet<String>) {
    sticky.extend(stick);
    sticky.retain(|n| !unstick.contains(n));
}
