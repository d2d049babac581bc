//! Integration tests of the Azure client against the emulator over real HTTPS: every credential
//! scheme, every ARM/Kudu/Key Vault call, and the failure modes (throttling, 5xx, resets, expiring
//! tokens, deployment conflicts and failures, TLS misconfiguration).

use slot_release_azure::{
    AppRef, Azure, AzureError, CancellationToken, ClientSettings, Cloud, CredentialSource,
    DeployOptions, DeployStatus, DeploymentRecord, ErrorKind, HttpOptions, KeyVaultSettings,
    KuduAuth, LroOptions, PollSettings, RampUpRule, RetrySettings, Secret, SecretFilter, SecretRef,
    ServiceConnection, SettingsChange, SiteConfigPatch, SlotConfigNames, SlotName, SwapOptions,
};
use slot_release_emulator::{
    ClientCertificate, ConnectionKind, Emulator, EmulatorOptions, Fault, RouteMatch, Scope,
    SecretString, Seed, SeedSecret,
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

// ---------------------------------------------------------------- identity

#[tokio::test]
async fn service_principal_secret_reads_sites() {
    let env = start().await;
    let az = azure(&env);
    assert!(az.cloud().is_emulator());
    let web = az.web_app(&app_ref());
    let prod = web
        .get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("production");
    assert_eq!(prod.state, "Running");
    // The hosts as ARM names them (unique default host names in the emulator's default style).
    let port = env.em.port();
    assert_eq!(
        prod.default_host,
        format!("{}:{port}", env.em.app_host("contoso-web", "production"))
    );
    assert!(
        prod.default_host.starts_with("contoso-web-"),
        "{}",
        prod.default_host
    );
    assert_eq!(
        prod.scm_host,
        format!("{}:{port}", env.em.scm_host("contoso-web", "production"))
    );
    let staging = web
        .get_slot(&slot("staging"), &CancellationToken::new())
        .await
        .expect("staging");
    assert_eq!(
        staging.default_host,
        format!("{}:{port}", env.em.app_host("contoso-web", "staging"))
    );
    assert_eq!(
        count(&env, "login.", "/oauth2/v2.0/token"),
        1,
        "the token is cached between calls"
    );
}

#[tokio::test]
async fn workload_identity_federation_exchanges_the_pipelines_oidc_token() {
    let env = start().await;
    let conn = connection(&env, ConnectionKind::WorkloadIdentityFederation);
    assert!(matches!(
        conn.credential(),
        CredentialSource::WorkloadIdentityFederation { .. }
    ));
    assert_eq!(conn.subscription_id(), Some(SUB));
    let az = azure_with(&env, ConnectionKind::WorkloadIdentityFederation, fast());
    let web = az.web_app(&app_ref());
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("ARM call with a federated token");
    assert_eq!(count(&env, "pipelines.", "oidctoken"), 1);
    assert_eq!(count(&env, "login.", "/token"), 1);
}

#[tokio::test]
async fn workload_identity_rerequests_the_oidc_token_when_the_access_token_expires() {
    let env = start().await;
    // Access tokens shorter than the 5-minute refresh margin are renewed before every use, so each
    // renewal needs a fresh OIDC assertion: this is the "~10-minute OIDC token" case compressed.
    env.em.set_token_lifetime(Duration::from_secs(2));
    env.em.set_oidc_token_lifetime(Duration::from_secs(2));
    let az = azure_with(&env, ConnectionKind::WorkloadIdentityFederation, fast());
    let web = az.web_app(&app_ref());
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("first call");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("call after both tokens expired");
    assert!(
        count(&env, "pipelines.", "oidctoken") >= 2,
        "a fresh OIDC token was requested"
    );
}

#[tokio::test]
async fn managed_identity_uses_the_identity_endpoint() {
    let env = start().await;
    let conn = connection(&env, ConnectionKind::ManagedIdentity);
    match conn.credential() {
        CredentialSource::ManagedIdentity { client_id, .. } => assert!(client_id.is_some()),
        other => panic!("unexpected credential {other:?}"),
    }
    let az = azure_with(&env, ConnectionKind::ManagedIdentity, fast());
    az.web_app(&app_ref())
        .get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("ARM call with an MSI token");
    assert_eq!(count(&env, "identity.", "/msi/token"), 1);
}

#[tokio::test]
async fn wrong_secret_fails_with_the_identity_providers_message() {
    let env = start().await;
    let (cred, cloud) = connection(&env, ConnectionKind::ServicePrincipal).into_parts();
    let CredentialSource::ServicePrincipalSecret {
        tenant_id,
        client_id,
        ..
    } = cred
    else {
        panic!("expected a secret credential");
    };
    let cred = CredentialSource::ServicePrincipalSecret {
        tenant_id,
        client_id,
        secret: Secret::new("wrong"),
    };
    let az = Azure::with_settings(cred, cloud, HttpOptions::emulator(env.em.ca_pem()), fast())
        .expect("client");
    let err = az
        .check_credentials(&CancellationToken::new())
        .await
        .expect_err("bad secret");
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    assert!(err.to_string().contains("Invalid client secret"), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the secret never appears in errors: {err}"
    );
}

/// A service principal certificate as Azure DevOps stores it for an AzureRM connection: a PEM holding
/// the private key and the certificate, with PKCS#12 "Bag Attributes" lines and CRLF line ends.
struct SpnCertificate {
    /// The public certificate alone: what the app registration holds.
    public_pem: String,
    /// Key and certificate: what the agent hands the task.
    agent_pem: String,
}

fn spn_certificate() -> SpnCertificate {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
    let cert = rcgen::CertificateParams::new(vec!["contoso-spn.test".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let agent_pem = format!(
        "Bag Attributes\n    localKeyID: 01 00 00 00\n{}Bag Attributes\n    localKeyID: 01 00 00 00\nsubject=CN=contoso-spn.test\n{}",
        key.serialize_pem(),
        cert.pem()
    )
    .replace('\n', "\r\n");
    SpnCertificate {
        public_pem: cert.pem(),
        agent_pem,
    }
}

/// The agent's variables for the seeded service principal connection switched to a certificate:
/// `authenticationType=spnCertificate` and `servicePrincipalCertificate`, in the separate
/// `ENDPOINT_AUTH_PARAMETER_*` variables and in the `ENDPOINT_AUTH_<id>` JSON, with no key.
fn certificate_connection(env: &Env, agent_pem: &str) -> ServiceConnection {
    let mut vars = agent_env(env, ConnectionKind::ServicePrincipal);
    let id = vars
        .keys()
        .find_map(|k| k.strip_prefix("ENDPOINT_URL_"))
        .expect("the emulator hands over an endpoint")
        .to_owned();
    vars.remove(&format!("ENDPOINT_AUTH_PARAMETER_{id}_SERVICEPRINCIPALKEY"));
    vars.insert(
        format!("ENDPOINT_AUTH_PARAMETER_{id}_AUTHENTICATIONTYPE"),
        "spnCertificate".into(),
    );
    vars.insert(
        format!("ENDPOINT_AUTH_PARAMETER_{id}_SERVICEPRINCIPALCERTIFICATE"),
        agent_pem.to_owned(),
    );
    let auth_key = format!("ENDPOINT_AUTH_{id}");
    let mut auth: serde_json::Value =
        serde_json::from_str(&vars[&auth_key]).expect("ENDPOINT_AUTH is JSON");
    let params = auth["parameters"].as_object_mut().expect("parameters");
    params.remove("serviceprincipalkey");
    params.insert("authenticationType".into(), "spnCertificate".into());
    params.insert("servicePrincipalCertificate".into(), agent_pem.into());
    vars.insert(auth_key, auth.to_string());
    ServiceConnection::from_agent_env(&id, &|k| vars.get(k).cloned()).expect("connection parses")
}

async fn start_with_certificate(public_pem: &str) -> Env {
    let client = Seed::sample().service_connections[0].client_id.clone();
    let public_pem = public_pem.to_owned();
    start_with(Seed::sample(), move |o| {
        o.client_certificates.push(ClientCertificate {
            client_id: client,
            certificate_pem: public_pem,
        });
    })
    .await
}

#[tokio::test]
async fn service_principal_certificate_signs_in_and_calls_arm() {
    let spn = spn_certificate();
    let env = start_with_certificate(&spn.public_pem).await;
    let conn = certificate_connection(&env, &spn.agent_pem);
    assert!(matches!(
        conn.credential(),
        CredentialSource::ServicePrincipalCertificate { .. }
    ));
    let (cred, cloud) = conn.into_parts();
    let az = Azure::with_settings(cred, cloud, HttpOptions::emulator(env.em.ca_pem()), fast())
        .expect("client builds");
    let prod = az
        .web_app(&app_ref())
        .get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("ARM call with a token from a certificate assertion");
    assert_eq!(prod.state, "Running");
    let kv = az.key_vault(VAULT).expect("vault");
    let got = kv
        .get_secrets(
            &[SecretRef::parse("db-password").expect("ref")],
            &CancellationToken::new(),
        )
        .await
        .expect("Key Vault call with a certificate-based token");
    assert_eq!(got["db-password"].expose(), "s3cr3t-value");
    assert_eq!(
        count(&env, "login.", "/oauth2/v2.0/token"),
        2,
        "one token per audience (ARM, Key Vault), each from a signed assertion"
    );
}

#[tokio::test]
async fn an_unregistered_certificate_fails_with_entras_message() {
    let registered = spn_certificate();
    let presented = spn_certificate();
    let env = start_with_certificate(&registered.public_pem).await;
    let (cred, cloud) = certificate_connection(&env, &presented.agent_pem).into_parts();
    let az = Azure::with_settings(cred, cloud, HttpOptions::emulator(env.em.ca_pem()), fast())
        .expect("client builds");
    let err = az
        .web_app(&app_ref())
        .get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect_err("the certificate is not the app's");
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    let text = err.to_string();
    assert!(text.contains("AADSTS700027"), "{text}");
    assert!(text.contains("not registered on application"), "{text}");
    assert!(
        !text.contains("PRIVATE KEY"),
        "the key never appears in errors: {text}"
    );
    assert_eq!(
        count(&env, "management.", "/sites/"),
        0,
        "no ARM request goes out without a token"
    );
}

#[tokio::test]
async fn untrusted_ca_fails_fast_and_is_not_retried() {
    let env = start().await;
    let (cred, cloud) = connection(&env, ConnectionKind::ServicePrincipal).into_parts();
    let other_ca = rcgen::generate_simple_self_signed(vec!["x.test".to_owned()]).expect("cert");
    let http = HttpOptions::emulator(other_ca.cert.pem());
    let az = Azure::with_settings(cred, cloud, http, fast()).expect("client");
    let started = Instant::now();
    let err = az
        .web_app(&app_ref())
        .get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect_err("TLS must fail");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(!err.is_transient(), "{err}");
    assert!(
        err.to_string().to_ascii_lowercase().contains("certificate"),
        "{err}"
    );
}

/// Agents behind TLS inspection set `NODE_EXTRA_CA_CERTS` (Node tasks only see that one): a CA named
/// there alone is trusted, as one named by `AGENT_CAINFO` is, and both together are trusted too.
#[tokio::test]
async fn node_extra_ca_certs_is_trusted_like_agent_cainfo() {
    let env = start().await;
    let other = rcgen::generate_simple_self_signed(vec!["x.test".to_owned()]).expect("cert");
    let dir = tempfile::tempdir().expect("dir");
    let other_path = dir.path().join("other.pem");
    std::fs::write(&other_path, other.cert.pem()).expect("write");
    let emulator_ca = env.em.ca_path().display().to_string();
    let other_ca = other_path.display().to_string();
    let get = |vars: Vec<(&'static str, String)>| {
        let (cred, cloud) = connection(&env, ConnectionKind::ServicePrincipal).into_parts();
        let mut http = HttpOptions::from_agent_env(&|k| {
            vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        })
        .expect("options");
        http.emulator_loopback = true;
        let az = Azure::with_settings(cred, cloud, http, fast()).expect("client");
        async move {
            az.web_app(&app_ref())
                .get_slot(&SlotName::production(), &CancellationToken::new())
                .await
        }
    };
    get(vec![("NODE_EXTRA_CA_CERTS", emulator_ca.clone())])
        .await
        .expect("the CA in NODE_EXTRA_CA_CERTS is trusted");
    get(vec![
        ("AGENT_CAINFO", other_ca.clone()),
        ("NODE_EXTRA_CA_CERTS", emulator_ca.clone()),
    ])
    .await
    .expect("both files are trusted");
    let err = get(vec![("NODE_EXTRA_CA_CERTS", other_ca)])
        .await
        .expect_err("another CA is not enough");
    assert!(
        err.to_string().to_ascii_lowercase().contains("certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn emulator_cloud_requires_emulator_http_options() {
    let err = Azure::new(
        CredentialSource::StaticToken {
            token: Secret::new("t"),
        },
        Cloud::emulator(1),
        HttpOptions::default(),
    )
    .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Config);
}

// ---------------------------------------------------------------- ARM

#[tokio::test]
async fn app_settings_read_modify_write_keeps_other_settings() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let s = slot("staging");
    let first = SettingsChange {
        set: BTreeMap::from([("A".into(), "1".into()), ("B".into(), "2".into())]),
        remove: BTreeSet::new(),
    };
    web.update_app_settings(&s, &first, &CancellationToken::new())
        .await
        .expect("first write");
    let second = SettingsChange {
        set: BTreeMap::from([("C".into(), "3".into())]),
        remove: BTreeSet::from(["A".into()]),
    };
    let written = web
        .update_app_settings(&s, &second, &CancellationToken::new())
        .await
        .expect("second write");
    assert_eq!(written.get("B").map(String::as_str), Some("2"));
    assert_eq!(written.get("C").map(String::as_str), Some("3"));
    assert!(!written.contains_key("A"));
    let read = web
        .app_settings(&s, &CancellationToken::new())
        .await
        .expect("read back");
    assert_eq!(read, written);
    let snap = env.em.snapshot();
    let live = &snap.slot(APP, "staging").expect("slot").app_settings;
    assert_eq!(live.get("B").map(String::as_str), Some("2"));
    // Production was not touched.
    assert!(
        !snap
            .slot(APP, "production")
            .expect("prod")
            .app_settings
            .contains_key("C")
    );
}

#[tokio::test]
async fn sticky_names_site_config_and_tags_round_trip() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let names = SlotConfigNames {
        app_setting_names: vec!["SLOT_NAME".into()],
        ..SlotConfigNames::default()
    };
    web.set_slot_config_names(&names, &CancellationToken::new())
        .await
        .expect("set sticky");
    assert_eq!(
        web.slot_config_names(&CancellationToken::new())
            .await
            .expect("get sticky")
            .app_setting_names,
        vec!["SLOT_NAME".to_owned()]
    );

    let s = slot("staging");
    let patch = SiteConfigPatch {
        app_command_line: Some("python app.py".into()),
        health_check_path: Some("/healthz".into()),
        linux_fx_version: Some("PYTHON|3.12".into()),
        ramp_up_rules: None,
    };
    let cfg = web
        .patch_site_config(&s, &patch, &CancellationToken::new())
        .await
        .expect("patch");
    assert_eq!(cfg.app_command_line.as_deref(), Some("python app.py"));
    let cfg = web
        .site_config(&s, &CancellationToken::new())
        .await
        .expect("get config");
    assert_eq!(cfg.health_check_path.as_deref(), Some("/healthz"));
    assert_eq!(cfg.linux_fx_version.as_deref(), Some("PYTHON|3.12"));

    let rule = RampUpRule {
        action_host_name: "contoso-web-staging.x".into(),
        reroute_percentage: 10.0,
        name: "staging".into(),
    };
    let routing = SiteConfigPatch {
        ramp_up_rules: Some(vec![rule.clone()]),
        ..SiteConfigPatch::default()
    };
    web.patch_site_config(&SlotName::production(), &routing, &CancellationToken::new())
        .await
        .expect("routing");
    assert_eq!(
        web.site_config(&SlotName::production(), &CancellationToken::new())
            .await
            .expect("config")
            .ramp_up_rules,
        vec![rule]
    );

    let tags = BTreeMap::from([("slot-release.journal".to_owned(), "r1".to_owned())]);
    web.set_tags(&s, &tags, &CancellationToken::new())
        .await
        .expect("set tags");
    assert_eq!(
        web.tags(&s, &CancellationToken::new()).await.expect("tags"),
        tags
    );
}

#[tokio::test]
async fn slots_are_listed_and_created_through_the_lro() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let before: Vec<String> = web
        .list_slots(&CancellationToken::new())
        .await
        .expect("list")
        .iter()
        .map(|s| s.slot.to_string())
        .collect();
    assert_eq!(before, vec!["staging".to_owned()]);
    let created = web
        .create_slot(&slot("canary"), &wait())
        .await
        .expect("create");
    assert_eq!(created.slot.slot(), Some("canary"));
    let after: BTreeSet<String> = web
        .list_slots(&CancellationToken::new())
        .await
        .expect("list")
        .iter()
        .map(|s| s.slot.to_string())
        .collect();
    assert!(after.contains("canary"), "{after:?}");
    assert!(
        !web.slot_exists(&slot("nope"), &CancellationToken::new())
            .await
            .expect("exists check")
    );
}

#[tokio::test]
async fn swap_polls_with_retry_after_and_moves_content() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let s = slot("staging");
    let change = SettingsChange {
        set: BTreeMap::from([("VERSION".into(), "2".into())]),
        remove: BTreeSet::new(),
    };
    web.update_app_settings(&s, &change, &CancellationToken::new())
        .await
        .expect("settings");
    env.em.clear_requests();
    let started = Instant::now();
    web.swap(
        &s,
        &SlotName::production(),
        &SwapOptions {
            wait: wait(),
            ..SwapOptions::default()
        },
    )
    .await
    .expect("swap");
    let polls: Vec<_> = env
        .em
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.host.starts_with("management."))
        .collect();
    assert!(!polls.is_empty(), "the swap was an LRO that was polled");
    // The server asked for 300 ms between polls; we must not poll faster than that.
    assert!(
        started.elapsed() >= Duration::from_millis(300) * polls.len() as u32,
        "{} polls in {:?}",
        polls.len(),
        started.elapsed()
    );
    let prod = web
        .app_settings(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("prod settings");
    assert_eq!(prod.get("VERSION").map(String::as_str), Some("2"));
}

#[tokio::test]
async fn swap_warmup_failure_is_a_transient_operation_error() {
    let env = start().await;
    env.em.inject(Fault::SwapWarmupFails { app: APP.into() });
    let web = azure(&env).web_app(&app_ref());
    let err = web
        .swap(
            &slot("staging"),
            &SlotName::production(),
            &SwapOptions {
                wait: wait(),
                ..SwapOptions::default()
            },
        )
        .await
        .expect_err("warm-up fails");
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn a_failed_swap_is_read_from_its_status_resource_once() {
    // The status resource answers a failed operation with the failure's own HTTP status (500 here)
    // and `{"status":"Failed","error"}`: the client reports Azure's code and does not retry the poll.
    let env = start().await;
    env.em.inject(Fault::SwapTimesOut {
        app: APP.into(),
        millis: 300,
    });
    let web = azure(&env).web_app(&app_ref());
    let err = web
        .swap(
            &slot("staging"),
            &SlotName::production(),
            &SwapOptions {
                wait: wait(),
                ..SwapOptions::default()
            },
        )
        .await
        .expect_err("the swap timed out");
    match &err {
        AzureError::OperationFailed { status, code, .. } => {
            assert_eq!((status.as_str(), code.as_str()), ("Failed", "SwapTimedOut"));
        }
        other => panic!("expected OperationFailed, got {other:?}"),
    }
    let failed_polls = env
        .em
        .requests()
        .iter()
        .filter(|r| r.path.contains("/operationresults/") && r.status == 500)
        .count();
    assert_eq!(failed_polls, 1, "a failed operation's answer is final");
}

#[tokio::test]
async fn swap_wait_honours_deadline_and_cancellation() {
    let env = start().await;
    env.em.inject(Fault::SwapTimesOut {
        app: APP.into(),
        millis: 20_000,
    });
    let web = azure(&env).web_app(&app_ref());
    let opts = SwapOptions {
        wait: LroOptions {
            timeout: Duration::from_secs(1),
            cancel: CancellationToken::new(),
        },
        ..SwapOptions::default()
    };
    let err = web
        .swap(&slot("staging"), &SlotName::production(), &opts)
        .await
        .expect_err("deadline");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");

    let env = start().await;
    env.em.inject(Fault::SwapTimesOut {
        app: APP.into(),
        millis: 20_000,
    });
    let web = azure(&env).web_app(&app_ref());
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.cancel();
    });
    let opts = SwapOptions {
        wait: LroOptions {
            timeout: Duration::from_secs(60),
            cancel,
        },
        ..SwapOptions::default()
    };
    let started = Instant::now();
    let err = web
        .swap(&slot("staging"), &SlotName::production(), &opts)
        .await
        .expect_err("cancelled");
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn swap_with_preview_apply_reset_and_restart() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let s = slot("staging");
    let opts = SwapOptions {
        wait: wait(),
        ..SwapOptions::default()
    };
    web.apply_slot_config(&s, &SlotName::production(), &opts)
        .await
        .expect("apply slot config");
    web.reset_slot_config(&s, &CancellationToken::new())
        .await
        .expect("reset slot config");
    web.restart(&s, &CancellationToken::new())
        .await
        .expect("restart");
    assert!(
        env.em
            .requests()
            .iter()
            .any(|r| r.path.to_ascii_lowercase().ends_with("/applyslotconfig") && r.status < 300)
    );
    assert!(
        env.em
            .requests()
            .iter()
            .any(|r| r.path.to_ascii_lowercase().ends_with("/resetslotconfig") && r.status < 300)
    );
    let same = web
        .swap(&s, &s, &opts)
        .await
        .expect_err("self swap refused");
    assert_eq!(same.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn five_hundreds_and_resets_are_retried_for_reads() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("warm up the token");
    let arm = |m: &str| RouteMatch {
        host: Some("management.*".into()),
        method: Some(m.into()),
        path: None,
    };
    env.em.inject(Fault::Status {
        route: arm("GET"),
        status: 503,
        retry_after_secs: None,
        scope: Some(Scope {
            count: Some(3),
            share: None,
        }),
    });
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("503 burst absorbed");
    env.em.inject(Fault::ConnectionReset {
        route: arm("GET"),
        scope: Some(Scope {
            count: Some(2),
            share: None,
        }),
    });
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("resets absorbed");
    env.em.inject(Fault::Status {
        route: arm("GET"),
        status: 429,
        retry_after_secs: Some(1),
        scope: Some(Scope {
            count: Some(1),
            share: None,
        }),
    });
    let started = Instant::now();
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("429 absorbed");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn non_idempotent_calls_are_not_retried_after_a_5xx() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("token");
    env.em.inject(Fault::Status {
        route: RouteMatch {
            host: None,
            method: Some("POST".into()),
            path: Some("*/restart".into()),
        },
        status: 500,
        retry_after_secs: None,
        scope: Some(Scope {
            count: Some(1),
            share: None,
        }),
    });
    let err = web
        .restart(&slot("staging"), &CancellationToken::new())
        .await
        .expect_err("not retried");
    assert_eq!(err.status(), Some(500), "{err}");
    assert_eq!(count(&env, "management.", "/restart"), 1);
}

#[tokio::test]
async fn not_found_is_classified_with_context() {
    let env = start().await;
    let web = azure(&env).web_app(&AppRef::new(SUB, RG, "missing-app").expect("ref"));
    let err = web
        .get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect_err("404");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.status(), Some(404));
    let text = err.to_string();
    assert!(
        text.contains("missing-app") && !text.contains("api-version"),
        "{text}"
    );
}

#[tokio::test]
async fn expired_token_mid_operation_is_renewed() {
    let env = start().await;
    env.em.set_token_lifetime(Duration::from_secs(1));
    let web = azure(&env).web_app(&app_ref());
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("first");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A swap spans several requests (POST + polls) issued after the first token expired.
    web.swap(
        &slot("staging"),
        &SlotName::production(),
        &SwapOptions {
            wait: wait(),
            ..SwapOptions::default()
        },
    )
    .await
    .expect("swap with renewed tokens");
    assert!(count(&env, "login.", "/token") >= 2);
    assert!(
        env.em
            .requests()
            .iter()
            .filter(|r| r.host.starts_with("management."))
            .all(|r| r.status != 401)
    );
}

// ---------------------------------------------------------------- Kudu

#[tokio::test]
async fn one_deploy_uploads_and_waits_for_success() {
    let env = start().await;
    let dir = tempfile::tempdir().expect("dir");
    let pkg = write_zip(dir.path(), &[("index.html", "hello v2")]);
    let web = azure(&env).web_app(&app_ref());
    let kudu = web.kudu(&slot("staging"));
    let before = env
        .em
        .snapshot()
        .slot(APP, "staging")
        .expect("slot")
        .content_digest
        .clone();
    let d = kudu
        .deploy_zip(
            &pkg,
            &DeployOptions {
                message: Some("r1".into()),
                ..DeployOptions::default()
            },
        )
        .await
        .expect("deploy");
    assert_eq!(d.status, DeployStatus::Success);
    let after = env
        .em
        .snapshot()
        .slot(APP, "staging")
        .expect("slot")
        .content_digest
        .clone();
    assert_ne!(before, after, "content changed");
    assert!(
        kudu.deployments(&CancellationToken::new())
            .await
            .expect("history")
            .iter()
            .any(|x| x.id == d.id)
    );
}

#[tokio::test]
async fn deployment_conflict_is_waited_out_then_upload_starts_over() {
    let env = start().await;
    let dir = tempfile::tempdir().expect("dir");
    let pkg = write_zip(dir.path(), &[("index.html", "v3")]);
    env.em.inject(Fault::Status {
        route: RouteMatch {
            host: None,
            method: Some("POST".into()),
            path: Some("/api/publish".into()),
        },
        status: 409,
        retry_after_secs: Some(1),
        scope: Some(Scope {
            count: Some(2),
            share: None,
        }),
    });
    let kudu = azure(&env).web_app(&app_ref()).kudu(&slot("staging"));
    let d = kudu
        .deploy_zip(&pkg, &DeployOptions::default())
        .await
        .expect("deploy after the conflict cleared");
    assert_eq!(d.status, DeployStatus::Success);
    assert_eq!(count(&env, ".scm.", "/api/publish"), 3);

    env.em.inject(Fault::Status {
        route: RouteMatch {
            host: None,
            method: Some("POST".into()),
            path: Some("/api/publish".into()),
        },
        status: 409,
        retry_after_secs: Some(1),
        scope: None,
    });
    let opts = DeployOptions {
        conflict_wait: Duration::from_secs(2),
        ..DeployOptions::default()
    };
    let err = kudu
        .deploy_zip(&pkg, &opts)
        .await
        .expect_err("bounded wait");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
}

#[tokio::test]
async fn upload_is_not_retried_after_a_server_error() {
    let env = start().await;
    let dir = tempfile::tempdir().expect("dir");
    let pkg = write_zip(dir.path(), &[("index.html", "v4")]);
    let kudu = azure(&env).web_app(&app_ref()).kudu(&slot("staging"));
    env.em.inject(Fault::Status {
        route: RouteMatch {
            host: None,
            method: Some("POST".into()),
            path: Some("/api/publish".into()),
        },
        status: 503,
        retry_after_secs: None,
        scope: Some(Scope {
            count: Some(1),
            share: None,
        }),
    });
    let err = kudu
        .deploy_zip(&pkg, &DeployOptions::default())
        .await
        .expect_err("not retried");
    assert_eq!(err.status(), Some(503));
    assert_eq!(count(&env, ".scm.", "/api/publish"), 1);
}

#[tokio::test]
async fn failed_deployment_returns_its_log() {
    let env = start().await;
    let dir = tempfile::tempdir().expect("dir");
    let pkg = write_zip(dir.path(), &[("index.html", "bad")]);
    env.em.inject(Fault::DeploymentFails {
        app: APP.into(),
        slot: Some("staging".into()),
    });
    let kudu = azure(&env).web_app(&app_ref()).kudu(&slot("staging"));
    match kudu.deploy_zip(&pkg, &DeployOptions::default()).await {
        Err(AzureError::DeploymentFailed { id, log, .. }) => {
            assert!(!id.is_empty());
            assert!(!log.is_empty(), "the log is attached");
        }
        other => panic!("expected a failed deployment, got {other:?}"),
    }
}

#[tokio::test]
async fn commands_run_synchronously_and_in_the_background() {
    let env = start().await;
    let kudu = azure(&env).web_app(&app_ref()).kudu(&slot("staging"));
    let cancel = CancellationToken::new();
    let out = kudu
        .command(
            "echo hello; echo oops >&2; exit 3",
            "site/wwwroot",
            Duration::from_secs(30),
            &cancel,
        )
        .await
        .expect("sync");
    assert_eq!(
        (out.exit_code, out.output.trim(), out.error.trim()),
        (3, "hello", "oops")
    );

    let settings = ClientSettings {
        sync_command_limit: Duration::from_secs(1),
        ..fast()
    };
    let kudu = azure_with(&env, ConnectionKind::ServicePrincipal, settings)
        .web_app(&app_ref())
        .kudu(&slot("staging"));
    let out = kudu
        .command(
            "sleep 1; echo 'long done'; exit 5",
            "site/wwwroot",
            Duration::from_secs(30),
            &cancel,
        )
        .await
        .expect("background");
    assert_eq!((out.exit_code, out.output.trim()), (5, "long done"));

    env.em.inject(Fault::KuduCommandFails {
        app: APP.into(),
        exit_code: 7,
        count: Some(1),
    });
    let out = kudu
        .command("true", "", Duration::from_millis(500), &cancel)
        .await
        .expect("injected");
    assert_eq!(out.exit_code, 7);
}

#[tokio::test]
async fn deployment_records_are_written_and_read() {
    let env = start().await;
    let kudu = azure(&env)
        .web_app(&app_ref())
        .kudu(&SlotName::production());
    let record = DeploymentRecord {
        status: DeployStatus::Success,
        message: "{\"type\":\"SlotSwap\"}".into(),
        author: "slot-release".into(),
        deployer: "SlotRelease".into(),
        active: true,
        details: String::new(),
    };
    kudu.put_deployment_record("swap-1", &record, &CancellationToken::new())
        .await
        .expect("record");
    let all = kudu
        .deployments(&CancellationToken::new())
        .await
        .expect("list");
    assert!(
        all.iter()
            .any(|d| d.id == "swap-1" && d.deployer == "SlotRelease"),
        "{all:?}"
    );
    assert!(
        kudu.deployment_log("swap-1", &CancellationToken::new())
            .await
            .is_ok()
    );
    assert!(
        kudu.put_deployment_record("bad/id", &record, &CancellationToken::new())
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------- Key Vault

fn seed_with_vault(secrets: Vec<SeedSecret>) -> Seed {
    let mut seed = Seed::sample();
    seed.subscriptions[0].resource_groups[0].vaults[0].secrets = secrets;
    seed
}

#[tokio::test]
async fn named_and_versioned_secrets_are_read() {
    let mut s = secret("db-password", "new");
    s.previous_values = vec![SecretString::new("old")];
    let env = start_with(seed_with_vault(vec![s, secret("api-key", "k")]), |_| {}).await;
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let refs = [
        SecretRef::parse("db-password").expect("ref"),
        SecretRef::parse("api-key").expect("ref"),
    ];
    let got = kv
        .get_secrets(&refs, &CancellationToken::new())
        .await
        .expect("secrets");
    assert_eq!(got["db-password"].expose(), "new");
    assert_eq!(got["api-key"].expose(), "k");
    assert!(
        !format!("{got:?}").contains("new"),
        "values never appear in Debug output"
    );
    // A pinned version goes to /secrets/{name}/{version}: an unknown one is the vault's 404.
    let pinned = SecretRef::parse("db-password/0123456789abcdef").expect("ref");
    match kv
        .get_secrets(std::slice::from_ref(&pinned), &CancellationToken::new())
        .await
    {
        Err(AzureError::Secrets { failures, .. }) => {
            assert_eq!(failures[0].name, "db-password/0123456789abcdef");
            assert_eq!(failures[0].status, Some(404), "{failures:?}");
        }
        other => panic!("expected a 404 for an unknown version, got {other:?}"),
    }
    assert!(env.em.requests().iter().any(|r| {
        r.path
            .eq_ignore_ascii_case("/secrets/db-password/0123456789abcdef")
    }));
}

#[tokio::test]
async fn versions_are_listed_across_pages_oldest_first() {
    // 31 versions: more than the 25 a page holds, so the second page comes from nextLink.
    let mut s = secret("db-password", "v30");
    s.previous_values = (0..30)
        .map(|i| SecretString::new(format!("v{i}")))
        .collect();
    let env = start_with(seed_with_vault(vec![s, secret("api-key", "k")]), |_| {}).await;
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let versions = kv
        .versions("db-password", &CancellationToken::new())
        .await
        .expect("versions");
    assert_eq!(versions.len(), 31);
    assert!(versions.iter().all(|v| v.enabled && v.created.is_some()));
    let pages = env
        .em
        .requests()
        .iter()
        .filter(|r| r.path == "/secrets/db-password/versions" && r.status == 200)
        .count();
    assert_eq!(pages, 2, "two pages (the challenge aside)");
    let refs: Vec<SecretRef> = versions
        .iter()
        .map(|v| SecretRef::parse(&format!("db-password/{}", v.version)).expect("ref"))
        .collect();
    let got = kv
        .get_secrets(&refs, &CancellationToken::new())
        .await
        .expect("every version reads");
    let values: Vec<&str> = refs.iter().map(|r| got[&r.to_string()].expose()).collect();
    let expected: Vec<String> = (0..=30).map(|i| format!("v{i}")).collect();
    assert_eq!(values, expected, "oldest first, latest last");

    let err = kv
        .versions("no-such-secret", &CancellationToken::new())
        .await
        .expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let text = err.to_string();
    assert!(text.contains("SecretNotFound"), "{text}");
    assert!(text.contains("/secrets/no-such-secret/versions"), "{text}");
}

#[tokio::test]
async fn missing_and_disabled_named_secrets_fail_with_the_vault_message() {
    let mut off = secret("off", "x");
    off.enabled = false;
    let env = start_with(seed_with_vault(vec![secret("ok", "v"), off]), |_| {}).await;
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let refs = ["ok", "off", "missing"].map(|n| SecretRef::parse(n).expect("ref"));
    match kv.get_secrets(&refs, &CancellationToken::new()).await {
        Err(AzureError::Secrets { failures, .. }) => {
            let by: HashMap<_, _> = failures.iter().map(|f| (f.name.as_str(), f)).collect();
            assert_eq!(by.len(), 2, "{failures:?}");
            assert_eq!(by["missing"].status, Some(404));
            assert!(
                by["missing"].message.contains("not found"),
                "{:?}",
                by["missing"]
            );
            assert_eq!(by["off"].status, Some(403));
            assert!(
                by["off"].message.to_ascii_lowercase().contains("disabled"),
                "{:?}",
                by["off"]
            );
        }
        other => panic!("expected secret failures, got {other:?}"),
    }
}

#[tokio::test]
async fn list_mode_reads_500_secrets_and_skips_disabled_and_expired() {
    let mut secrets: Vec<SeedSecret> = (0..500)
        .map(|i| secret(&format!("app-s{i:03}"), &format!("v{i}")))
        .collect();
    secrets[10].enabled = false;
    secrets[20].exp = Some(1);
    secrets.push(secret("other-x", "y"));
    let env = start_with(seed_with_vault(secrets), |_| {}).await;
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let listed = kv
        .list_secrets(
            &SecretFilter::Prefix("app-".into()),
            &CancellationToken::new(),
        )
        .await
        .expect("list");
    assert_eq!(listed.secrets.len(), 498);
    assert_eq!(listed.secrets["app-s499"].expose(), "v499");
    let skipped: BTreeMap<_, _> = listed
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        BTreeMap::from([("app-s010", "disabled"), ("app-s020", "expired")])
    );
    let all = kv
        .list_secrets(&SecretFilter::All, &CancellationToken::new())
        .await
        .expect("all");
    assert_eq!(all.secrets.len(), 499);
}

#[tokio::test]
async fn throttled_vault_is_read_completely() {
    let secrets: Vec<SeedSecret> = (0..60)
        .map(|i| secret(&format!("s{i}"), &format!("v{i}")))
        .collect();
    let env = start_with(seed_with_vault(secrets), |_| {}).await;
    env.em.inject(Fault::Status {
        route: RouteMatch {
            host: Some("*.vault.*".into()),
            method: Some("GET".into()),
            path: Some("/secrets/*".into()),
        },
        status: 429,
        retry_after_secs: Some(1),
        scope: Some(Scope {
            count: Some(40),
            share: None,
        }),
    });
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let refs: Vec<SecretRef> = (0..60)
        .map(|i| SecretRef::parse(&format!("s{i}")).expect("ref"))
        .collect();
    let got = kv
        .get_secrets(&refs, &CancellationToken::new())
        .await
        .expect("all read despite the 429 storm");
    assert_eq!(got.len(), 60);
    assert_eq!(got["s59"].expose(), "v59");
}

#[tokio::test]
async fn kudu_with_publishing_credentials_uses_basic_auth_when_allowed() {
    let env = start().await;
    let kudu = azure(&env)
        .web_app(&app_ref())
        .kudu(&slot("staging"))
        .with_auth(KuduAuth::PublishingCredentialsIfAllowed);
    let out = kudu
        .command(
            "echo basic",
            "",
            Duration::from_secs(30),
            &CancellationToken::new(),
        )
        .await
        .expect("command");
    assert_eq!(out.output.trim(), "basic");
    assert!(env.em.requests().iter().any(|r| {
        r.path
            .to_ascii_lowercase()
            .ends_with("/publishingcredentials/list")
    }));
    assert!(env.em.requests().iter().any(|r| {
        r.path
            .to_ascii_lowercase()
            .contains("basicpublishingcredentialspolicies")
    }));
}

#[tokio::test]
async fn a_401_is_sent_again_once_then_reported() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("token cached");
    let get = RouteMatch {
        host: Some("management.*".into()),
        method: Some("GET".into()),
        path: None,
    };
    env.em.clear_requests();
    env.em.inject(Fault::Status {
        route: get.clone(),
        status: 401,
        retry_after_secs: None,
        scope: Some(Scope {
            count: Some(1),
            share: None,
        }),
    });
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("sent again after the 401");
    let arm = |env: &Env| -> Vec<u16> {
        env.em
            .requests()
            .iter()
            .filter(|r| r.host.starts_with("management."))
            .map(|r| r.status)
            .collect()
    };
    assert_eq!(arm(&env), vec![401, 200]);
    env.em.clear_requests();
    env.em.inject(Fault::Status {
        route: get,
        status: 401,
        retry_after_secs: None,
        scope: None,
    });
    let err = web
        .get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect_err("a second 401 is final");
    assert_eq!(err.kind(), ErrorKind::Authentication, "{err}");
    assert_eq!(arm(&env), vec![401, 401]);
}
