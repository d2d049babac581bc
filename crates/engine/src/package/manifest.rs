//! The manifest every package carries (what was packaged, with each file's SHA-256), the digest type, and
//! reading the manifest back from a built archive.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PackageError;

/// Where the manifest lives inside every package.
pub const MANIFEST_PATH: &str = ".slot-release/manifest.json";

/// The manifest format written by this version.
pub const MANIFEST_FORMAT: u32 = 1;

/// The manifest stored at [`MANIFEST_PATH`] inside the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    pub version: String,
    pub commit: Option<String>,
    pub build_id: String,
    pub created_from: String,
    pub files: Vec<ManifestFile>,
    pub total: ManifestTotal,
}

/// One packaged file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: Sha256Hex,
    /// `0644` or `0755`.
    pub mode: String,
}

/// Totals over the packaged files (the manifest itself not included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestTotal {
    pub files: u64,
    pub bytes: u64,
}

/// A SHA-256 digest as 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub(super) fn from_digest(digest: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in digest {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        Self(s)
    }

    /// The digest of everything fed to `hasher` (for data read in chunks).
    pub fn finish(hasher: Sha256) -> Self {
        Self::from_digest(&hasher.finalize())
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_digest(&Sha256::digest(data))
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s))
        } else {
            Err(format!("{s:?} is not a lower-case hex SHA-256"))
        }
    }
}

impl From<Sha256Hex> for String {
    fn from(h: Sha256Hex) -> String {
        h.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result of [`build_package`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPackage {
    /// The archive.
    pub path: PathBuf,
    /// `<archive>.sha256`, in `sha256sum` format.
    pub sha256_path: PathBuf,
    /// SHA-256 of the archive.
    pub sha256: Sha256Hex,
    /// Size of the archive in bytes.
    pub size: u64,
    /// The manifest stored inside.
    pub manifest: Manifest,
    /// How long the build took.
    pub duration: Duration,
}

/// Reads the manifest back from a built package (used by tests, `rehearse` and the staging check).
pub fn read_manifest(archive: &Path) -> Result<Manifest, PackageError> {
    let io_err = |source| PackageError::Write {
        archive: archive.to_owned(),
        source,
    };
    let file = File::open(archive).map_err(io_err)?;
    let mut zip = zip::ZipArchive::new(file).map_err(|source| PackageError::Zip {
        archive: archive.to_owned(),
        entry: "(central directory)".to_owned(),
        source,
    })?;
    let mut entry = zip
        .by_name(MANIFEST_PATH)
        .map_err(|source| PackageError::Zip {
            archive: archive.to_owned(),
            entry: MANIFEST_PATH.to_owned(),
            source,
        })?;
    let mut text = Vec::new();
    entry.read_to_end(&mut text).map_err(io_err)?;
    serde_json::from_slice(&text).map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidData, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_rejects_non_hex() {
        assert!(Sha256Hex::try_from("zz".repeat(32)).is_err());
        assert_eq!(
            Sha256Hex::of(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
