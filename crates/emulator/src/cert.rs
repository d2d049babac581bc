//! Certificate credentials of app registrations: the public certificates a client may sign its
//! client-assertion JWTs with, and the checks Entra applies to such an assertion (RS256 or PS256
//! signature by the registered key, `x5t`/`x5t#S256` thumbprint, `aud`, `iss`/`sub`, `nbf`/`exp`).
//!
//! Assertions are read as Microsoft's clients write them: MSAL Python signs PS256 with `x5t#S256`
//! (and RS256 with `x5t`), writes the thumbprints as padded base64url and `exp`/`iat` as decimal
//! seconds; azure-arm-rest's certificate path writes `x5t` in standard base64 and addresses the v1
//! token endpoint.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde::de::Deserializer;

use crate::EmulatorError;

/// The public certificate a client registered, parsed once at start.
#[derive(Debug, Clone)]
pub(crate) struct RegisteredCert {
    pub(crate) client_id: String,
    /// SHA-1 of the DER certificate: Entra's "thumbprint", what `x5t` carries.
    sha1: Vec<u8>,
    /// SHA-256 of the DER certificate, what `x5t#S256` carries.
    sha256: Vec<u8>,
    /// The `subjectPublicKey` bit string content: a PKCS#1 `RSAPublicKey`.
    rsa_public_key: Vec<u8>,
}

impl RegisteredCert {
    /// Parses the first `CERTIFICATE` block of `pem` registered for `client_id`.
    pub(crate) fn from_pem(client_id: &str, pem: &str) -> Result<Self, EmulatorError> {
        let bad = |why: &str| {
            EmulatorError::SeedInvalid(format!("the certificate of client '{client_id}' {why}"))
        };
        let der = certificate_der(pem).ok_or_else(|| bad("has no PEM CERTIFICATE block"))?;
        let rsa_public_key = rsa_public_key(&der)
            .ok_or_else(|| bad("is not an X.509 certificate with an RSA public key"))?;
        Ok(Self {
            client_id: client_id.to_owned(),
            sha1: aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der)
                .as_ref()
                .to_vec(),
            sha256: aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der)
                .as_ref()
                .to_vec(),
            rsa_public_key,
        })
    }
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn certificate_der(pem: &str) -> Option<Vec<u8>> {
    let mut inside = false;
    let mut b64 = String::new();
    for line in pem.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            inside = true;
            b64.clear();
        } else if line == "-----END CERTIFICATE-----" && inside {
            return STANDARD.decode(b64.as_bytes()).ok();
        } else if inside {
            b64.push_str(line);
        }
    }
    None
}

/// One DER TLV: (tag, content, rest of the input).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
/// DER of the rsaEncryption algorithm OID 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

/// Walks `Certificate → tbsCertificate → subjectPublicKeyInfo` (RFC 5280 §4.1) and returns the
/// RSA key inside. Only the fields before the key are skipped, so extensions never matter.
fn rsa_public_key(cert_der: &[u8]) -> Option<Vec<u8>> {
    let (SEQUENCE, cert, _) = tlv(cert_der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // The explicit [0] version is optional (absent means v1).
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        rest = tlv(rest)?.2;
    }
    let (SEQUENCE, spki, _) = tlv(rest)? else {
        return None;
    };
    let (SEQUENCE, algorithm, after) = tlv(spki)? else {
        return None;
    };
    if !algorithm.starts_with(RSA_ENCRYPTION_OID) {
        return None;
    }
    let (BIT_STRING, bits, _) = tlv(after)? else {
        return None;
    };
    // The first byte of a BIT STRING counts unused bits; a key has none.
    match bits.split_first() {
        Some((0, key)) => Some(key.to_vec()),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
struct AssertionHeader {
    alg: String,
    #[serde(default)]
    x5t: Option<String>,
    #[serde(default, rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    #[serde(default)]
    aud: String,
    #[serde(default)]
    iss: String,
    #[serde(default)]
    sub: String,
    #[serde(default, deserialize_with = "seconds")]
    nbf: Option<i64>,
    #[serde(default, deserialize_with = "seconds")]
    exp: Option<i64>,
}

/// A NumericDate (RFC 7519 §2): JSON number of seconds, integral or not (MSAL Python writes
/// `time.time() + 600`). The fraction is dropped, as Entra does.
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n: Option<serde_json::Number> = Option::deserialize(d)?;
    Ok(n.and_then(|n| {
        n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e15)
                // Bounded above, so the cast cannot saturate.
                .map(|f| f.floor() as i64)
        })
    }))
}

/// A thumbprint header: base64url with or without padding, or standard base64 (which
/// azure-arm-rest writes), all decoded alike.
fn thumbprint(value: &str) -> Option<Vec<u8>> {
    let normal: String = value
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(normal.as_bytes()).ok()
}

/// The signature algorithms Entra accepts on a certificate assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Ps256,
}

impl Alg {
    fn parse(alg: &str) -> Option<Self> {
        match alg {
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            _ => None,
        }
    }

    fn verification(self) -> &'static aws_lc_rs::signature::RsaParameters {
        match self {
            Self::Rs256 => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            Self::Ps256 => &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA256,
        }
    }
}

/// Why Entra refused a certificate-signed client assertion; each maps to one AADSTS error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AssertionRejection {
    /// Not three base64url parts with JSON header and claims (AADSTS50027).
    Malformed,
    /// No registered certificate has the header's thumbprint (AADSTS700027, key not found).
    UnknownKey { thumbprint: String },
    /// The thumbprint matches but the signature does not verify (AADSTS700027).
    BadSignature,
    /// `aud` is not this token endpoint (AADSTS50013).
    WrongAudience { aud: String },
    /// `iss` or `sub` is not the client ID (AADSTS50027).
    WrongSubject,
    /// Outside `nbf`..`exp` (AADSTS700024).
    OutsideValidity { nbf: i64, exp: i64 },
}

/// Whether `assertion` is an RS256 or PS256 JWT, i.e. one this module checks rather than a
/// Pipelines OIDC token (which the emulator signs with HS256).
pub(crate) fn is_certificate_signed(assertion: &str) -> bool {
    header(assertion).is_some_and(|h| Alg::parse(&h.alg).is_some())
}

fn header(assertion: &str) -> Option<AssertionHeader> {
    let h = assertion.split('.').next()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()
}

/// What the token endpoint needs to check an assertion.
pub(crate) struct Expectation<'a> {
    pub(crate) client_id: &'a str,
    /// The token endpoint URLs (v2 and v1) the assertion may be addressed to.
    pub(crate) token_endpoints: &'a [String],
    pub(crate) now: i64,
}

/// Checks a certificate-signed client assertion against the certificates registered for the client,
/// in the order Entra reports problems: format, key, signature, audience, subject, time.
pub(crate) fn verify(
    certs: &[RegisteredCert],
    assertion: &str,
    want: &Expectation<'_>,
) -> Result<(), AssertionRejection> {
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AssertionRejection::Malformed);
    };
    let head = header(assertion).ok_or(AssertionRejection::Malformed)?;
    let alg = Alg::parse(&head.alg).ok_or(AssertionRejection::Malformed)?;
    let claims: AssertionClaims = URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AssertionRejection::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| AssertionRejection::Malformed)?;
    let s256 = head.x5t_s256.as_deref().and_then(thumbprint);
    let sha1 = head.x5t.as_deref().and_then(thumbprint);
    let cert = certs
        .iter()
        .filter(|r| r.client_id.eq_ignore_ascii_case(want.client_id))
        .find(|r| {
            s256.as_deref() == Some(r.sha256.as_slice()) || sha1.as_deref() == Some(&r.sha1[..])
        })
        .ok_or_else(|| AssertionRejection::UnknownKey {
            // Entra names the SHA-1 thumbprint when the client sent one, else the SHA-256 one.
            thumbprint: sha1
                .as_deref()
                .or(s256.as_deref())
                .map(hex_upper)
                .unwrap_or_default(),
        })?;
    let key =
        aws_lc_rs::signature::UnparsedPublicKey::new(alg.verification(), &cert.rsa_public_key);
    key.verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| AssertionRejection::BadSignature)?;
    if !want.token_endpoints.iter().any(|e| {
        claims
            .aud
            .trim_end_matches('/')
            .eq_ignore_ascii_case(e.trim_end_matches('/'))
    }) {
        return Err(AssertionRejection::WrongAudience { aud: claims.aud });
    }
    if !claims.iss.eq_ignore_ascii_case(want.client_id)
        || !claims.sub.eq_ignore_ascii_case(want.client_id)
    {
        return Err(AssertionRejection::WrongSubject);
    }
    // Entra tolerates five minutes of clock skew on both ends.
    const SKEW: i64 = 300;
    let nbf = claims.nbf.unwrap_or(i64::MIN);
    let exp = claims.exp.unwrap_or(i64::MIN);
    if want.now + SKEW < nbf || exp + SKEW <= want.now {
        return Err(AssertionRejection::OutsideValidity { nbf, exp });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let cert = rcgen::CertificateParams::new(vec!["sp.test".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        (cert.pem(), key)
    }

    #[test]
    fn the_rsa_key_is_found_in_a_certificate() {
        let (pem, key) = self_signed();
        let reg = RegisteredCert::from_pem("c", &pem).expect("parses");
        // rcgen's public key DER for RSA is the PKCS#1 RSAPublicKey, the same bytes the walk found.
        assert_eq!(reg.rsa_public_key, key.public_key_raw());
        assert_eq!((reg.sha1.len(), reg.sha256.len()), (20, 32));
    }

    #[test]
    fn non_certificates_are_refused_with_the_client_named() {
        let err = RegisteredCert::from_pem(
            "app-7",
            "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----",
        )
        .expect_err("not a certificate");
        assert!(err.to_string().contains("app-7"), "{err}");
        assert!(RegisteredCert::from_pem("c", "no pem").is_err());
    }

    #[test]
    fn malformed_assertions_are_rejected() {
        let (pem, _) = self_signed();
        let reg = RegisteredCert::from_pem("c", &pem).expect("parses");
        let want = Expectation {
            client_id: "c",
            token_endpoints: &["https://login.test/t/oauth2/v2.0/token".to_owned()],
            now: 0,
        };
        assert_eq!(
            verify(&[reg], "a.b", &want),
            Err(AssertionRejection::Malformed)
        );
        assert!(!is_certificate_signed("not-a-jwt"));
    }
}
