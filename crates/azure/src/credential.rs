//! Turns a [`CredentialSource`] into an `azure_core` token credential. Service principals use
//! `azure_identity`'s secret and client-assertion credentials; the workload-identity assertion (Azure
//! Pipelines OIDC), the certificate assertion (an RS256 JWT signed in pure Rust with aws-lc-rs, so no
//! OpenSSL is needed) and the managed-identity client are ours, because they must read their settings
//! from the agent environment we were given rather than the process environment.

use crate::client::client_options;
use crate::cloud::Cloud;
use crate::connection::{CredentialSource, ManagedIdentityEndpoint, Secret};
use crate::error::{AzureError, Result};
use async_trait::async_trait;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::ClientMethodOptions;
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
    ClientSecretCredential, ClientSecretCredentialOptions, DeveloperToolsCredential,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::sync::{Arc, Mutex};
use url::Url;

fn azure_err(message: impl Into<String>) -> azure_core::Error {
    azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, message.into())
}

/// Reads a token endpoint's answer as JSON, turning every failure into one message that names the endpoint
/// (`what`) and, for HTTP errors, adds `hint` for the user.
async fn token_endpoint_json(
    sent: std::result::Result<reqwest::Response, reqwest::Error>,
    what: &str,
    hint: &str,
) -> azure_core::Result<serde_json::Value> {
    let rsp = sent.map_err(|e| {
        azure_err(format!(
            "cannot reach {what}: {}",
            crate::client::chain_message(&e)
        ))
    })?;
    let status = rsp.status();
    let body = rsp
        .bytes()
        .await
        .map_err(|e| azure_err(format!("reading the answer of {what}: {e}")))?;
    if !status.is_success() {
        let (code, message) = crate::client::azure_error_body(&body);
        return Err(azure_err(format!(
            "{what} answered HTTP {status} {code}: {message}{hint}"
        )));
    }
    serde_json::from_slice(&body)
        .map_err(|e| azure_err(format!("the answer of {what} is not JSON: {e}")))
}

/// Build the token credential for `source` in `cloud`, using `http` for every token request.
pub(crate) fn build_credential(
    source: &CredentialSource,
    cloud: &Cloud,
    http: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>> {
    let fail = |e: azure_core::Error| AzureError::Authentication {
        credential: source.kind_name(),
        scope: String::new(),
        message: crate::client::chain_message(&e),
        source: Some(Box::new(e)),
    };
    let opts = || client_options(http, cloud);
    Ok(match source {
        CredentialSource::ServicePrincipalSecret {
            tenant_id,
            client_id,
            secret,
        } => ClientSecretCredential::new(
            tenant_id,
            client_id.clone(),
            secret.clone(),
            Some(ClientSecretCredentialOptions {
                client_options: opts(),
            }),
        )
        .map_err(fail)?,
        CredentialSource::WorkloadIdentityFederation {
            tenant_id,
            client_id,
            service_connection_id,
            oidc_request_uri,
            system_access_token,
            id_token,
        } => {
            let assertion = PipelinesOidcAssertion {
                http: http.clone(),
                request_uri: oidc_request_uri.clone(),
                service_connection_id: service_connection_id.clone(),
                access_token: system_access_token.clone(),
                late_bound: Arc::new(Mutex::new(id_token.clone())),
            };
            ClientAssertionCredential::new(
                tenant_id.clone(),
                client_id.clone(),
                assertion,
                Some(ClientAssertionCredentialOptions {
                    client_options: opts(),
                }),
            )
            .map_err(fail)?
        }
        CredentialSource::ServicePrincipalCertificate {
            tenant_id,
            client_id,
            certificate_pem,
        } => {
            let token_url = format!(
                "{}/{tenant_id}/oauth2/v2.0/token",
                cloud.authority_host.as_str().trim_end_matches('/')
            );
            let assertion =
                CertificateAssertion::from_pem(certificate_pem.secret(), client_id, &token_url)?;
            ClientAssertionCredential::new(
                tenant_id.clone(),
                client_id.clone(),
                assertion,
                Some(ClientAssertionCredentialOptions {
                    client_options: opts(),
                }),
            )
            .map_err(fail)?
        }
        CredentialSource::ManagedIdentity {
            client_id,
            endpoint,
        } => Arc::new(ManagedIdentity {
            http: http.clone(),
            endpoint: endpoint.clone(),
            client_id: client_id.clone(),
        }),
        CredentialSource::DeveloperCli { .. } => {
            DeveloperToolsCredential::new(None).map_err(fail)?
        }
        CredentialSource::StaticToken { token } => Arc::new(StaticToken(token.clone())),
    })
}

/// Client assertion for workload identity federation: a fresh OIDC token from Azure Pipelines each
/// time Entra needs one (they live about 10 minutes, so a long release re-requests it).
#[derive(Clone)]
struct PipelinesOidcAssertion {
    http: reqwest::Client,
    request_uri: Url,
    service_connection_id: String,
    access_token: Secret,
    late_bound: Arc<Mutex<Option<Secret>>>,
}

impl std::fmt::Debug for PipelinesOidcAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelinesOidcAssertion")
            .field("request_uri", &self.request_uri.path())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ClientAssertion for PipelinesOidcAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        // The agent may hand over an id token up front; use it once, then ask for fresh ones.
        let handed_over = self.late_bound.lock().ok().and_then(|mut g| g.take());
        if let Some(t) = handed_over {
            return Ok(t.secret().to_owned());
        }
        let mut url = self.request_uri.clone();
        url.query_pairs_mut()
            .append_pair("api-version", "7.1")
            .append_pair("serviceConnectionId", &self.service_connection_id);
        let rsp = self
            .http
            .post(url)
            .bearer_auth(self.access_token.secret())
            .header("X-TFS-FedAuthRedirect", "Suppress")
            .header("Content-Type", "application/json")
            .header("Content-Length", "0")
            .send()
            .await;
        let v = token_endpoint_json(
            rsp,
            "the Azure Pipelines OIDC endpoint",
            " (is System.AccessToken mapped and does the connection use workload identity federation?)",
        )
        .await?;
        v.get("oidcToken")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| azure_err("the OIDC token response has no oidcToken"))
    }
}

/// Client assertion for a certificate: an RS256 JWT with the certificate's thumbprints, signed with its
/// private key. Signing is pure Rust (aws-lc-rs, already our TLS provider), so certificate auth does not
/// need azure_identity's OpenSSL-backed `client_certificate` feature.
struct CertificateAssertion {
    key: aws_lc_rs::signature::RsaKeyPair,
    header_b64: String,
    client_id: String,
    audience: String,
}

impl std::fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// PEM blocks of a text: (label, DER bytes).
pub(crate) fn pem_blocks(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![];
    let mut label: Option<String> = None;
    let mut b64 = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(l) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        {
            label = Some(l.to_owned());
            b64.clear();
        } else if line.starts_with("-----END ") {
            if let Some(l) = label.take()
                && let Ok(der) = STANDARD.decode(b64.as_bytes())
            {
                out.push((l, der));
            }
            b64.clear();
        } else if label.is_some() && !line.contains(':') {
            b64.push_str(line);
        }
    }
    out
}

impl CertificateAssertion {
    fn from_pem(pem: &str, client_id: &str, audience: &str) -> Result<Self> {
        let bad = |m: &str| AzureError::Authentication {
            credential: "service principal (certificate)",
            scope: String::new(),
            message: m.to_owned(),
            source: None,
        };
        let blocks = pem_blocks(pem);
        let cert = blocks
            .iter()
            .find(|(l, _)| l == "CERTIFICATE")
            .ok_or_else(|| bad("the certificate PEM has no CERTIFICATE block"))?;
        let key = blocks
            .iter()
            .find_map(|(l, der)| match l.as_str() {
                "PRIVATE KEY" => Some(aws_lc_rs::signature::RsaKeyPair::from_pkcs8(der).map_err(|e| e.to_string())),
                "RSA PRIVATE KEY" => Some(aws_lc_rs::signature::RsaKeyPair::from_der(der).map_err(|e| e.to_string())),
                _ => None,
            })
            .ok_or_else(|| bad("the certificate PEM has no PRIVATE KEY or RSA PRIVATE KEY block (an encrypted key is not supported)"))?
            .map_err(|e| bad(&format!("the private key is not a usable RSA key: {e}")))?;
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert.1);
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert.1);
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            "x5t#S256": URL_SAFE_NO_PAD.encode(sha256.as_ref()),
        });
        Ok(Self {
            key,
            header_b64: URL_SAFE_NO_PAD.encode(header.to_string()),
            client_id: client_id.to_owned(),
            audience: audience.to_owned(),
        })
    }

    fn sign(&self) -> azure_core::Result<String> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = serde_json::json!({
            "aud": self.audience,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        });
        let input = format!(
            "{}.{}",
            self.header_b64,
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &rng,
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| azure_err("signing the client assertion failed"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

#[async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        self.sign()
    }
}

/// Managed identity token client (App Service `IDENTITY_ENDPOINT` or IMDS).
#[derive(Debug)]
struct ManagedIdentity {
    http: reqwest::Client,
    endpoint: ManagedIdentityEndpoint,
    client_id: Option<String>,
}

#[async_trait]
impl TokenCredential for ManagedIdentity {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(azure_err("managed identity needs exactly one scope"));
        };
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let req = match &self.endpoint {
            ManagedIdentityEndpoint::AppService { endpoint, header } => {
                let mut u = endpoint.clone();
                u.query_pairs_mut()
                    .append_pair("api-version", "2019-08-01")
                    .append_pair("resource", resource);
                if let Some(c) = &self.client_id {
                    u.query_pairs_mut().append_pair("client_id", c);
                }
                self.http
                    .get(u)
                    .header("X-IDENTITY-HEADER", header.secret())
            }
            ManagedIdentityEndpoint::Imds { endpoint } => {
                let mut u = endpoint.clone();
                u.query_pairs_mut()
                    .append_pair("api-version", "2018-02-01")
                    .append_pair("resource", resource);
                if let Some(c) = &self.client_id {
                    u.query_pairs_mut().append_pair("client_id", c);
                }
                self.http.get(u).header("Metadata", "true")
            }
        };
        let v = token_endpoint_json(req.send().await, "the managed identity endpoint", "").await?;
        let token = v
            .get("access_token")
            .and_then(|t| t.as_str())
            .ok_or_else(|| azure_err("managed identity response has no access_token"))?;
        let expires_on = v
            .get("expires_on")
            .and_then(|e| {
                e.as_str()
                    .and_then(|s| s.parse::<i64>().ok())
                    .or_else(|| e.as_i64())
            })
            .or_else(|| {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                v.get("expires_in")
                    .and_then(|e| {
                        e.as_str()
                            .and_then(|s| s.parse::<i64>().ok())
                            .or_else(|| e.as_i64())
                    })
                    .map(|s| now + s)
            })
            .ok_or_else(|| azure_err("managed identity response has no expires_on"))?;
        let expires = time::OffsetDateTime::from_unix_timestamp(expires_on)
            .map_err(|e| azure_err(format!("managed identity expires_on: {e}")))?;
        Ok(AccessToken::new(Secret::new(token.to_owned()), expires))
    }
}

/// A fixed token (tests, emulator rehearsals); never refreshed.
#[derive(Debug)]
struct StaticToken(Secret);

#[async_trait]
impl TokenCredential for StaticToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            self.0.clone(),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_found() {
        let text = "junk\n-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nAw==\n-----END PRIVATE KEY-----\n";
        let b = pem_blocks(text);
        assert_eq!(
            b,
            vec![
                ("CERTIFICATE".to_owned(), vec![0, 1, 2]),
                ("PRIVATE KEY".to_owned(), vec![3])
            ]
        );
    }

    #[test]
    fn certificate_assertion_is_a_verifiable_rs256_jwt() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let cert = rcgen::CertificateParams::new(vec!["sp.test".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        let a = CertificateAssertion::from_pem(
            &pem,
            "client-1",
            "https://login.test/t/oauth2/v2.0/token",
        )
        .expect("assertion");
        let jwt = a.sign().expect("signed");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(header["alg"], "RS256");
        let sha1 =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.der());
        assert_eq!(header["x5t"], URL_SAFE_NO_PAD.encode(sha1.as_ref()));
        assert_eq!(
            (claims["iss"].as_str(), claims["sub"].as_str()),
            (Some("client-1"), Some("client-1"))
        );
        assert_eq!(claims["aud"], "https://login.test/t/oauth2/v2.0/token");
        let public = aws_lc_rs::signature::KeyPair::public_key(&a.key)
            .as_ref()
            .to_vec();
        let verifier = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            public,
        );
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
        verifier
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .expect("signature verifies");
        // Two assertions differ (fresh jti), so a replayed one is detectable.
        assert_ne!(a.sign().expect("signed"), jwt);
    }

    #[test]
    fn certificate_without_key_is_rejected_by_name() {
        let err = CertificateAssertion::from_pem(
            "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----",
            "c",
            "a",
        )
        .expect_err("no key");
        assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
    }
}
