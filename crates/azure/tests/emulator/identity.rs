//! Signing in: every credential scheme (secret, certificate, workload identity federation, managed
//! identity), Entra's errors passed on, TLS trust, and tokens renewed or a 401 sent again once.

use super::*;

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
        body_contains: None,
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
