//! Compressing small files on several threads and handing them to the writer in archive order, within one
//! memory budget shared by all threads; files deflate cannot shrink are stored.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, mpsc};

use tokio_util::sync::CancellationToken;
use zip::CompressionMethod;
use zip::write::{PreparedZipFile, SimpleFileOptions, ZipFileBuilder};

use super::PackageError;
use super::manifest::ManifestFile;
use super::options::BuildOptions;
use super::read::{mode_of, open_entry, read_checked};
use super::walk::Entry;
use super::writer::PackageWriter;

/// How many bytes of a file are deflated to guess whether the whole file would shrink.
const SAMPLE_BYTES: usize = 4 * 1024;

/// Files up to this size are deflated whole without a guess: the guess would cost a good part of the work.
const SAMPLE_MIN_FILE: u64 = 4 * SAMPLE_BYTES as u64;

/// Whether deflating `sample` makes it smaller. Level 2, not 1: zlib-rs's level 1 (`deflate_quick`) codes
/// with fixed Huffman trees only, which expand skewed but compressible bytes (media with some redundancy),
/// so it would store files that zip's level 6 still shrinks.
fn sample_shrinks(sample: &[u8]) -> bool {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(2));
    let compressed = ZipFileBuilder::new("sample", options).and_then(|mut b| {
        b.write_all(sample)?;
        b.finish()
    });
    // An error here only costs the shortcut: the file is then deflated whole as usual.
    compressed.map_or(true, |p| p.compressed_size() < sample.len() as u64)
}

/// Whether a file of `len` bytes looks incompressible (already compressed media, archives, random data),
/// judged from samples at its start, middle and end that `sample_at(offset, buf)` fills. Deflating such a
/// file costs as much as deflating text and gains nothing, so it is stored. The start is tried first, so a
/// compressible file costs one small fast sample; all three must fail to shrink before the file is stored.
pub(super) fn looks_incompressible(
    len: u64,
    mut sample_at: impl FnMut(u64, &mut [u8]) -> io::Result<()>,
) -> io::Result<bool> {
    if len < SAMPLE_MIN_FILE {
        return Ok(false);
    }
    let mut sample = [0u8; SAMPLE_BYTES];
    let last = len - SAMPLE_BYTES as u64;
    for offset in [0, last / 2, last] {
        sample_at(offset, &mut sample)?;
        if sample_shrinks(&sample) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Compresses one file read whole into `buf` (reused between files of one thread). The entry is stored
/// when it looks incompressible or when deflating it did not make it smaller, as Info-ZIP does.
fn prepare_entry(
    entry: &Entry,
    base: SimpleFileOptions,
    buf: &mut Vec<u8>,
) -> Result<(PreparedZipFile, ManifestFile), PackageError> {
    let (mut file, meta) = open_entry(entry)?;
    let mode = mode_of(&meta);
    let sha256 = read_checked(entry, &mut file, buf)?;
    let zip_err = |source| PackageError::Unreadable {
        path: entry.name.0.clone(),
        source: io::Error::other(source),
    };
    let options = base.unix_permissions(mode);
    let data = buf.as_slice();
    let compress = |options: SimpleFileOptions| {
        let mut builder = ZipFileBuilder::new(&entry.name.0, options).map_err(zip_err)?;
        builder.write_all(data).map_err(|e| zip_err(e.into()))?;
        builder.finish().map_err(zip_err)
    };
    let stored = options
        .compression_method(CompressionMethod::Stored)
        .compression_level(None);
    let incompressible = looks_incompressible(data.len() as u64, |offset, sample| {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let bytes = data
            .get(start..start.saturating_add(sample.len()))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        sample.copy_from_slice(bytes);
        Ok(())
    })
    .unwrap_or(false);
    let prepared = if incompressible {
        compress(stored)?
    } else {
        let deflated = compress(options)?;
        if deflated.compressed_size() < data.len() as u64 {
            deflated
        } else {
            drop(deflated);
            compress(stored)?
        }
    };
    Ok((
        prepared,
        ManifestFile {
            path: entry.name.0.clone(),
            size: entry.size,
            sha256,
            mode: format!("{mode:04o}"),
        },
    ))
}

/// Hands out the entries to compress in archive order and bounds what is in flight between the
/// compressing threads and the writer: input bytes and entry count, one budget shared by all threads.
///
/// Entries are reserved in archive order under one lock, so whenever the writer waits for the next entry
/// that entry is already reserved (or the budget is empty and it fits): the bound cannot deadlock.
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
    max_bytes: u64,
    max_files: usize,
    stream_threshold: u64,
    cancel: CancellationToken,
}

#[derive(Default)]
struct GateState {
    next: usize,
    bytes: u64,
    files: usize,
    stop: bool,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next entry for a compressing thread, waiting for room in the budget; `None` when done or stopped.
    fn take(&self, entries: &[Entry]) -> Option<usize> {
        let mut s = self.lock();
        loop {
            if s.stop || s.next >= entries.len() || self.cancel.is_cancelled() {
                return None;
            }
            let i = s.next;
            let size = entries[i].size;
            if size > self.stream_threshold {
                // The writer streams it itself when it gets there.
                s.next += 1;
                continue;
            }
            if s.files == 0 || (s.bytes + size <= self.max_bytes && s.files < self.max_files) {
                s.next += 1;
                s.bytes += size;
                s.files += 1;
                return Some(i);
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Returns an entry's share of the budget once the writer is done with it.
    fn release(&self, size: u64) {
        let mut s = self.lock();
        s.bytes -= size;
        s.files -= 1;
        drop(s);
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }
}

/// Stops the other threads when a compressing thread unwinds, so the writer is not left waiting.
struct StopOnPanic<'a>(&'a Gate);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

pub(super) type Prepared = Result<(PreparedZipFile, ManifestFile), PackageError>;

/// Compresses the entries on `threads` threads and writes them in order as soon as each one's turn comes;
/// files above the stream threshold are streamed by the writer while the threads work ahead.
pub(super) fn compress_and_write(
    entries: &[Entry],
    writer: &mut PackageWriter,
    opts: &BuildOptions,
    threads: usize,
) -> Result<(), PackageError> {
    let gate = Gate {
        state: Mutex::new(GateState::default()),
        changed: Condvar::new(),
        max_bytes: opts.window_bytes,
        max_files: opts.window_files,
        stream_threshold: opts.stream_threshold,
        cancel: opts.cancel.clone(),
    };
    let base = writer.base;
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<(usize, Prepared)>();
        for t in 0..threads {
            let done_tx = done_tx.clone();
            let gate = &gate;
            let spawned = std::thread::Builder::new()
                .name(format!("slot-release-zip-{t}"))
                .spawn_scoped(scope, move || {
                    let _guard = StopOnPanic(gate);
                    let mut buf = Vec::new();
                    while let Some(i) = gate.take(entries) {
                        let prepared = prepare_entry(&entries[i], base, &mut buf);
                        if done_tx.send((i, prepared)).is_err() {
                            break;
                        }
                    }
                });
            if let Err(e) = spawned {
                gate.stop();
                return Err(PackageError::InvalidOption {
                    reason: format!("cannot start {threads} compression threads: {e}"),
                });
            }
        }
        // The writer holds no sender: if every thread is gone, `recv` fails instead of waiting forever.
        drop(done_tx);
        let result = write_in_order(entries, writer, &gate, &done_rx);
        gate.stop();
        result
    })
}

fn write_in_order(
    entries: &[Entry],
    writer: &mut PackageWriter,
    gate: &Gate,
    done: &mpsc::Receiver<(usize, Prepared)>,
) -> Result<(), PackageError> {
    let mut ready: BTreeMap<usize, Prepared> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        if gate.cancel.is_cancelled() {
            return Err(PackageError::Cancelled);
        }
        if entry.size > gate.stream_threshold {
            writer.stream_entry(entry, &gate.cancel)?;
            continue;
        }
        let prepared = loop {
            if let Some(p) = ready.remove(&i) {
                break p;
            }
            let Ok((j, p)) = done.recv() else {
                // The threads stop taking entries on a cancel; that is not a failure of this entry.
                if gate.cancel.is_cancelled() {
                    return Err(PackageError::Cancelled);
                }
                return Err(PackageError::Unreadable {
                    path: entry.name.0.clone(),
                    source: io::Error::other("the compression threads stopped early"),
                });
            };
            ready.insert(j, p);
        };
        let (file, record) = prepared?;
        writer.add_prepared(file, record)?;
        gate.release(entry.size);
    }
    Ok(())
}
