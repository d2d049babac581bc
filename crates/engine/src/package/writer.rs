//! The writing side of a build: adds the compressed entries, streams the large files itself, reports
//! progress, and writes the manifest as the last entry.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use slot_release_pipelines::Log;
use tokio_util::sync::CancellationToken;
use zip::write::{PreparedZipFile, SimpleFileOptions};
use zip::{CompressionMethod, ZipWriter};

use super::PackageError;
use super::compress::looks_incompressible;
use super::manifest::{MANIFEST_FORMAT, MANIFEST_PATH, Manifest, ManifestFile, ManifestTotal};
use super::options::BuildInfo;
use super::read::{copy_checked, io_entry_error, mode_of, open_entry};
use super::walk::Entry;

pub(super) struct PackageWriter {
    pub(super) zip: ZipWriter<BufWriter<File>>,
    pub(super) archive: PathBuf,
    pub(super) base: SimpleFileOptions,
    pub(super) files: Vec<ManifestFile>,
    pub(super) total_bytes: u64,
    pub(super) done_bytes: u64,
    pub(super) last_percent: Option<u8>,
    pub(super) progress: Option<Log>,
}

impl PackageWriter {
    fn zip_error(&self, entry: &str, source: zip::result::ZipError) -> PackageError {
        PackageError::Zip {
            archive: self.archive.clone(),
            entry: entry.to_owned(),
            source,
        }
    }

    pub(super) fn add_prepared(
        &mut self,
        file: PreparedZipFile,
        record: ManifestFile,
    ) -> Result<(), PackageError> {
        self.zip
            .add_prepared_file(file)
            .map_err(|e| self.zip_error(&record.path, e))?;
        self.record(record);
        Ok(())
    }

    pub(super) fn stream_entry(
        &mut self,
        entry: &Entry,
        cancel: &CancellationToken,
    ) -> Result<(), PackageError> {
        let (mut file, meta) = open_entry(entry)?;
        let mode = mode_of(&meta);
        // A sampling failure only costs the shortcut; a file that changed is caught by the copy below.
        let incompressible = looks_incompressible(entry.size, |offset, sample| {
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(sample)
        })
        .unwrap_or(false);
        file.rewind()
            .map_err(|e| io_entry_error(&entry.name.0, e))?;
        let mut options = self.base;
        if incompressible {
            options = options
                .compression_method(CompressionMethod::Stored)
                .compression_level(None);
        }
        let options = options
            .unix_permissions(mode)
            // Zip64 is decided from the size known up front, so the layout depends only on the input.
            .large_file(entry.size >= u64::from(u32::MAX));
        self.zip
            .start_file(entry.name.0.as_str(), options)
            .map_err(|e| self.zip_error(&entry.name.0, e))?;
        let sha256 = copy_checked(entry, &mut file, &mut self.zip, cancel)?;
        self.record(ManifestFile {
            path: entry.name.0.clone(),
            size: entry.size,
            sha256,
            mode: format!("{mode:04o}"),
        });
        Ok(())
    }

    fn record(&mut self, record: ManifestFile) {
        self.done_bytes += record.size;
        self.files.push(record);
        self.report_progress();
    }

    pub(super) fn report_progress(&mut self) {
        let Some(sink) = &self.progress else { return };
        // 5 % steps: enough to see movement without flooding a plain-text log. No bytes at all is done.
        let exact = self
            .done_bytes
            .saturating_mul(100)
            .checked_div(self.total_bytes)
            .unwrap_or(100);
        let percent = u8::try_from(exact - exact % 5).unwrap_or(100);
        if self.last_percent != Some(percent) {
            self.last_percent = Some(percent);
            sink.progress(percent, "Packaging");
        }
    }

    pub(super) fn finish_manifest(&mut self, info: &BuildInfo) -> Result<Manifest, PackageError> {
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            version: info.version.clone(),
            commit: info.commit.clone(),
            build_id: info.build_id.clone(),
            created_from: info.created_from.clone(),
            files: std::mem::take(&mut self.files),
            total: ManifestTotal {
                files: 0,
                bytes: self.done_bytes,
            },
        };
        let manifest = Manifest {
            total: ManifestTotal {
                files: manifest.files.len() as u64,
                ..manifest.total
            },
            ..manifest
        };
        // Compact, not pretty: for very large trees the manifest is the biggest thing held in memory.
        let mut json = serde_json::to_vec(&manifest).map_err(|e| PackageError::Write {
            archive: self.archive.clone(),
            source: io::Error::other(e),
        })?;
        json.push(b'\n');
        let options = self.base.unix_permissions(0o644);
        self.zip
            .start_file(MANIFEST_PATH, options)
            .map_err(|e| self.zip_error(MANIFEST_PATH, e))?;
        self.zip
            .write_all(&json)
            .map_err(|source| PackageError::Write {
                archive: self.archive.clone(),
                source,
            })?;
        Ok(manifest)
    }
}
