//! The manifest every package carries (what was packaged, with each file's SHA-256), the digest type, and
//! reading the manifest back from a built archive.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PackageError;
use super::deflate::Stream;
use super::options::BuildInfo;

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
    /// The totals of the manifest stored inside ([`read_manifest`] reads the whole of it: the build does
    /// not keep a record per file in memory).
    pub total: ManifestTotal,
    /// How long the build took.
    pub duration: Duration,
}

/// The manifest's JSON around its list of files: everything before the list's first record, and
/// everything after its last, exactly as `serde_json` writes the whole [`Manifest`].
fn around_files(info: &BuildInfo, total: ManifestTotal) -> io::Result<(Vec<u8>, Vec<u8>)> {
    const EMPTY: &[u8] = br#""files":[]"#;
    let without_files = Manifest {
        format: MANIFEST_FORMAT,
        version: info.version.clone(),
        commit: info.commit.clone(),
        build_id: info.build_id.clone(),
        created_from: info.created_from.clone(),
        files: Vec::new(),
        total,
    };
    let mut text = serde_json::to_vec(&without_files).map_err(io::Error::other)?;
    // The last match is the key: a quote inside a string value is escaped, and only numbers follow it.
    let at = text
        .windows(EMPTY.len())
        .rposition(|w| w == EMPTY)
        .ok_or_else(|| io::Error::other("the manifest has no list of files"))?;
    let tail = text.split_off(at + EMPTY.len() - 1);
    Ok((text, tail))
}

/// The manifest, written and compressed as the files go by: the same JSON as `serde_json` gives the whole
/// [`Manifest`], but what is kept is the compressed text, in a spool file, never a record per file.
pub(super) struct ManifestWriter {
    info: BuildInfo,
    stream: Stream,
    spool: BufWriter<File>,
    text: Vec<u8>,
    compressed: Vec<u8>,
    crc: crc32fast::Hasher,
    size: u64,
    compressed_size: u64,
    total: ManifestTotal,
}

/// The manifest written by [`ManifestWriter::finish`], ready to be copied into the archive.
pub(super) struct SpooledManifest {
    pub(super) spool: File,
    pub(super) crc: u32,
    pub(super) size: u64,
    pub(super) compressed: u64,
    pub(super) total: ManifestTotal,
}

impl ManifestWriter {
    /// Compressed text goes to `spool`, an empty scratch file.
    pub(super) fn new(info: &BuildInfo, level: u8, spool: File) -> io::Result<Self> {
        let (head, _) = around_files(info, ManifestTotal { files: 0, bytes: 0 })?;
        let mut writer = Self {
            info: info.clone(),
            stream: Stream::new(level),
            spool: BufWriter::with_capacity(64 * 1024, spool),
            text: Vec::with_capacity(TEXT_BATCH + 1024),
            compressed: Vec::new(),
            crc: crc32fast::Hasher::new(),
            size: 0,
            compressed_size: 0,
            total: ManifestTotal { files: 0, bytes: 0 },
        };
        writer.text.extend_from_slice(&head);
        Ok(writer)
    }

    /// Adds one packaged file.
    pub(super) fn add(
        &mut self,
        path: &str,
        size: u64,
        sha256: &[u8; 32],
        mode: u32,
    ) -> io::Result<()> {
        if self.total.files > 0 {
            self.text.push(b',');
        }
        let record = ManifestFile {
            path: path.to_owned(),
            size,
            sha256: Sha256Hex::from_digest(sha256),
            mode: format!("{mode:04o}"),
        };
        serde_json::to_writer(&mut self.text, &record).map_err(io::Error::other)?;
        self.total.files += 1;
        self.total.bytes += size;
        if self.text.len() >= TEXT_BATCH {
            self.compress_text(false)?;
        }
        Ok(())
    }

    fn compress_text(&mut self, last: bool) -> io::Result<()> {
        self.crc.update(&self.text);
        self.size += self.text.len() as u64;
        self.stream.push(&self.text, &mut self.compressed)?;
        self.text.clear();
        if last {
            self.stream.finish(&mut self.compressed)?;
        }
        self.spool.write_all(&self.compressed)?;
        self.compressed_size += self.compressed.len() as u64;
        self.compressed.clear();
        Ok(())
    }

    /// Closes the JSON and the stream and rewinds the spool.
    pub(super) fn finish(mut self) -> io::Result<SpooledManifest> {
        let (_, tail) = around_files(&self.info, self.total)?;
        self.text.extend_from_slice(&tail);
        self.text.push(b'\n');
        self.compress_text(true)?;
        let mut spool = self.spool.into_inner().map_err(|e| e.into_error())?;
        spool.seek(SeekFrom::Start(0))?;
        Ok(SpooledManifest {
            spool,
            crc: self.crc.finalize(),
            size: self.size,
            compressed: self.compressed_size,
            total: self.total,
        })
    }
}

/// How much JSON is gathered before it is handed to deflate.
const TEXT_BATCH: usize = 64 * 1024;

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
    fn the_streamed_manifest_is_what_serde_writes_for_the_whole_one() {
        let info = BuildInfo {
            version: "1.4.2".to_owned(),
            commit: Some("0123abc".to_owned()),
            build_id: "7".to_owned(),
            created_from: r#"a "quoted" "files":[] place"#.to_owned(),
        };
        let files: Vec<ManifestFile> = (0..3000u32)
            .map(|i| ManifestFile {
                path: format!("dir/ü{i}.txt"),
                size: u64::from(i) * 7,
                sha256: Sha256Hex::of(&i.to_le_bytes()),
                mode: if i % 3 == 0 { "0755" } else { "0644" }.to_owned(),
            })
            .collect();
        let mut writer = ManifestWriter::new(&info, 6, tempfile::tempfile().unwrap()).unwrap();
        for f in &files {
            let mut digest = [0u8; 32];
            for (k, pair) in f.sha256.as_str().as_bytes().chunks(2).enumerate() {
                digest[k] = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
            }
            let mode = u32::from_str_radix(&f.mode, 8).unwrap();
            writer.add(&f.path, f.size, &digest, mode).unwrap();
        }
        let mut spooled = writer.finish().unwrap();
        let mut compressed = Vec::new();
        spooled.spool.read_to_end(&mut compressed).unwrap();
        assert_eq!(compressed.len() as u64, spooled.compressed);
        let mut text = Vec::new();
        flate2::read::DeflateDecoder::new(compressed.as_slice())
            .read_to_end(&mut text)
            .unwrap();
        let whole = Manifest {
            format: MANIFEST_FORMAT,
            version: info.version.clone(),
            commit: info.commit.clone(),
            build_id: info.build_id.clone(),
            created_from: info.created_from.clone(),
            total: ManifestTotal {
                files: 3000,
                bytes: files.iter().map(|f| f.size).sum(),
            },
            files,
        };
        let mut expected = serde_json::to_vec(&whole).unwrap();
        expected.push(b'\n');
        assert!(
            text == expected,
            "{}",
            String::from_utf8_lossy(&text[..200])
        );
        assert_eq!(spooled.size, expected.len() as u64);
        assert_eq!(spooled.crc, crc32fast::hash(&expected));
        assert_eq!(spooled.total, whole.total);
    }

    #[test]
    fn sha256_hex_rejects_non_hex() {
        assert!(Sha256Hex::try_from("zz".repeat(32)).is_err());
        assert_eq!(
            Sha256Hex::of(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
