//! The writing side of a build: writes the compressed files in archive order as the threads finish them,
//! joins a large file's chunks into one entry, reports progress, and ends with the manifest.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use slot_release_pipelines::Log;

use super::PackageError;
use super::archive::{ArchiveWriter, EntryRecord, Method, needs_zip64};
use super::compress::{Done, LargeFile, Pool};
use super::manifest::{MANIFEST_PATH, ManifestTotal, ManifestWriter};
use super::walk::Entries;

pub(super) struct PackageWriter {
    archive: ArchiveWriter,
    manifest: ManifestWriter,
    /// The archive's final path, for error messages.
    path: PathBuf,
    written: usize,
    /// The large file whose chunks are being written.
    large: Option<LargeEntry>,
    total_bytes: u64,
    done_bytes: u64,
    last_percent: Option<u8>,
    progress: Option<Log>,
}

/// A chunked entry, from its first chunk to its last.
struct LargeEntry {
    record: EntryRecord,
    crc: crc32fast::Hasher,
    sha256: Sha256,
}

/// The archive as written: file, digest, length and the manifest's totals.
pub(super) struct Finished {
    pub(super) file: std::fs::File,
    pub(super) sha256: [u8; 32],
    pub(super) size: u64,
    pub(super) total: ManifestTotal,
}

impl PackageWriter {
    /// A writer for `total_bytes` of files into `archive`; reports 0 % at once.
    pub(super) fn new(
        archive: ArchiveWriter,
        manifest: ManifestWriter,
        path: PathBuf,
        total_bytes: u64,
        progress: Option<Log>,
    ) -> Self {
        let mut writer = Self {
            archive,
            manifest,
            path,
            written: 0,
            large: None,
            total_bytes,
            done_bytes: 0,
            last_percent: None,
            progress,
        };
        writer.report_progress();
        writer
    }

    fn write_err(&self, source: io::Error) -> PackageError {
        PackageError::Write {
            archive: self.path.clone(),
            source,
        }
    }

    /// How many entries are completely written.
    pub(super) fn entries_written(&self) -> usize {
        self.written
    }

    /// Writes one finished job, the next in archive order, and gives its buffers back to `pool`.
    pub(super) fn write_done(
        &mut self,
        entries: &Entries,
        done: Done,
        pool: &Pool,
    ) -> Result<(), PackageError> {
        match done {
            Done::Failed(error) => Err(error),
            Done::Files {
                first,
                data,
                files,
                error,
            } => {
                debug_assert_eq!(first, self.written);
                let mut at = 0;
                for (k, file) in files.iter().enumerate() {
                    let i = first + k;
                    let record = EntryRecord {
                        method: file.method,
                        mode: file.mode,
                        crc: file.crc,
                        compressed: file.len as u64,
                        size: entries.size(i),
                        offset: self.archive.position(),
                        descriptor: false,
                        zip64: false,
                    };
                    let bytes = &data[at..at + file.len];
                    at += file.len;
                    self.write_entry(entries.name(i), &record, bytes, &file.sha256)
                        .map_err(|e| self.write_err(e))?;
                }
                pool.give(data);
                match error {
                    Some(error) => Err(error),
                    None => Ok(()),
                }
            }
            Done::Chunk {
                file,
                index,
                input,
                dictionary,
                output,
                crc,
            } => {
                let result =
                    self.write_chunk(entries, &file, index, &input[dictionary..], &output, &crc);
                pool.give(input);
                pool.give(output);
                result.map_err(|e| self.write_err(e))
            }
        }
    }

    fn write_entry(
        &mut self,
        name: &str,
        record: &EntryRecord,
        bytes: &[u8],
        sha256: &[u8; 32],
    ) -> io::Result<()> {
        self.archive.local_header(name, record)?;
        self.archive.write(bytes)?;
        self.archive.finish_entry(name, record)?;
        self.manifest.add(name, record.size, sha256, record.mode)?;
        self.written += 1;
        self.done_bytes += record.size;
        self.report_progress();
        Ok(())
    }

    fn write_chunk(
        &mut self,
        entries: &Entries,
        file: &Arc<LargeFile>,
        index: u64,
        data: &[u8],
        output: &[u8],
        crc: &crc32fast::Hasher,
    ) -> io::Result<()> {
        debug_assert_eq!(file.entry, self.written);
        let name = entries.name(file.entry);
        let size = entries.size(file.entry);
        if index == 0 {
            let record = EntryRecord {
                method: if file.stored {
                    Method::Stored
                } else {
                    Method::Deflated
                },
                mode: file.mode,
                crc: 0,
                compressed: 0,
                size,
                offset: self.archive.position(),
                descriptor: true,
                // Decided from the size known up front, so the layout depends only on the input.
                zip64: needs_zip64(size),
            };
            self.archive.local_header(name, &record)?;
            self.large = Some(LargeEntry {
                record,
                crc: crc32fast::Hasher::new(),
                sha256: Sha256::new(),
            });
        }
        let Some(large) = self.large.as_mut() else {
            return Err(io::Error::other("a chunk came before its file's first"));
        };
        large.sha256.update(data);
        large.crc.combine(crc);
        let bytes = if file.stored { data } else { output };
        large.record.compressed += bytes.len() as u64;
        self.archive.write(bytes)?;
        self.done_bytes += data.len() as u64;
        if index + 1 == file.chunks {
            let Some(LargeEntry {
                mut record,
                crc,
                sha256,
            }) = self.large.take()
            else {
                return Err(io::Error::other("a chunk came before its file's first"));
            };
            record.crc = crc.finalize();
            let sha256: [u8; 32] = sha256.finalize().into();
            self.archive.finish_entry(name, &record)?;
            self.manifest.add(name, size, &sha256, record.mode)?;
            self.written += 1;
        }
        self.report_progress();
        Ok(())
    }

    fn report_progress(&mut self) {
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

    /// Writes the manifest as the last entry, then the central directory.
    pub(super) fn finish(self) -> Result<Finished, PackageError> {
        let Self {
            mut archive,
            manifest,
            path,
            ..
        } = self;
        let write_err = |source| PackageError::Write {
            archive: path.clone(),
            source,
        };
        let mut spooled = manifest.finish().map_err(write_err)?;
        let record = EntryRecord {
            method: Method::Deflated,
            mode: 0o644,
            crc: spooled.crc,
            compressed: spooled.compressed,
            size: spooled.size,
            offset: archive.position(),
            descriptor: false,
            zip64: needs_zip64(spooled.size.max(spooled.compressed)),
        };
        archive
            .local_header(MANIFEST_PATH, &record)
            .map_err(write_err)?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut copied = 0u64;
        loop {
            let n = match io::Read::read(&mut spooled.spool, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(write_err(e)),
            };
            archive.write(&buf[..n]).map_err(write_err)?;
            copied += n as u64;
        }
        if copied != spooled.compressed {
            return Err(write_err(io::Error::other(
                "the manifest spool was cut short",
            )));
        }
        archive
            .finish_entry(MANIFEST_PATH, &record)
            .map_err(write_err)?;
        let (file, sha256, size) = archive.finish().map_err(write_err)?;
        Ok(Finished {
            file,
            sha256,
            size,
            total: spooled.total,
        })
    }
}
