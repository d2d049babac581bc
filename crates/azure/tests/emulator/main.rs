//! Integration tests of the Azure client against the emulator over real HTTPS: every credential
//! scheme, every ARM/Kudu/Key Vault call, and the failure modes (throttling, 5xx, resets, expiring
//! tokens, deployment conflicts and failures, TLS misconfiguration).

mod arm;
mod connection_strings;
mod identity;
mod key_vault;
mod kudu;
mod logs;
mod metrics;

use slot_release_azure::{
    AppRef, Azure, AzureError, CancellationToken, ClientSettings, Cloud, CredentialSource,
    DeployOptions, DeployStatus, DeploymentRecord, ErrorKind, HttpOptions, KeyVaultSettings,
    KuduAuth, LroOptions, PollSettings, RampUpRule, RetrySettings, Secret, SecretFilter, SecretRef,
    ServiceConnection, SettingsChange, SiteConfigPatch, SlotConfigNames, SlotName, SwapOptions,
};
use slot_release_emulator::{
    ClientCertificate, ConnectionKind, Emulator, EmulatorOptions, Fault, RequestRecord, RouteMatch,
    Scope, SecretString, Seed, SeedSecret, Throttle,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SUB: &str = "00000000-0000-0000-0000-0000000000a1";
const RG: &str = "contoso-rg";
const APP: &str = "contoso-web";
const VAULT: &str = "contoso-kv";

struct Env {
    em: Emulator,
    _dir: tempfile::TempDir,
}

fn secret(name: &str, value: &str) -> SeedSecret {
    SeedSecret {
        name: name.into(),
        value: SecretString::new(value),
        previous_values: vec![],
        enabled: true,
        exp: None,
        nbf: None,
        content_type: None,
        tags: BTreeMap::new(),
    }
}

async fn start_with(seed: Seed, tweak: impl FnOnce(&mut EmulatorOptions)) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = EmulatorOptions::new(seed, dir.path());
    opts.lro_retry_after = Duration::from_millis(300);
    opts.deployment_step_delay = Duration::from_millis(50);
    tweak(&mut opts);
    let em = Emulator::start(opts).await.expect("emulator starts");
    Env { em, _dir: dir }
}

async fn start() -> Env {
    start_with(Seed::sample(), |_| {}).await
}

/// Settings that keep tests quick: short backoff and polling, but the same logic as production.
fn fast() -> ClientSettings {
    ClientSettings {
        retry: RetrySettings {
            max_retries: 5,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(30),
        },
        poll: PollSettings {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(1),
        },
        keyvault: KeyVaultSettings {
            initial_backoff: Duration::from_millis(50),
            ..KeyVaultSettings::default()
        },
        ..ClientSettings::default()
    }
}

fn agent_env(env: &Env, kind: ConnectionKind) -> HashMap<String, String> {
    env.em.service_connection_env(&kind).into_iter().collect()
}

fn connection(env: &Env, kind: ConnectionKind) -> ServiceConnection {
    let vars = agent_env(env, kind);
    let id = vars
        .keys()
        .find_map(|k| k.strip_prefix("ENDPOINT_URL_"))
        .expect("the emulator hands over an endpoint")
        .to_owned();
    ServiceConnection::from_agent_env(&id, &|k| vars.get(k).cloned()).expect("connection parses")
}

fn azure_with(env: &Env, kind: ConnectionKind, settings: ClientSettings) -> Azure {
    let (cred, cloud) = connection(env, kind).into_parts();
    Azure::with_settings(
        cred,
        cloud,
        HttpOptions::emulator(env.em.ca_pem()),
        settings,
    )
    .expect("client builds")
}

fn azure(env: &Env) -> Azure {
    azure_with(env, ConnectionKind::ServicePrincipal, fast())
}

fn app_ref() -> AppRef {
    AppRef::new(SUB, RG, APP).expect("valid app")
}

fn slot(name: &str) -> SlotName {
    SlotName::new(name).expect("valid slot")
}

fn wait() -> LroOptions {
    LroOptions {
        timeout: Duration::from_secs(60),
        cancel: CancellationToken::new(),
    }
}

fn count(env: &Env, host_part: &str, path_part: &str) -> usize {
    env.em
        .requests()
        .iter()
        .filter(|r| r.host.contains(host_part) && r.path.contains(path_part))
        .count()
}

fn write_zip(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("package.zip");
    let file = std::fs::File::create(&path).expect("create zip");
    let mut z = zip::ZipWriter::new(file);
    for (name, content) in files {
        z.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("start file");
        z.write_all(content.as_bytes()).expect("write file");
    }
    z.finish().expect("finish zip");
    path
}
