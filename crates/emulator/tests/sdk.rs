//! The official Azure SDK crates work against the emulator unchanged apart from cloud, CA and
//! resolver configuration: azure_identity credentials get tokens, and the Key Vault client lists
//! and gets secrets with challenge-resource verification left on.

mod common;

use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientMethodOptions, ClientOptions, RetryOptions, Transport};
use azure_identity::{
    AzurePipelinesCredential, AzurePipelinesCredentialOptions, ClientAssertion,
    ClientAssertionCredential, ClientAssertionCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions,
};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use futures::TryStreamExt;

use common::*;

const ARM_SCOPE: &str = "https://management.emulator.test/.default";
const WIF: &str = "5a7c3f10-0000-0000-0000-000000000002";

fn client_options(http: reqwest::Client, authority: &str) -> ClientOptions {
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = authority.to_owned();
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
        retry: RetryOptions::none(),
        ..Default::default()
    }
}

#[derive(Debug)]
struct PipelinesAssertion {
    http: reqwest::Client,
    url: String,
    token: String,
}

#[async_trait::async_trait]
impl ClientAssertion for PipelinesAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let v: serde_json::Value = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("content-length", "0")
            .send()
            .await
            .map_err(|e| azure_core::Error::new(azure_core::error::ErrorKind::Io, e))?
            .json()
            .await
            .map_err(|e| azure_core::Error::new(azure_core::error::ErrorKind::DataConversion, e))?;
        Ok(v["oidcToken"].as_str().unwrap_or_default().to_owned())
    }
}

#[tokio::test]
async fn azure_identity_credentials_get_tokens_and_key_vault_client_reads_secrets() {
    let f = start().await;
    let e = f.emu.endpoints();
    let tenant = f.emu.seed().tenant_id.clone();

    let secret_cred = ClientSecretCredential::new(
        &tenant,
        CLIENT.to_owned(),
        Secret::new(SECRET),
        Some(ClientSecretCredentialOptions {
            client_options: client_options(f.http.clone(), &e.authority),
        }),
    )
    .expect("credential");
    let tok = secret_cred
        .get_token(&[ARM_SCOPE], None)
        .await
        .expect("client secret token");
    assert!(!tok.token.secret().is_empty());
    // The token is accepted by ARM.
    let r = f
        .http
        .get(f.site("?api-version=1"))
        .bearer_auth(tok.token.secret())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);

    let wrong = ClientSecretCredential::new(
        &tenant,
        CLIENT.to_owned(),
        Secret::new("wrong"),
        Some(ClientSecretCredentialOptions {
            client_options: client_options(f.http.clone(), &e.authority),
        }),
    )
    .expect("credential");
    let err = wrong
        .get_token(&[ARM_SCOPE], None)
        .await
        .expect_err("wrong secret fails");
    assert!(format!("{err:?}").contains("AADSTS7000215"), "{err:?}");

    let assertion = PipelinesAssertion {
        http: f.http.clone(),
        url: format!(
            "{}?api-version=7.1&serviceConnectionId={WIF}",
            e.pipelines_oidc
        ),
        token: f.emu.seed().system_access_token.expose().to_owned(),
    };
    let assertion_cred = ClientAssertionCredential::new(
        tenant.clone(),
        CLIENT.to_owned(),
        assertion,
        Some(ClientAssertionCredentialOptions {
            client_options: client_options(f.http.clone(), &e.authority),
        }),
    )
    .expect("credential");
    let tok = assertion_cred
        .get_token(&[ARM_SCOPE], None)
        .await
        .expect("client assertion token");
    assert!(!tok.token.secret().is_empty());

    // Key Vault with the default challenge-resource verification.
    let kv = SecretClient::new(
        &f.emu.vault_url("contoso-kv"),
        secret_cred.clone(),
        Some(SecretClientOptions {
            api_version: "7.6".into(),
            client_options: client_options(f.http.clone(), &e.authority),
            ..Default::default()
        }),
    )
    .expect("secret client");
    let names: Vec<String> = kv
        .list_secret_properties(None)
        .expect("pager")
        .map_ok(|p| p.resource_id().map(|r| r.name).unwrap_or_default())
        .try_collect()
        .await
        .expect("list");
    assert_eq!(
        names,
        vec!["api-key", "db-password", "disabled-one", "expired-one"]
    );
    let value = kv
        .get_secret("db-password", None)
        .await
        .expect("get")
        .into_model()
        .expect("model")
        .value;
    assert_eq!(value.as_deref(), Some("s3cr3t"));
    let err = kv
        .get_secret("disabled-one", None)
        .await
        .expect_err("disabled");
    assert!(format!("{err:?}").contains("Forbidden"), "{err:?}");

    // AzurePipelinesCredential reads SYSTEM_OIDCREQUESTURI from the environment, which this
    // (multi-threaded) test process must not change, so it runs in a child process of this binary.
    // Async, because the emulator serves from this test's runtime while the child talks to it.
    let out = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "pipelines_credential_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SYSTEM_OIDCREQUESTURI", &e.pipelines_oidc)
        .env("EMULATOR_CHILD_AUTHORITY", &e.authority)
        .env("EMULATOR_CHILD_CA", f.emu.ca_path())
        .env("EMULATOR_CHILD_TENANT", &tenant)
        .env(
            "EMULATOR_CHILD_ACCESS_TOKEN",
            f.emu.seed().system_access_token.expose(),
        )
        .output()
        .await
        .expect("child runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PIPELINES-TOKEN-OK"), "{stdout}");
}

/// Runs only as the child of the test above (it returns at once otherwise).
#[tokio::test]
async fn pipelines_credential_child() {
    let Ok(authority) = std::env::var("EMULATOR_CHILD_AUTHORITY") else {
        return;
    };
    let env = |k: &str| std::env::var(k).expect("child env");
    let ca = std::fs::read(env("EMULATOR_CHILD_CA")).expect("ca");
    let http = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(&ca).expect("pem")])
        .dns_resolver(Arc::new(slot_release_emulator::LoopbackResolver))
        .no_proxy()
        .build()
        .expect("client");
    let cred = AzurePipelinesCredential::new(
        env("EMULATOR_CHILD_TENANT"),
        CLIENT.to_owned(),
        WIF,
        env("EMULATOR_CHILD_ACCESS_TOKEN"),
        Some(AzurePipelinesCredentialOptions {
            credential_options: ClientAssertionCredentialOptions {
                client_options: client_options(http, &authority),
            },
        }),
    )
    .expect("pipelines credential");
    let tok = cred
        .get_token(&[ARM_SCOPE], None)
        .await
        .expect("pipelines token");
    assert!(!tok.token.secret().is_empty());
    println!("PIPELINES-TOKEN-OK");
}
