//! Compressing on several threads and handing the results to the writer in archive order, within one
//! budget of buffer bytes shared by all threads.
//!
//! The work is cut into jobs in archive order: a batch of consecutive small files (each compressed whole,
//! at most one chunk's worth of input in all), or one chunk of a large file. Every job holds at most one
//! or two buffers of a fixed size, taken from a pool and given back once written, so the memory in flight
//! is the budget whatever the tree holds, and the allocator sees the same few blocks over and over.
//! Whether a file is stored or deflated, and where its chunks are cut, depends only on its bytes and the
//! chunk size, never on the thread count or the timing: the archive is the same with 1 or N threads.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, mpsc};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::PackageError;
use super::archive::Method;
use super::deflate::{Encoder, WINDOW, worst_case};
use super::options::BuildOptions;
use super::read::{fill_at, mode_of, open_entry, read_range, read_whole};
use super::walk::Entries;
use super::writer::PackageWriter;

/// At most this many files in one batch: enough to make the hand-over cheap, few enough that a tree of
/// small files still spreads over every thread.
const BATCH_FILES: usize = 64;

/// A large file being compressed in chunks, opened once and read by every thread at fixed offsets.
#[derive(Debug)]
pub(super) struct LargeFile {
    pub(super) entry: usize,
    file: File,
    pub(super) stored: bool,
    pub(super) mode: u32,
    pub(super) chunks: u64,
}

enum Job {
    /// Entries `first..end`, each compressed whole.
    Files {
        first: usize,
        end: usize,
    },
    Chunk {
        file: Arc<LargeFile>,
        index: u64,
    },
    /// A large file that could not be opened: reported when the writer gets to it.
    Failed(PackageError),
}

/// One small file, compressed.
#[derive(Debug)]
pub(super) struct FileDone {
    /// Its bytes in the batch's data, after the previous file's.
    pub(super) len: usize,
    pub(super) crc: u32,
    pub(super) method: Method,
    pub(super) mode: u32,
    pub(super) sha256: [u8; 32],
}

/// A finished job, for the writer.
#[derive(Debug)]
pub(super) enum Done {
    Files {
        first: usize,
        data: Vec<u8>,
        files: Vec<FileDone>,
        /// The file after the last one in `files` failed (the batch stopped there).
        error: Option<PackageError>,
    },
    Chunk {
        file: Arc<LargeFile>,
        index: u64,
        /// The previous chunk's tail that primed the encoder, then this chunk's bytes.
        input: Vec<u8>,
        dictionary: usize,
        /// The deflated chunk; empty when the file is stored.
        output: Vec<u8>,
        crc: crc32fast::Hasher,
    },
    Failed(PackageError),
}

/// Buffers of one size that go to the writer and come back, so memory is reused, not reallocated.
pub(super) struct Pool {
    free: Mutex<Vec<Vec<u8>>>,
    size: usize,
}

impl Pool {
    fn new(size: usize) -> Self {
        Self {
            free: Mutex::new(Vec::new()),
            size,
        }
    }

    fn take(&self) -> Vec<u8> {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| Vec::with_capacity(self.size))
    }

    pub(super) fn give(&self, mut buf: Vec<u8>) {
        // A buffer that had to grow (deflate asked for more room than its bound) is let go.
        if buf.capacity() == 0 || buf.capacity() > 2 * self.size {
            return;
        }
        buf.clear();
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(buf);
    }
}

/// Hands out the jobs in archive order and bounds the buffer bytes in flight between the compressing
/// threads and the writer, one budget shared by all threads.
///
/// Jobs are handed out in archive order under one lock, so whenever the writer waits for the next job
/// that job is already out (or the budget is empty and it fits): the bound cannot deadlock.
struct Gate<'a> {
    entries: &'a Entries,
    state: Mutex<GateState>,
    changed: Condvar,
    chunk: u64,
    buffer: u64,
    budget: u64,
    cancel: CancellationToken,
}

#[derive(Default)]
struct GateState {
    next: usize,
    /// The large file whose chunks are being handed out, and the next chunk's index.
    large: Option<(Arc<LargeFile>, u64)>,
    seq: u64,
    in_flight: u64,
    stop: bool,
}

enum Next {
    Files(usize),
    Open,
    Chunk(Arc<LargeFile>, u64),
}

impl Gate<'_> {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next job, its sequence number and its cost, waiting for room in the budget if `wait` (else
    /// `None` when there is none); `None` when done or stopped.
    fn take(&self, encoder: &mut Encoder, wait: bool) -> Option<(u64, Job, u64)> {
        let entries = self.entries;
        let mut s = self.lock();
        loop {
            if s.stop || self.cancel.is_cancelled() {
                return None;
            }
            let (next, cost) = match &s.large {
                Some((file, index)) => (
                    Next::Chunk(file.clone(), *index),
                    if file.stored { 1 } else { 2 },
                ),
                None if s.next >= entries.len() => return None,
                None if entries.size(s.next) > self.chunk => (Next::Open, 2),
                None => (Next::Files(self.batch_end(s.next)), 1),
            };
            let cost = cost * self.buffer;
            if s.in_flight != 0 && s.in_flight + cost > self.budget {
                if !wait {
                    return None;
                }
                s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let seq = s.seq;
            s.seq += 1;
            let job = match next {
                Next::Files(end) => {
                    let first = s.next;
                    s.next = end;
                    Job::Files { first, end }
                }
                Next::Open => match self.open_large(s.next, encoder) {
                    Ok(file) => {
                        let file = Arc::new(file);
                        s.large = Some((file.clone(), 1));
                        Job::Chunk { file, index: 0 }
                    }
                    Err(error) => {
                        // Everything before it is already out; nothing after it will be written.
                        s.stop = true;
                        return Some((seq, Job::Failed(error), 0));
                    }
                },
                Next::Chunk(file, index) => {
                    if index + 1 < file.chunks {
                        s.large = Some((file.clone(), index + 1));
                    } else {
                        s.large = None;
                        s.next += 1;
                    }
                    Job::Chunk { file, index }
                }
            };
            s.in_flight += cost;
            return Some((seq, job, cost));
        }
    }

    /// Where a batch starting at `first` ends: consecutive small files, at most one chunk of input in all.
    fn batch_end(&self, first: usize) -> usize {
        let entries = self.entries;
        let mut end = first;
        let mut bytes = 0;
        while end < entries.len()
            && end - first < BATCH_FILES
            && entries.size(end) <= self.chunk
            && (end == first || bytes + entries.size(end) <= self.chunk)
        {
            bytes += entries.size(end);
            end += 1;
        }
        end
    }

    /// Opens a large file and decides, from samples, whether it is stored. Done under the lock (a few small
    /// reads, once per large file) so every chunk job knows the file and its method.
    fn open_large(&self, entry: usize, encoder: &mut Encoder) -> Result<LargeFile, PackageError> {
        let (file, meta) = open_entry(self.entries, entry)?;
        let size = self.entries.size(entry);
        // A sampling failure only costs the shortcut; a file that changed is caught when it is read.
        let stored = encoder
            .looks_incompressible(size, |offset, sample| fill_at(&file, sample, offset))
            .unwrap_or(false);
        Ok(LargeFile {
            entry,
            stored,
            mode: mode_of(&meta),
            chunks: size.div_ceil(self.chunk),
            file,
        })
    }

    /// Returns a job's share of the budget once the writer is done with it.
    fn release(&self, cost: u64) {
        let mut s = self.lock();
        s.in_flight -= cost;
        drop(s);
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }
}

/// Stops the other threads when a compressing thread unwinds, so the writer is not left waiting.
struct StopOnPanic<'a, 'b>(&'a Gate<'b>);

impl Drop for StopOnPanic<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

/// The size of every pooled buffer: a chunk, the window that primes it, and deflate's worst case.
pub(super) fn buffer_size(chunk: usize) -> usize {
    worst_case(chunk + WINDOW)
}

/// Compresses the entries on `threads` threads and writes them in order as soon as each one's turn comes.
/// The calling thread is one of them: it writes whatever is next when it is ready and compresses a job
/// itself when it is not, so a small tree costs no hand-over between threads at all.
pub(super) fn compress_and_write(
    entries: &Entries,
    writer: &mut PackageWriter,
    opts: &BuildOptions,
    threads: usize,
) -> Result<(), PackageError> {
    let chunk = opts.chunk_bytes;
    let buffer = buffer_size(chunk) as u64;
    let gate = Gate {
        entries,
        state: Mutex::new(GateState::default()),
        changed: Condvar::new(),
        chunk: chunk as u64,
        buffer,
        // Room for every thread to work on one chunk while the writer holds as many finished ones.
        budget: opts.window_bytes.max(2 * 2 * buffer * threads as u64),
        cancel: opts.cancel.clone(),
    };
    let pool = Pool::new(buffer_size(chunk));
    let level = opts.compression_level.get();
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<(u64, u64, Done)>();
        for t in 1..threads {
            let done_tx = done_tx.clone();
            let (gate, pool) = (&gate, &pool);
            let spawned = std::thread::Builder::new()
                .name(format!("slot-release-zip-{t}"))
                .spawn_scoped(scope, move || {
                    let _guard = StopOnPanic(gate);
                    let mut worker = Worker::new(level);
                    while let Some((seq, job, cost)) = gate.take(&mut worker.encoder, true) {
                        let done = worker.run(gate, pool, job);
                        if done_tx.send((seq, cost, done)).is_err() {
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
        // The writer holds no sender: if every other thread is gone, `recv` fails instead of waiting forever.
        drop(done_tx);
        let mut own = Worker::new(level);
        let result = write_in_order(writer, &gate, &pool, &done_rx, &mut own);
        gate.stop();
        result
    })
}

fn write_in_order(
    writer: &mut PackageWriter,
    gate: &Gate,
    pool: &Pool,
    done: &mpsc::Receiver<(u64, u64, Done)>,
    own: &mut Worker,
) -> Result<(), PackageError> {
    let entries = gate.entries;
    let mut ready: BTreeMap<u64, (u64, Done)> = BTreeMap::new();
    let mut seq = 0;
    while writer.entries_written() < entries.len() {
        if gate.cancel.is_cancelled() {
            return Err(PackageError::Cancelled);
        }
        while let Ok((s, cost, d)) = done.try_recv() {
            ready.insert(s, (cost, d));
        }
        if let Some((cost, next)) = ready.remove(&seq) {
            seq += 1;
            writer.write_done(entries, next, pool)?;
            gate.release(cost);
            continue;
        }
        // Never waits for room: only this thread gives room back.
        if let Some((s, job, cost)) = gate.take(&mut own.encoder, false) {
            let d = own.run(gate, pool, job);
            ready.insert(s, (cost, d));
            continue;
        }
        let Ok((s, cost, d)) = done.recv() else {
            // The threads stop taking jobs on a cancel; that is not a failure of this entry.
            if gate.cancel.is_cancelled() {
                return Err(PackageError::Cancelled);
            }
            return Err(PackageError::Unreadable {
                path: entries.name(writer.entries_written()).to_owned(),
                source: io::Error::other("the compression threads stopped early"),
            });
        };
        ready.insert(s, (cost, d));
    }
    Ok(())
}

/// What a compressing thread keeps from job to job: its encoder and its buffer for one file's bytes.
struct Worker {
    encoder: Encoder,
    input: Vec<u8>,
}

impl Worker {
    fn new(level: u8) -> Self {
        Self {
            encoder: Encoder::new(level),
            input: Vec::new(),
        }
    }

    fn run(&mut self, gate: &Gate, pool: &Pool, job: Job) -> Done {
        let work = Work {
            entries: gate.entries,
            encoder: &mut self.encoder,
            pool,
            cancel: &gate.cancel,
        };
        match job {
            Job::Files { first, end } => work.files(first, end, &mut self.input),
            Job::Chunk { file, index } => work.chunk(file, index, gate.chunk),
            Job::Failed(error) => Done::Failed(error),
        }
    }
}

/// What a compressing thread works with.
struct Work<'a> {
    entries: &'a Entries,
    encoder: &'a mut Encoder,
    pool: &'a Pool,
    cancel: &'a CancellationToken,
}

impl Work<'_> {
    /// Compresses entries `first..end` whole, one after the other into one buffer; `input` is the thread's
    /// own buffer for a file's bytes.
    fn files(mut self, first: usize, end: usize, input: &mut Vec<u8>) -> Done {
        let mut data = self.pool.take();
        let mut files = Vec::with_capacity(end - first);
        let mut error = None;
        for i in first..end {
            if self.cancel.is_cancelled() {
                error = Some(PackageError::Cancelled);
                break;
            }
            match self.one_file(i, input, &mut data) {
                Ok(file) => files.push(file),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        Done::Files {
            first,
            data,
            files,
            error,
        }
    }

    fn one_file(
        &mut self,
        i: usize,
        input: &mut Vec<u8>,
        data: &mut Vec<u8>,
    ) -> Result<FileDone, PackageError> {
        let name = self.entries.name(i);
        let size = self.entries.size(i);
        let (mut file, meta) = open_entry(self.entries, i)?;
        read_whole(name, size, &mut file, input)?;
        drop(file);
        let deflate_err = |source| PackageError::Unreadable {
            path: name.to_owned(),
            source,
        };
        let incompressible = Encoder::small_looks_incompressible(input)
            || self.encoder.held_looks_incompressible(input);
        let start = data.len();
        let mut method = Method::Stored;
        if !incompressible {
            self.encoder.whole(input, data).map_err(deflate_err)?;
            if data.len() - start < input.len() {
                method = Method::Deflated;
            } else {
                // Deflate could not shrink it: stored, as Info-ZIP does.
                data.truncate(start);
            }
        }
        if method == Method::Stored {
            data.extend_from_slice(input);
        }
        Ok(FileDone {
            len: data.len() - start,
            crc: crc32fast::hash(input),
            method,
            mode: mode_of(&meta),
            sha256: Sha256::digest(input.as_slice()).into(),
        })
    }

    /// Reads and compresses chunk `index` of a large file.
    fn chunk(self, file: Arc<LargeFile>, index: u64, chunk: u64) -> Done {
        let entry = file.entry;
        let name = self.entries.name(entry);
        let size = self.entries.size(entry);
        let start = index * chunk;
        let len = usize::try_from(chunk.min(size - start)).unwrap_or(usize::MAX);
        let dictionary = if file.stored || index == 0 { 0 } else { WINDOW };
        let mut input = self.pool.take();
        if let Err(e) = read_range(
            name,
            size,
            &file.file,
            start - dictionary as u64,
            dictionary + len,
            &mut input,
        ) {
            self.pool.give(input);
            return Done::Failed(e);
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&input[dictionary..]);
        let mut output = Vec::new();
        if !file.stored {
            output = self.pool.take();
            let last = index + 1 == file.chunks;
            let (primer, data) = input.split_at(dictionary);
            if self.encoder.held_looks_incompressible(data) {
                Encoder::stored_chunk(data, last, &mut output);
            } else if let Err(source) = self.encoder.chunk(primer, data, last, &mut output) {
                self.pool.give(input);
                self.pool.give(output);
                return Done::Failed(PackageError::Unreadable {
                    path: name.to_owned(),
                    source,
                });
            }
        }
        Done::Chunk {
            file,
            index,
            input,
            dictionary,
            output,
            crc,
        }
    }
}
