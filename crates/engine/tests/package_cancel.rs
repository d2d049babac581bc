//! A cancel stops blocking package work within a fraction of a second and leaves nothing behind: the
//! build of a big tree (files compressed on several threads, and a file streamed chunk by chunk), the
//! hash of a big package, and `prepare` of a given package copied into the output folder. Each piece of
//! work is big enough to take several seconds; a cancel that was not honoured lets it finish, and the
//! test fails on its `Ok`.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use slot_release_engine::artifact::{
    self, ArtifactError, BuildContext, PackageSource, PrepareRequest,
};
use slot_release_engine::package::{
    BuildInfo, BuildOptions, PackageError, PackageSpec, build_in_background,
};
use tokio_util::sync::CancellationToken;

/// When each test cancels, after the work started.
const CANCEL_AFTER: Duration = Duration::from_millis(300);
/// How long the work may take to stop after the cancel (a busy two-core machine included).
const STOPPED_WITHIN: Duration = Duration::from_millis(1000);

fn info() -> BuildInfo {
    BuildInfo {
        version: "1".to_owned(),
        commit: None,
        build_id: "1".to_owned(),
        created_from: "test".to_owned(),
    }
}

/// Bytes from a 16-letter alphabet in no order: deflate searches hard for matches and finds few, so
/// compressing them is slow (tens of MB/s), and they still shrink, so they are never stored as they are.
fn slow_to_deflate(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'a' + (state % 16) as u8
        })
        .collect()
}

/// A tree of `files` files of 2 MiB each: compressed in memory on the worker threads.
fn big_tree(root: &Path, files: usize) {
    let block = slow_to_deflate(2 << 20, 7);
    for i in 0..files {
        let dir = root.join(format!("d{:02}", i % 20));
        fs::create_dir_all(&dir).unwrap();
        let mut f = fs::File::create(dir.join(format!("f{i:04}.txt"))).unwrap();
        // Each file differs, so no two compress alike.
        f.write_all(format!("{i}\n").as_bytes()).unwrap();
        f.write_all(&block).unwrap();
    }
}

/// A sparse file of `len` bytes (no disk used): it reads as zeros.
fn sparse(path: &Path, len: u64) {
    let f = fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
}

/// Cancels `cancel` after [`CANCEL_AFTER`]; returns when it did.
fn cancel_later(cancel: &CancellationToken) -> tokio::task::JoinHandle<Instant> {
    let cancel = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(CANCEL_AFTER).await;
        cancel.cancel();
        Instant::now()
    })
}

/// Every file left in `dir`, however deep.
fn leftovers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                out.extend(leftovers(&e.path()));
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

/// Runs `work` (not started until awaited), cancels `cancel` [`CANCEL_AFTER`] later, and checks that the work
/// ended with the cancel error `is_cancel` recognises within [`STOPPED_WITHIN`] of the cancel.
async fn assert_stops_on_cancel<T: std::fmt::Debug, E: std::fmt::Debug>(
    what: &str,
    cancel: &CancellationToken,
    work: impl Future<Output = Result<T, E>>,
    is_cancel: impl Fn(&E) -> bool,
) {
    let cancelled_at = cancel_later(cancel);
    let result = work.await;
    let returned = Instant::now();
    let cancelled_at = cancelled_at.await.unwrap();
    assert!(
        matches!(&result, Err(e) if is_cancel(e)),
        "expected a cancelled {what}, got {result:?}"
    );
    let took = returned.saturating_duration_since(cancelled_at);
    assert!(
        took < STOPPED_WITHIN,
        "{what}: stopped {took:?} after the cancel"
    );
}

/// Lays out one case's package root.
type MakeTree = fn(&Path);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_stops_within_a_moment_of_the_cancel_and_leaves_nothing() {
    let cases: [(&str, MakeTree); 2] = [
        // 300 MiB of slow-to-deflate text, compressed on the worker threads: seconds of work on any machine.
        ("build of a big tree", |root| big_tree(root, 150)),
        // One file far above the streaming threshold: written by the writer itself, chunk by chunk.
        ("build of a streamed file", |root| {
            sparse(&root.join("big.bin"), 8 << 30);
        }),
    ];
    for (what, make_tree) in cases {
        let root = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        make_tree(root.path());
        let cancel = CancellationToken::new();
        let opts = BuildOptions {
            cancel: cancel.clone(),
            ..BuildOptions::default()
        };
        let (spec, info) = (PackageSpec::new(root.path()), info());
        let build = build_in_background(&spec, &info, out.path(), &opts);
        assert_stops_on_cancel(what, &cancel, build, |e| {
            matches!(e, PackageError::Cancelled)
        })
        .await;
        assert_eq!(
            leftovers(out.path()),
            Vec::<String>::new(),
            "{what}: partial output"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashing_a_big_package_stops_between_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("package.zip");
    sparse(&path, 16 << 30);
    let cancel = CancellationToken::new();
    let (task_cancel, task_path) = (cancel.clone(), path.clone());
    let hash = async move {
        tokio::task::spawn_blocking(move || artifact::sha256_file(&task_path, &task_cancel))
            .await
            .unwrap()
    };
    assert_stops_on_cancel("hash", &cancel, hash, |e| {
        matches!(e, ArtifactError::Cancelled)
    })
    .await;
}

/// A valid zip of one stored entry of `len` zero bytes, written sparsely: its central directory parses
/// (what `prepare` checks) without gigabytes on disk. The CRC is not read by anything here.
fn sparse_zip(path: &Path, len: u32) {
    let name = b"big.bin";
    let mut f = fs::File::create(path).unwrap();
    let mut local = Vec::new();
    local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    local.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]); // version, flags, stored, time
    local.extend_from_slice(&[0x21, 0]); // date
    local.extend_from_slice(&0u32.to_le_bytes()); // crc
    local.extend_from_slice(&len.to_le_bytes());
    local.extend_from_slice(&len.to_le_bytes());
    local.extend_from_slice(&(name.len() as u16).to_le_bytes());
    local.extend_from_slice(&0u16.to_le_bytes());
    local.extend_from_slice(name);
    f.write_all(&local).unwrap();
    f.seek(SeekFrom::Current(i64::from(len))).unwrap();
    let central_at = local.len() as u32 + len;
    let mut central = Vec::new();
    central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    central.extend_from_slice(&[20, 3, 20, 0, 0, 0, 0, 0, 0x21, 0, 0x21, 0]);
    central.extend_from_slice(&0u32.to_le_bytes());
    central.extend_from_slice(&len.to_le_bytes());
    central.extend_from_slice(&len.to_le_bytes());
    central.extend_from_slice(&(name.len() as u16).to_le_bytes());
    central.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
    central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    central.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    central.extend_from_slice(name);
    let mut end = Vec::new();
    end.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    end.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    end.extend_from_slice(&(central.len() as u32).to_le_bytes());
    end.extend_from_slice(&central_at.to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    f.write_all(&central).unwrap();
    f.write_all(&end).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preparing_a_given_package_stops_and_leaves_no_partial_copy() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("release.yml"), "app: {}\n").unwrap();
    let given = dir.path().join("drop");
    fs::create_dir_all(&given).unwrap();
    sparse_zip(&given.join("package.zip"), 4_000_000_000);
    let out = dir.path().join("out");
    let request = PrepareRequest {
        source: PackageSource::Given {
            pattern: "drop/package.zip".to_owned(),
            build_record: None,
        },
        base_dir: dir.path().to_path_buf(),
        config: dir.path().join("release.yml"),
        sources: dir.path().to_path_buf(),
        out_dir: out.clone(),
        context: BuildContext::default(),
        // Recorded, so the package is hashed and then copied into the output folder.
        write_record: true,
        verify_config: true,
    };
    let log = slot_release_pipelines::Log::new(
        slot_release_pipelines::OutputMode::Plain,
        Box::new(std::io::sink()),
    );
    let cancel = CancellationToken::new();
    let prepare = artifact::prepare_in_background(&request, &log, &cancel);
    assert_stops_on_cancel("preparation", &cancel, prepare, |e| {
        matches!(e, ArtifactError::Cancelled)
    })
    .await;
    assert_eq!(leftovers(&out), Vec::<String>::new(), "partial output");
}
