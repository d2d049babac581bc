//! Access tokens and OIDC tokens: JWT-shaped strings signed with HMAC-SHA256 under a key that
//! only this emulator instance knows, so every service can check audience and expiry. Every token
//! handed out is also remembered, so leak detectors can search a run's output for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::seed::SecretString;

/// The claims the emulator puts in and reads from tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Claims {
    pub(crate) aud: String,
    pub(crate) iss: String,
    pub(crate) sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) appid: Option<String>,
    pub(crate) iat: i64,
    pub(crate) nbf: i64,
    pub(crate) exp: i64,
    /// Service connection ID (OIDC tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scid: Option<String>,
}

/// Why a presented token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Malformed,
    BadSignature,
}

/// What a credential the emulator handed out or holds is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// An Entra or managed identity access token (a JWT).
    AccessToken,
    /// A Pipelines OIDC token, the client assertion of workload identity federation (a JWT).
    OidcToken,
    /// An app's SCM basic-auth publishing password.
    PublishingPassword,
    /// A client secret of an app registration in the seed.
    ClientSecret,
    /// The managed identity endpoint's `X-IDENTITY-HEADER` value.
    IdentityHeader,
    /// The job's `SYSTEM_ACCESSTOKEN` from the seed.
    SystemAccessToken,
    /// A Functions host key of a function app's slot (master or default function key).
    FunctionHostKey,
}

/// One credential value, for leak detectors. `Debug` never shows the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// What it is.
    pub kind: CredentialKind,
    /// Whose it is, for reports (never the value).
    pub label: String,
    /// The value itself.
    pub value: SecretString,
}

#[derive(Clone)]
pub(crate) struct TokenKey {
    key: [u8; 32],
    /// Every token signed through [`TokenKey::issue`], oldest first. A run issues a few dozen tokens
    /// of a few hundred bytes each, so keeping them all stays small even over a long test binary.
    issued: Arc<Mutex<Vec<Credential>>>,
    /// Tokens whose signature has been checked, with their claims: the key never changes, so a
    /// token verified once stays verified (expiry is checked on every use by the caller). Every
    /// Key Vault read presents the same token, and checking it afresh (base64, HMAC, JSON) was
    /// the largest share of the emulator's time per read in a profile of 2,000 reads at once.
    /// At most [`VERIFIED_CAPACITY`] entries; a full cache starts over.
    verified: Arc<Mutex<HashMap<String, Claims>>>,
}

/// Tokens remembered as verified at once (a few hundred bytes each).
const VERIFIED_CAPACITY: usize = 256;

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let issued = crate::lock(&self.issued).len();
        f.debug_struct("TokenKey")
            .field("key", &"<redacted>")
            .field("issued", &issued)
            .finish()
    }
}

impl TokenKey {
    pub(crate) fn generate() -> Self {
        Self {
            key: rand::random(),
            issued: Arc::new(Mutex::new(Vec::new())),
            verified: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Signs a token that is about to be handed out, and remembers it.
    pub(crate) fn issue(&self, claims: &Claims, kind: CredentialKind) -> String {
        let token = self.sign(claims);
        let label = match kind {
            CredentialKind::OidcToken => format!("OIDC token for {}", claims.sub),
            _ => format!("access token for {} ({})", claims.aud, claims.sub),
        };
        crate::lock(&self.issued).push(Credential {
            kind,
            label,
            value: SecretString::new(token.clone()),
        });
        token
    }

    /// Every token handed out so far, oldest first.
    pub(crate) fn issued(&self) -> Vec<Credential> {
        crate::lock(&self.issued).clone()
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        // HMAC (RFC 2104) over SHA-256, written out because no HMAC crate is in the workspace.
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, b) in self.key.iter().enumerate() {
            ipad[i] ^= b;
            opad[i] ^= b;
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(data)
            .finalize();
        let outer = Sha256::new()
            .chain_update(opad)
            .chain_update(&inner[..])
            .finalize();
        outer[..].to_vec()
    }

    pub(crate) fn sign(&self, claims: &Claims) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        // Serialising a struct of strings and integers cannot fail.
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{body}");
        let sig = URL_SAFE_NO_PAD.encode(self.mac(signing_input.as_bytes()));
        format!("{signing_input}.{sig}")
    }

    pub(crate) fn verify(&self, token: &str) -> Result<Claims, TokenProblem> {
        if let Some(claims) = crate::lock(&self.verified).get(token) {
            return Ok(claims.clone());
        }
        let claims = self.verify_signature(token)?;
        let mut verified = crate::lock(&self.verified);
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, TokenProblem> {
        let mut parts = token.split('.');
        let (Some(h), Some(b), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenProblem::Malformed);
        };
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| TokenProblem::Malformed)?;
        let expected = self.mac(format!("{h}.{b}").as_bytes());
        if !constant_time_eq(&sig, &expected) {
            return Err(TokenProblem::BadSignature);
        }
        let body = URL_SAFE_NO_PAD
            .decode(b)
            .map_err(|_| TokenProblem::Malformed)?;
        serde_json::from_slice(&body).map_err(|_| TokenProblem::Malformed)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Audiences compare without a trailing slash: `https://management.emulator.test/` and
/// `https://management.emulator.test` are the same resource, as in Entra.
pub(crate) fn same_audience(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            aud: "https://management.emulator.test/".into(),
            iss: "x".into(),
            sub: "s".into(),
            tid: Some("t".into()),
            appid: Some("a".into()),
            iat: 1,
            nbf: 1,
            exp: 2,
            scid: None,
        }
    }

    #[test]
    fn signed_tokens_verify_and_tampering_is_caught() {
        let key = TokenKey::generate();
        let token = key.sign(&claims());
        assert_eq!(key.verify(&token), Ok(claims()));
        let other = TokenKey::generate();
        assert_eq!(other.verify(&token), Err(TokenProblem::BadSignature));
        assert_eq!(key.verify("abc"), Err(TokenProblem::Malformed));
    }

    #[test]
    fn a_remembered_token_vouches_for_no_other() {
        let key = TokenKey::generate();
        let token = key.sign(&claims());
        assert_eq!(key.verify(&token), Ok(claims()));
        assert_eq!(
            key.verify(&token),
            Ok(claims()),
            "verified again from memory"
        );
        // The same signature over other claims, and the token cut short, are still refused.
        let (signing_input, sig) = token.rsplit_once('.').expect("three parts");
        let mut other = claims();
        other.aud = "https://vault.emulator.test".into();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).expect("json"));
        let header = signing_input.split('.').next().expect("header");
        let forged = format!("{header}.{forged_body}.{sig}");
        assert_eq!(key.verify(&forged), Err(TokenProblem::BadSignature));
        assert!(key.verify(&token[..token.len() - 2]).is_err());
        // Past the cache's capacity it starts over, and still verifies.
        for i in 0..VERIFIED_CAPACITY + 1 {
            let mut c = claims();
            c.iat = i as i64;
            assert!(key.verify(&key.sign(&c)).is_ok());
        }
        assert!(crate::lock(&key.verified).len() <= VERIFIED_CAPACITY);
        assert_eq!(key.verify(&token), Ok(claims()));
    }

    #[test]
    fn issued_tokens_are_remembered_and_not_debug_printed() {
        let key = TokenKey::generate();
        let token = key.issue(&claims(), CredentialKind::AccessToken);
        let issued = key.issued();
        assert_eq!(issued.len(), 1);
        assert_eq!(issued[0].value.expose(), token);
        assert_eq!(issued[0].kind, CredentialKind::AccessToken);
        assert!(!format!("{key:?} {issued:?}").contains(&token));
        // A signed-only token (not handed out) is not recorded.
        let _ = key.sign(&claims());
        assert_eq!(key.issued().len(), 1);
    }
}
