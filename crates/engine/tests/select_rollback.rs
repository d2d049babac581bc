//! A rollback that redeploys a release from its artifact re-applies the secrets `secrets.select` takes
//! in that release's config (rendered for it), as a release of it would: the run lists the vault for
//! the target's rendering too, so the slot swapped into production carries the selected settings.

#[allow(dead_code)] // Shared with the model tests, which use all of it.
mod model {
    pub mod memory;
}

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::memory::{MemPort, MemSlot, World};
use slot_release_engine::history::{Entry, Outcome};
use slot_release_engine::journal::{DeploymentRecord, JournalTags, Phase};
use slot_release_engine::release::{self, LoadRequest};
use slot_release_engine::selection::{SkippedSecret, VaultListing};
use slot_release_engine::spec::ReleaseSpec;
use slot_release_engine::stages::{
    self, Command, Context, LockOptions, RunResult, StageOptions, Unfinished,
};
use slot_release_engine::state::SlotName;
use slot_release_pipelines::{Log, OutputMode};
use tokio_util::sync::CancellationToken;

/// Both environments take `app-*` from one vault by reference, so the selected settings travel with
/// the swap (the rollback writes only what travels).
const CONFIG: &str = r#"
version: 1
app:
  name: model-web
  resourceGroup: model-rg
  kind: code
  stack: PYTHON|3.12
  startupCommand: python3 app.py
package:
  root: .
environments:
  staging:
    slot: staging
    settings:
      APP_ENV: staging
    secrets:
      vault: model-kv
      delivery: keyVaultReference
      select: {prefix: app-, stripPrefix: true}
      names: upperSnake
  production:
    slot: production
    settings:
      APP_ENV: production
    secrets:
      vault: model-kv
      delivery: keyVaultReference
      select: {prefix: app-, stripPrefix: true}
      names: upperSnake
stages:
  staging:
    environment: staging
    healthCheck:
      path: /health
  production:
    environment: production
    sourceSlot: staging
    strategy: swap
    watch:
      duration: 2s
      healthCheck:
        path: /health
        interval: 1s
  rollback:
    environment: production
    restore: lastKnownGood
"#;

const PACKAGE_SHA: &str = "5e1ec7ed0000000000000000000000000000000000000000000000000000c0de";

fn spec(dir: &std::path::Path) -> ReleaseSpec {
    let config = dir.join("release.yml");
    std::fs::write(&config, CONFIG).unwrap();
    std::fs::write(dir.join("app.py"), "print('hi')\n").unwrap();
    release::load(
        &config,
        &LoadRequest {
            release_id: Some("r1".into()),
            ..LoadRequest::default()
        },
    )
    .unwrap_or_else(|d| panic!("the config does not load:\n{d}"))
    .spec
}

/// Production runs r2; r1, released before it, is in no slot and its package digest is recorded.
fn world() -> World {
    let entry = |id: &str, sha: Option<&str>| Entry {
        id: id.into(),
        name: format!("name-{id}"),
        released_unix: 1,
        image: None,
        run: None,
        package_sha256: sha.map(str::to_owned),
        artifact: None,
        outcome: Outcome::Released,
    };
    let mut w = World {
        rng: 7,
        vault: VaultListing {
            names: vec!["app-db-url".into(), "other-key".into()],
            skipped: vec![SkippedSecret {
                name: "app-old-token".into(),
                reason: "disabled".into(),
            }],
        },
        ..World::default()
    };
    w.slots.insert(
        SlotName::production(),
        MemSlot {
            settings: BTreeMap::from([("APP_ENV".into(), "production".into())]),
            linux_fx: Some("PYTHON|3.12".into()),
            startup: Some("python3 app.py".into()),
            records: vec![DeploymentRecord {
                release: "r2".into(),
                release_name: "name-r2".into(),
                phase: "released".into(),
                ..DeploymentRecord::default()
            }],
            ..MemSlot::default()
        },
    );
    w.slots.insert(
        SlotName::new("staging").expect("a slot name"),
        MemSlot {
            settings: BTreeMap::from([("APP_ENV".into(), "staging".into())]),
            ..MemSlot::default()
        },
    );
    w.sticky.insert("APP_ENV".into());
    let mut journal = JournalTags {
        release: Some("r2".into()),
        phase: Some(Phase::Released),
        last_known_good: Some("r2".into()),
        history: vec![entry("r1", Some(PACKAGE_SHA)), entry("r2", None)],
        ..JournalTags::default()
    };
    journal.slots.insert(SlotName::production(), "r2".into());
    journal.apply_to(&mut w.tags);
    w
}

#[tokio::test(start_paused = true)]
async fn a_redeploy_from_the_artifact_re_applies_the_targets_selected_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path());
    let package = dir.path().join("package.zip");
    std::fs::write(&package, b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0").unwrap();
    let world = Arc::new(Mutex::new(world()));
    let cancel = CancellationToken::new();
    let port = MemPort {
        world: world.clone(),
        run: 1,
        cancel: cancel.clone(),
        epoch: tokio::time::Instant::now(),
    };
    let ctx = Context {
        port: Arc::new(port),
        log: Log::new(OutputMode::Plain, Box::new(std::io::sink())),
        cancel,
        stopping: Default::default(),
    };
    let opts = StageOptions {
        command: Command::Rollback,
        environment: None,
        release_id: "r3".into(),
        release_name: "name-r3".into(),
        package: Some(package),
        package_sha256: Some(PACKAGE_SHA.into()),
        artifact: None,
        // As the CLI renders it from r1's build record: selection not yet listed.
        target_spec: Some(spec.clone()),
        build_run: Default::default(),
        work_dir: dir.path().join("work"),
        hook_dir: dir.path().to_path_buf(),
        unfinished: Unfinished::Refuse,
        rollback_to: None,
        lock: LockOptions {
            ttl: Duration::from_secs(60),
            take_over: None,
            attempt: Some(1),
            holder: BTreeMap::new(),
        },
    };
    let record = stages::run(&ctx, &spec, &opts).await;
    assert_eq!(record.result, RunResult::Succeeded, "{:?}", record.error);
    let plan = record.stages[0].plan.as_ref().expect("a plan");
    let check = plan
        .preflight
        .iter()
        .find(|c| c.name == "secret-selection")
        .expect("the redeploy checks the target's selection");
    assert!(check.ok, "{check:?}");
    let w = world.lock().unwrap();
    let production = &w.slots[&SlotName::production()];
    assert_eq!(production.release().as_deref(), Some("r1"));
    // The selected secret reached production with the swap, as a reference; nothing outside the prefix
    // or skipped by the listing did.
    assert_eq!(
        production.settings.get("DB_URL").map(String::as_str),
        Some("@Microsoft.KeyVault(VaultName=model-kv;SecretName=app-db-url)"),
        "{:?}",
        production.settings
    );
    assert!(
        !production
            .settings
            .keys()
            .any(|k| k == "OTHER_KEY" || k == "OLD_TOKEN"),
        "{:?}",
        production.settings
    );
    // One listing for both renderings of the config.
    let listings = w.calls.iter().filter(|c| c.what == "list secrets").count();
    assert_eq!(listings, 1, "{:?}", w.calls);
}
