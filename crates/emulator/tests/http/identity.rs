//! Entra token endpoint, Pipelines OIDC, managed identity, and the 401 challenges of the services.

use crate::common::*;
use std::time::Duration;

/// The client-credentials grant with a signed client assertion for `CLIENT`.
async fn assertion_grant(f: &Fixture, assertion: &str) -> (u16, serde_json::Value) {
    token_form(
        f,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
            ("scope", ARM_SCOPE),
        ],
    )
    .await
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

async fn token_form(f: &Fixture, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        f.emu.endpoints().authority,
        f.emu.seed().tenant_id
    );
    let r = f
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(form))
        .send()
        .await
        .expect("token request");
    (r.status().as_u16(), r.json().await.expect("json body"))
}

const ARM_SCOPE: &str = "https://management.emulator.test/.default";

#[tokio::test]
async fn client_secret_issues_tokens_and_bad_secrets_get_entra_errors() {
    let f = start().await;
    let (status, body) = token_form(
        &f,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", ARM_SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 3000));
    assert_eq!(
        body["access_token"].as_str().map(|t| t.split('.').count()),
        Some(3)
    );

    let (status, body) = token_form(
        &f,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", "wrong"),
            ("scope", ARM_SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"][0], 7_000_215);
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.starts_with("AADSTS7000215:"))
    );

    let (status, body) = token_form(
        &f,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "99999999-0000-0000-0000-000000000000"),
            ("client_secret", SECRET),
            ("scope", ARM_SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unauthorized_client");
    assert_eq!(body["error_codes"][0], 700_016);

    let (status, body) = token_form(
        &f,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", "https://management.azure.com/.default"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"][0], 500_011);

    let url = format!(
        "{}/not-the-tenant/oauth2/v2.0/token",
        f.emu.endpoints().authority
    );
    let r = f
        .http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("grant_type", "client_credentials")]))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error_codes"][0], 90_002);
}

async fn oidc_token(f: &Fixture, sc: &str, bearer: &str) -> reqwest::Response {
    f.http
        .post(format!(
            "{}?api-version=7.1&serviceConnectionId={sc}",
            f.emu.endpoints().pipelines_oidc
        ))
        .bearer_auth(bearer)
        .header("content-length", "0")
        .send()
        .await
        .expect("oidc request")
}

const WIF: &str = "5a7c3f10-0000-0000-0000-000000000002";

#[tokio::test]
async fn pipelines_oidc_token_is_exchanged_for_an_access_token() {
    let f = start().await;
    let system = f.emu.seed().system_access_token.expose().to_owned();
    assert_eq!(oidc_token(&f, WIF, "wrong").await.status(), 401);
    assert_eq!(
        oidc_token(&f, "00000000-dead-beef-0000-000000000000", &system)
            .await
            .status(),
        404
    );
    assert_eq!(
        oidc_token(&f, "5a7c3f10-0000-0000-0000-000000000001", &system)
            .await
            .status(),
        400
    );
    let r = oidc_token(&f, WIF, &system).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    let assertion = v["oidcToken"].as_str().expect("oidcToken").to_owned();
    let form = |a: &str| {
        vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", CLIENT.to_owned()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion", a.to_owned()),
            ("scope", ARM_SCOPE.to_owned()),
        ]
    };
    let owned = form(&assertion);
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = token_form(&f, &pairs).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string());

    let owned = form("not.a.token");
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _) = token_form(&f, &pairs).await;
    assert_eq!(status, 401);

    f.emu.set_oidc_token_lifetime(Duration::ZERO);
    let v: serde_json::Value = oidc_token(&f, WIF, &system)
        .await
        .json()
        .await
        .expect("json");
    let expired = v["oidcToken"].as_str().expect("oidcToken").to_owned();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let owned = form(&expired);
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = token_form(&f, &pairs).await;
    assert_eq!(status, 401);
    assert_eq!(body["error_codes"][0], 700_024);
}

#[tokio::test]
async fn managed_identity_endpoint_requires_its_header() {
    let f = start().await;
    let url = format!(
        "{}?api-version=2019-08-01&resource=https://vault.emulator.test",
        f.emu.endpoints().identity
    );
    let r = f.http.get(&url).send().await.expect("send");
    assert_eq!(r.status(), 401);
    let r = f
        .http
        .get(&url)
        .header("x-identity-header", f.emu.identity_header().expose())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(v["access_token"].is_string());
    assert!(
        v["expires_on"]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .is_some()
    );
    assert_eq!(v["resource"], "https://vault.emulator.test");
    // The MI token works against Key Vault.
    let kv = format!("{}/secrets?api-version=7.6", f.emu.vault_url("contoso-kv"));
    let r = f
        .http
        .get(&kv)
        .bearer_auth(v["access_token"].as_str().unwrap_or_default())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn arm_answers_401_with_the_right_challenge_for_missing_expired_and_foreign_tokens() {
    let f = start().await;
    let url = f.site("?api-version=2024-04-01");
    let r = f.http.get(&url).send().await.expect("send");
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        www.starts_with("Bearer authorization_uri=\"https://login.emulator.test:"),
        "{www}"
    );
    assert!(www.contains("error=\"invalid_token\""));
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "AuthenticationFailed");

    let vault_token = f.token("https://vault.emulator.test/.default").await;
    let r = f
        .http
        .get(&url)
        .bearer_auth(vault_token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "InvalidAuthenticationTokenAudience");

    f.emu.set_token_lifetime(Duration::from_secs(1));
    let short = f.arm_token().await;
    assert_eq!(
        f.http
            .get(&url)
            .bearer_auth(&short)
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = f
        .http
        .get(&url)
        .bearer_auth(&short)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "ExpiredAuthenticationToken");
}

#[tokio::test]
async fn service_connection_env_describes_the_emulator_as_a_custom_cloud() {
    let f = start().await;
    let env: std::collections::HashMap<String, String> = f
        .emu
        .service_connection_env(&slot_release_emulator::ConnectionKind::WorkloadIdentityFederation)
        .into_iter()
        .collect();
    let id = WIF;
    assert_eq!(
        env[&format!("ENDPOINT_AUTH_SCHEME_{id}")],
        "WorkloadIdentityFederation"
    );
    assert_eq!(
        env[&format!("ENDPOINT_AUTH_PARAMETER_{id}_SERVICEPRINCIPALID")],
        CLIENT
    );
    assert_eq!(env[&format!("ENDPOINT_DATA_{id}_SUBSCRIPTIONID")], SUB);
    assert_eq!(
        env[&format!("ENDPOINT_URL_{id}")],
        format!("{}/", f.emu.endpoints().arm)
    );
    assert_eq!(
        env["SYSTEM_OIDCREQUESTURI"],
        f.emu.endpoints().pipelines_oidc
    );
    let auth: serde_json::Value =
        serde_json::from_str(&env[&format!("ENDPOINT_AUTH_{id}")]).expect("json");
    assert_eq!(auth["scheme"], "WorkloadIdentityFederation");
    // The OIDC URL in the env really works with the access token in the env.
    let r = f
        .http
        .post(format!(
            "{}?api-version=7.1&serviceConnectionId={id}",
            env["SYSTEM_OIDCREQUESTURI"]
        ))
        .bearer_auth(&env["SYSTEM_ACCESSTOKEN"])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
}

/// A service principal's certificate and the PKCS#8 key that signs its assertions.
struct CertCredential {
    pem: String,
    der: Vec<u8>,
    key: aws_lc_rs::signature::RsaKeyPair,
}

fn cert_credential() -> CertCredential {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
    let cert = rcgen::CertificateParams::new(vec!["sp.test".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    CertCredential {
        pem: cert.pem(),
        der: cert.der().to_vec(),
        key: aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&key.serialize_der()).expect("pkcs8"),
    }
}

/// An RS256 client assertion with `thumbprint_of`'s x5t#S256, signed by `signer`'s key.
fn assertion(
    signer: &CertCredential,
    thumbprint_of: &CertCredential,
    claims: &serde_json::Value,
) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let s256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &thumbprint_of.der);
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t#S256": URL_SAFE_NO_PAD.encode(s256.as_ref())});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0u8; signer.key.public_modulus_len()];
    signer
        .key
        .sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// A client assertion with a header of our choosing (algorithm, thumbprint encodings), signed by
/// `signer` with RS256 or PS256 as the header says.
fn assertion_with(
    signer: &CertCredential,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = if header["alg"] == "PS256" {
        &aws_lc_rs::signature::RSA_PSS_SHA256
    } else {
        &aws_lc_rs::signature::RSA_PKCS1_SHA256
    };
    let mut sig = vec![0u8; signer.key.public_modulus_len()];
    signer
        .key
        .sign(
            padding,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[tokio::test]
async fn certificate_assertions_as_microsofts_clients_write_them() {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let registered = cert_credential();
    let pem = registered.pem.clone();
    let f = start_with(move |o| {
        o.client_certificates
            .push(slot_release_emulator::ClientCertificate {
                client_id: CLIENT.into(),
                certificate_pem: pem,
            });
    })
    .await;
    let (authority, tenant) = (f.emu.endpoints().authority, f.emu.seed().tenant_id.clone());
    let v2 = format!("{authority}/{tenant}/oauth2/v2.0/token");
    let v1 = format!("{authority}/{tenant}/oauth2/token");
    let s256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &registered.der);
    let sha1 = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &registered.der,
    );
    // Decimal seconds, as MSAL Python writes `time.time() + 600`, and no `nbf`.
    let now = now_unix() as f64 + 0.25;
    let msal_claims = serde_json::json!({"aud": v2, "iss": CLIENT, "sub": CLIENT, "jti": "j", "iat": now, "exp": now + 600.0});
    // MSAL Python: PS256 with a padded base64url x5t#S256.
    let msal_ps256 = assertion_with(
        &registered,
        &serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": URL_SAFE.encode(s256.as_ref())}),
        &msal_claims,
    );
    let (status, body) = assertion_grant(&f, &msal_ps256).await;
    assert_eq!(status, 200, "PS256 + x5t#S256 (padded): {body}");
    // MSAL Python without a SHA-256 thumbprint: RS256 with a padded base64url x5t.
    let msal_rs256 = assertion_with(
        &registered,
        &serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": URL_SAFE.encode(sha1.as_ref())}),
        &msal_claims,
    );
    let (status, body) = assertion_grant(&f, &msal_rs256).await;
    assert_eq!(status, 200, "RS256 + x5t (padded): {body}");
    // azure-arm-rest: RS256, x5t in standard base64, addressed to the v1 endpoint.
    let now = now_unix();
    let arr = assertion_with(
        &registered,
        &serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": STANDARD.encode(sha1.as_ref())}),
        &serde_json::json!({"aud": v1, "iss": CLIENT, "sub": CLIENT, "jti": "0.5", "nbf": now - 1000, "exp": now + 8_640_000}),
    );
    let (status, body) = assertion_grant(&f, &arr).await;
    assert_eq!(status, 200, "standard-base64 x5t, v1 audience: {body}");
    // A PS256 header over a PKCS#1 v1.5 signature does not verify.
    let mut mixed = msal_rs256.split('.').map(str::to_owned).collect::<Vec<_>>();
    mixed[0] = {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        URL_SAFE_NO_PAD.encode(
            serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t": URL_SAFE.encode(sha1.as_ref())})
                .to_string(),
        )
    };
    let (status, body) = assertion_grant(&f, &mixed.join(".")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error_codes"][0], 700_027, "{body}");
}

#[tokio::test]
async fn certificate_assertions_are_verified_like_entra() {
    let registered = cert_credential();
    let other = cert_credential();
    let pem = registered.pem.clone();
    let f = start_with(move |o| {
        o.client_certificates
            .push(slot_release_emulator::ClientCertificate {
                client_id: CLIENT.into(),
                certificate_pem: pem,
            });
    })
    .await;
    let endpoint = format!(
        "{}/{}/oauth2/v2.0/token",
        f.emu.endpoints().authority,
        f.emu.seed().tenant_id
    );
    let now = now_unix();
    let claims = |aud: &str, iss: &str, nbf: i64, exp: i64| serde_json::json!({"aud": aud, "iss": iss, "sub": iss, "jti": "j", "nbf": nbf, "exp": exp});
    let good = claims(&endpoint, CLIENT, now, now + 600);
    let send = |a: String| {
        let f = &f;
        async move { assertion_grant(f, &a).await }
    };

    let (status, body) = send(assertion(&registered, &registered, &good)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");

    let cases = [
        (
            assertion(&other, &other, &good),
            700_027,
            "is not registered",
        ),
        (
            assertion(&other, &registered, &good),
            700_027,
            "signature validation",
        ),
        (
            assertion(
                &registered,
                &registered,
                &claims(&endpoint, CLIENT, now - 7200, now - 3600),
            ),
            700_024,
            "valid time range",
        ),
        (
            assertion(
                &registered,
                &registered,
                &claims(
                    "https://login.emulator.test/other/oauth2/v2.0/token",
                    CLIENT,
                    now,
                    now + 600,
                ),
            ),
            50_013,
            "audience",
        ),
        (
            assertion(
                &registered,
                &registered,
                &claims(&endpoint, "someone-else", now, now + 600),
            ),
            50_027,
            "'iss' and 'sub'",
        ),
    ];
    for (a, code, text) in cases {
        let (status, body) = send(a).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(body["error_codes"][0], code, "{body}");
        let description = body["error_description"].as_str().expect("description");
        assert!(
            description.starts_with(&format!("AADSTS{code}:")),
            "{description}"
        );
        assert!(description.contains(text), "{description}");
    }
}

#[tokio::test]
async fn a_certificate_for_an_unknown_client_is_refused_at_start() {
    let registered = cert_credential();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = slot_release_emulator::EmulatorOptions::new(
        slot_release_emulator::Seed::sample(),
        dir.path(),
    );
    opts.client_certificates
        .push(slot_release_emulator::ClientCertificate {
            client_id: "not-a-client".into(),
            certificate_pem: registered.pem,
        });
    let err = slot_release_emulator::Emulator::start(opts)
        .await
        .expect_err("unknown client");
    assert!(err.to_string().contains("not-a-client"), "{err}");
}

#[tokio::test]
async fn a_seed_file_registers_certificate_credentials() {
    let registered = cert_credential();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seed.json");
    let pem = registered.pem.clone();
    let file = path.clone();
    let f = start_with(move |o| {
        // The fixture's seed, written as a file with the certificate under the client, as a user would.
        let mut seed = serde_json::to_value(&o.seed).expect("seed json");
        let client = seed["clients"]
            .as_array_mut()
            .expect("clients")
            .iter_mut()
            .find(|c| c["clientId"] == CLIENT)
            .expect("the client");
        client["certificates"] = serde_json::json!([pem]);
        std::fs::write(&file, seed.to_string()).expect("write seed");
        o.seed = slot_release_emulator::Seed::from_file(&file).expect("seed file");
    })
    .await;
    assert!(
        f.emu
            .seed()
            .clients
            .iter()
            .any(|c| c.certificates == [registered.pem.clone()]),
        "the certificate was read from the file"
    );
    let endpoint = format!(
        "{}/{}/oauth2/v2.0/token",
        f.emu.endpoints().authority,
        f.emu.seed().tenant_id
    );
    let now = now_unix();
    let claims = serde_json::json!({"aud": endpoint, "iss": CLIENT, "sub": CLIENT, "jti": "j", "nbf": now, "exp": now + 600});
    let (status, body) = assertion_grant(&f, &assertion(&registered, &registered, &claims)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
}
