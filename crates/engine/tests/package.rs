//! Package build tests on real trees: determinism, readable by `unzip -t` and Python's `zipfile`, manifest,
//! ignore rules and every refusal.

mod support {
    pub mod archive;
}

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use slot_release_engine::package::{
    BuildInfo, BuildOptions, EntryTimestamp, MANIFEST_PATH, PackageError, PackageSpec,
    build_package, read_manifest,
};
use slot_release_pipelines::{Log, OutputMode};
use support::archive::check_archive;

fn info() -> BuildInfo {
    BuildInfo {
        version: "1.2.3".to_owned(),
        commit: Some("0123456789abcdef0123456789abcdef01234567".to_owned()),
        build_id: "4711".to_owned(),
        created_from: "git@example.test:shop/web.git main".to_owned(),
    }
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

/// A tree with text, binary, nested, executable, hidden and ignored content, created in the given order.
fn sample_tree(root: &Path, reverse: bool, mtime: SystemTime) {
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("app.py", b"print('hello')\n".repeat(50)),
        ("requirements.txt", b"flask==3.0\n".to_vec()),
        ("static/site.css", b"body { color: red }\n".repeat(200)),
        (
            "static/logo.bin",
            (0..70_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
        ),
        ("static/app.js.map", b"{}".to_vec()),
        ("bin/start.sh", b"#!/bin/sh\nexec python app.py\n".to_vec()),
        ("node_modules/x/index.js", b"module.exports = 1\n".to_vec()),
        (".env.example", b"PORT=8000\n".to_vec()),
        (
            "migrations/001_init.sql",
            b"create table t (id int);\n".to_vec(),
        ),
        (".gitignore", b"node_modules/\n*.log\n".to_vec()),
        (".deployignore", b"*.map\n".to_vec()),
        ("debug.log", b"noise\n".to_vec()),
        ("empty.txt", Vec::new()),
    ];
    if reverse {
        files.reverse();
    }
    for (rel, data) in &files {
        write(root, rel, data);
        let f = fs::File::options()
            .write(true)
            .open(root.join(rel))
            .unwrap();
        f.set_modified(mtime).unwrap();
    }
    set_mode(&root.join("bin/start.sh"), 0o775);
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn build(
    root: &Path,
    out: &Path,
) -> Result<slot_release_engine::package::BuiltPackage, PackageError> {
    let built = build_package(
        &PackageSpec::new(root),
        &info(),
        out,
        &BuildOptions::default(),
    )?;
    check_archive(&built.path);
    Ok(built)
}

fn entry_names(archive: &Path) -> Vec<String> {
    let mut zip = zip::ZipArchive::new(fs::File::open(archive).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().unwrap().into_owned())
        .collect()
}

#[test]
fn output_is_byte_identical_across_runs_creation_orders_and_mtimes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    sample_tree(
        a.path(),
        false,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000),
    );
    sample_tree(b.path(), true, SystemTime::now());

    let first = build(a.path(), &out.path().join("1")).unwrap();
    let second = build(a.path(), &out.path().join("2")).unwrap();
    let other = build(b.path(), &out.path().join("3")).unwrap();
    let bytes = fs::read(&first.path).unwrap();
    assert_eq!(bytes, fs::read(&second.path).unwrap());
    assert_eq!(
        bytes,
        fs::read(&other.path).unwrap(),
        "creation order or mtimes leaked into the archive"
    );
    assert_eq!(first.sha256, other.sha256);

    // A different content gives a different archive: the comparison above can fail.
    write(b.path(), "app.py", b"print('changed')\n");
    let changed = build(b.path(), &out.path().join("4")).unwrap();
    assert_ne!(first.sha256, changed.sha256);
}

#[test]
fn archive_passes_unzip_and_has_fixed_metadata() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    sample_tree(root.path(), false, SystemTime::now());
    let built = build(root.path(), out.path()).unwrap();

    check_archive(&built.path);

    let names = entry_names(&built.path);
    let (manifest_last, files) = names.split_last().unwrap();
    assert_eq!(
        manifest_last, MANIFEST_PATH,
        "the manifest is the last entry"
    );
    let mut sorted = files.to_vec();
    sorted.sort();
    assert_eq!(files, sorted.as_slice(), "entries are sorted by path");

    let mut zip = zip::ZipArchive::new(fs::File::open(&built.path).unwrap()).unwrap();
    for i in 0..zip.len() {
        let entry = zip.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let t = entry.last_modified().unwrap();
        assert_eq!(
            (t.year(), t.month(), t.day(), t.hour(), t.minute()),
            (1980, 1, 1, 0, 0),
            "{name}"
        );
        assert!(
            entry.extra_data().is_none_or(|d| d.is_empty()),
            "{name} has extra fields"
        );
        let expected = if name == "bin/start.sh" {
            0o100755
        } else {
            0o100644
        };
        assert_eq!(entry.unix_mode(), Some(expected), "{name}");
        // Deflated when that shrinks the entry, stored otherwise (tiny and empty files), as Info-ZIP does.
        match entry.compression() {
            zip::CompressionMethod::Deflated => {
                assert!(entry.compressed_size() < entry.size(), "{name} grew");
            }
            zip::CompressionMethod::Stored => {
                assert!(
                    entry.size() < 64 || name == "static/logo.bin",
                    "{name} stored"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
        if matches!(name.as_str(), "app.py" | "static/site.css") {
            assert_eq!(
                entry.compression(),
                zip::CompressionMethod::Deflated,
                "{name}"
            );
        }
    }
}

/// Pseudo-random bytes; `alphabet` limits them to that many distinct values (fewer is more compressible).
fn noise(len: usize, seed: u64, alphabet: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) % alphabet) as u8
        })
        .collect()
}

fn method_of(archive: &Path, name: &str) -> (zip::CompressionMethod, u64, u64) {
    let mut zip = zip::ZipArchive::new(fs::File::open(archive).unwrap()).unwrap();
    let entry = zip.by_name(name).unwrap();
    (entry.compression(), entry.compressed_size(), entry.size())
}

#[test]
fn incompressible_entries_are_stored_and_everything_else_deflated() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let text = b"def handler(event):\n    return event\n".repeat(3000);
    write(root.path(), "random.bin", &noise(200_000, 1, 256));
    write(root.path(), "text.py", &text);
    // Skewed bytes: no repeats for deflate to find, but Huffman coding still shrinks them.
    write(root.path(), "skewed.bin", &noise(200_000, 2, 40));
    // Random at the start, text after it: the start alone must not decide.
    let mut mixed = noise(50_000, 3, 256);
    mixed.extend_from_slice(&text);
    write(root.path(), "mixed.bin", &mixed);
    // The same kinds above the chunk size, compressed in chunks.
    write(root.path(), "streamed/random.bin", &noise(3 << 20, 4, 256));
    write(root.path(), "streamed/text.txt", &text.repeat(20));
    let opts = BuildOptions {
        chunk_bytes: 1 << 20,
        ..BuildOptions::default()
    };
    let built = build_package(&PackageSpec::new(root.path()), &info(), out.path(), &opts).unwrap();
    check_archive(&built.path);

    for name in ["random.bin", "streamed/random.bin"] {
        let (method, compressed, size) = method_of(&built.path, name);
        assert_eq!(method, zip::CompressionMethod::Stored, "{name}");
        assert_eq!(compressed, size, "{name}");
    }
    for name in ["text.py", "skewed.bin", "mixed.bin", "streamed/text.txt"] {
        let (method, compressed, size) = method_of(&built.path, name);
        assert_eq!(method, zip::CompressionMethod::Deflated, "{name}");
        assert!(compressed < size, "{name}: {compressed} >= {size}");
    }
    let (_, skewed, skewed_size) = method_of(&built.path, "skewed.bin");
    assert!(skewed < skewed_size * 95 / 100, "skewed.bin barely shrank");
}

#[test]
fn output_is_identical_for_any_thread_count_and_memory_budget() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    sample_tree(root.path(), false, SystemTime::now());
    for i in 0..300u64 {
        let data = if i % 3 == 0 {
            noise(1000 + (i as usize * 397) % 40_000, i, 256)
        } else {
            format!("line {i}\n")
                .repeat((i as usize * 31) % 4000)
                .into_bytes()
        };
        write(root.path(), &format!("many/{:02}/f{i:03}", i % 17), &data);
    }
    // Above the chunk size below: stored whole, deflated in chunks, and deflated with a stored middle.
    write(root.path(), "many/big.bin", &noise(300_000, 99, 256));
    let text = b"def handler(event):\n    return {'status': 200, 'body': event}\n".repeat(7000);
    write(root.path(), "many/big.txt", &text);
    let mut mixed = text[..150_000].to_vec();
    mixed.extend_from_slice(&noise(200_000, 98, 256));
    mixed.extend_from_slice(&text[..150_000]);
    write(root.path(), "many/mixed.bin", &mixed);
    let mut archives = Vec::new();
    for (threads, window_bytes) in [(1, 16 << 20), (2, 1), (4, 64 << 10), (8, 16 << 20)] {
        let opts = BuildOptions {
            threads: std::num::NonZeroUsize::new(threads),
            window_bytes,
            chunk_bytes: 64 << 10,
            ..BuildOptions::default()
        };
        let dir = out.path().join(format!("{threads}-{window_bytes}"));
        let built = build_package(&PackageSpec::new(root.path()), &info(), &dir, &opts).unwrap();
        check_archive(&built.path);
        assert_eq!(built.total.files, 300 + 3 + 10);
        archives.push((threads, fs::read(&built.path).unwrap()));
        let (method, compressed, size) = method_of(&built.path, "many/big.txt");
        assert_eq!(method, zip::CompressionMethod::Deflated);
        assert!(compressed < size / 10, "{compressed} of {size}");
        let (method, compressed, size) = method_of(&built.path, "many/mixed.bin");
        assert_eq!(method, zip::CompressionMethod::Deflated);
        assert!(compressed < size * 7 / 10, "{compressed} of {size}");
        let mut zip = zip::ZipArchive::new(fs::File::open(&built.path).unwrap()).unwrap();
        let mut data = Vec::new();
        zip.by_name("many/mixed.bin")
            .unwrap()
            .read_to_end(&mut data)
            .unwrap();
        assert!(
            data == mixed,
            "many/mixed.bin does not read back as written"
        );
    }
    let (_, first) = &archives[0];
    for (threads, bytes) in &archives[1..] {
        assert!(bytes == first, "{threads} threads gave different bytes");
    }
}

#[test]
fn source_date_epoch_sets_the_entry_time() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    write(root.path(), "a.txt", b"a");
    let opts = BuildOptions {
        timestamp: EntryTimestamp::Unix(1_700_000_000),
        ..BuildOptions::default()
    };
    let built = build_package(&PackageSpec::new(root.path()), &info(), out.path(), &opts).unwrap();
    check_archive(&built.path);
    let mut zip = zip::ZipArchive::new(fs::File::open(&built.path).unwrap()).unwrap();
    let t = zip.by_name("a.txt").unwrap().last_modified().unwrap();
    assert_eq!(
        (t.year(), t.month(), t.day(), t.hour(), t.minute()),
        (2023, 11, 14, 22, 13)
    );
}

#[test]
fn manifest_and_checksum_file_are_correct() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    sample_tree(root.path(), false, SystemTime::now());
    let built = build(root.path(), out.path()).unwrap();

    let manifest = read_manifest(&built.path).unwrap();
    assert_eq!(manifest.total, built.total);
    assert_eq!(manifest.version, "1.2.3");
    assert_eq!(manifest.build_id, "4711");
    assert_eq!(
        manifest.commit.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(manifest.created_from, "git@example.test:shop/web.git main");
    let mut total = 0;
    for file in &manifest.files {
        let data = fs::read(root.path().join(&file.path)).unwrap();
        let digest = Sha256::digest(&data);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(file.sha256.as_str(), hex, "{}", file.path);
        assert_eq!(file.size, data.len() as u64);
        total += file.size;
    }
    assert_eq!(manifest.total.files, manifest.files.len() as u64);
    assert_eq!(manifest.total.bytes, total);
    let listed: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        listed,
        entry_names(&built.path)[..manifest.files.len()].to_vec()
    );

    // The checksum file is in `sha256sum` format and matches the archive.
    assert_eq!(built.sha256_path, out.path().join("package.zip.sha256"));
    let status = Command::new("sha256sum")
        .arg("-c")
        .arg("--quiet")
        .arg("package.zip.sha256")
        .current_dir(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let archive = fs::read(&built.path).unwrap();
    assert_eq!(built.size, archive.len() as u64);
    use std::os::unix::fs::PermissionsExt;
    for path in [&built.path, &built.sha256_path] {
        let mode = fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{}", path.display());
    }
}

#[test]
fn ignore_files_globs_and_hidden_rules_apply_outside_a_git_repository() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    sample_tree(root.path(), false, SystemTime::now());
    write(root.path(), ".git/HEAD", b"ref: refs/heads/main\n");
    write(root.path(), "tests/test_app.py", b"assert True\n");
    write(root.path(), "static/nested/.gitignore", b"draft.css\n");
    write(root.path(), "static/nested/draft.css", b"x");
    write(root.path(), "static/nested/final.css", b"y");

    let built = build(root.path(), out.path()).unwrap();
    let names = entry_names(&built.path);
    for gone in [
        "node_modules/x/index.js",
        "debug.log",
        "static/app.js.map",
        ".git/HEAD",
        "static/nested/draft.css",
    ] {
        assert!(!names.iter().any(|n| n == gone), "{gone} was packaged");
    }
    for kept in [
        ".env.example",
        ".gitignore",
        "static/nested/final.css",
        "tests/test_app.py",
        "empty.txt",
    ] {
        assert!(names.iter().any(|n| n == kept), "{kept} is missing");
    }

    let spec = PackageSpec {
        exclude: vec!["tests/**".to_owned(), "*.sql".to_owned()],
        include_hidden: false,
        ..PackageSpec::new(root.path())
    };
    let built = build_package(
        &spec,
        &info(),
        &out.path().join("2"),
        &BuildOptions::default(),
    )
    .unwrap();
    check_archive(&built.path);
    let names = entry_names(&built.path);
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("tests/") || n.ends_with(".sql")),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with(".env") || n.ends_with("/.gitignore")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "app.py"));

    let spec = PackageSpec {
        ignore_files: Vec::new(),
        ..PackageSpec::new(root.path())
    };
    let built = build_package(
        &spec,
        &info(),
        &out.path().join("3"),
        &BuildOptions::default(),
    )
    .unwrap();
    check_archive(&built.path);
    assert!(
        entry_names(&built.path).iter().any(|n| n == "debug.log"),
        "ignore files can be turned off"
    );
}

#[test]
fn output_directory_inside_the_root_is_not_packaged() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "app.py", b"x");
    let out = root.path().join("dist");
    build(root.path(), &out).unwrap();
    // A second build must not pick up the first archive.
    let built = build(root.path(), &out).unwrap();
    assert_eq!(
        entry_names(&built.path),
        vec!["app.py".to_owned(), MANIFEST_PATH.to_owned()]
    );

    let err = build(root.path(), root.path()).unwrap_err();
    assert!(matches!(err, PackageError::OutputIsRoot { .. }), "{err}");
}

#[test]
fn empty_root_and_fully_ignored_root_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = build(root.path(), out.path()).unwrap_err();
    assert!(matches!(err, PackageError::Empty { .. }), "{err}");
    write(root.path(), ".deployignore", b"*\n");
    write(root.path(), "a.txt", b"a");
    let err = build(root.path(), out.path()).unwrap_err();
    assert!(matches!(err, PackageError::Empty { .. }), "{err}");
    assert!(!out.path().join("package.zip").exists());
    let err = build(&root.path().join("missing"), out.path()).unwrap_err();
    assert!(matches!(err, PackageError::Root { .. }), "{err}");
}

/// Builds `root` expecting a refusal; no archive may be left behind.
fn refused(root: &Path) -> PackageError {
    let out = tempfile::tempdir().unwrap();
    let err = build(root, out.path()).unwrap_err();
    let left: Vec<PathBuf> = fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "a failed build left {left:?}");
    err
}

#[test]
fn symlink_outside_the_root_is_refused_with_its_path() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", b"s3cr3t");
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "app.py", b"x");
    fs::create_dir_all(root.path().join("config")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        root.path().join("config/link.txt"),
    )
    .unwrap();
    let err = refused(root.path());
    assert!(
        matches!(err, PackageError::SymlinkOutsideRoot { ref path, .. } if path == "config/link.txt"),
        "{err}"
    );
    assert!(err.to_string().contains("config/link.txt"));

    // A relative escape is caught too.
    fs::remove_file(root.path().join("config/link.txt")).unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../etc/hostname",
        root.path().join("config/link.txt"),
    )
    .unwrap();
    assert!(matches!(
        refused(root.path()),
        PackageError::SymlinkOutsideRoot { .. } | PackageError::DanglingSymlink { .. }
    ));
}

#[test]
fn symlinks_inside_the_root_follow_files_and_refuse_directories_loops_and_dangling_links() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    write(root.path(), "real/config.json", b"{\"a\":1}");
    std::os::unix::fs::symlink("real/config.json", root.path().join("config.json")).unwrap();
    let built = build(root.path(), out.path()).unwrap();
    let mut zip = zip::ZipArchive::new(fs::File::open(&built.path).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name("config.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(
        text, "{\"a\":1}",
        "a link to a file inside the root is stored as the file"
    );

    std::os::unix::fs::symlink("real", root.path().join("real-dir")).unwrap();
    let err = refused(root.path());
    assert!(
        matches!(err, PackageError::SymlinkToDirectory { ref path, .. } if path == "real-dir"),
        "{err}"
    );
    fs::remove_file(root.path().join("real-dir")).unwrap();

    std::os::unix::fs::symlink("loop-b", root.path().join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", root.path().join("loop-b")).unwrap();
    let err = refused(root.path());
    assert!(
        matches!(err, PackageError::SymlinkLoop { ref path } if path == "loop-a"),
        "{err}"
    );
    fs::remove_file(root.path().join("loop-a")).unwrap();
    fs::remove_file(root.path().join("loop-b")).unwrap();

    std::os::unix::fs::symlink("nowhere.txt", root.path().join("dangling")).unwrap();
    let err = refused(root.path());
    assert!(
        matches!(err, PackageError::DanglingSymlink { ref path, .. } if path == "dangling"),
        "{err}"
    );
}

#[test]
fn fifos_and_sockets_are_refused() {
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "app.py", b"x");
    nix::unistd::mkfifo(
        &root.path().join("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let err = refused(root.path());
    assert!(
        matches!(err, PackageError::SpecialFile { ref path, .. } if path == "pipe"),
        "{err}"
    );
    assert!(err.to_string().contains("FIFO"));
    fs::remove_file(root.path().join("pipe")).unwrap();

    let listener = std::os::unix::net::UnixListener::bind(root.path().join("sock")).unwrap();
    let err = refused(root.path());
    assert!(
        matches!(err, PackageError::SpecialFile { ref path, kind } if path == "sock" && kind == "a socket"),
        "{err}"
    );
    drop(listener);
    fs::remove_file(root.path().join("sock")).unwrap();

    // Creating a device node needs root (CAP_MKNOD); CI and the dev machines run tests as root.
    if nix::unistd::geteuid().is_root() {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        mknod(
            &root.path().join("null"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o644),
            makedev(1, 3),
        )
        .unwrap();
        let err = refused(root.path());
        assert!(
            matches!(err, PackageError::SpecialFile { ref path, kind } if path == "null" && kind == "a character device"),
            "{err}"
        );
    }
}

#[test]
fn unsafe_and_non_utf8_names_are_refused() {
    use std::os::unix::ffi::OsStrExt;
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "app.py", b"x");
    let bad = root
        .path()
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"));
    fs::write(&bad, b"x").unwrap();
    let err = refused(root.path());
    assert!(matches!(err, PackageError::NonUtf8Name { .. }), "{err}");
    assert!(err.to_string().contains("caf"), "{err}");
    fs::remove_file(&bad).unwrap();

    write(root.path(), "..\\..\\evil.txt", b"x");
    let err = refused(root.path());
    assert!(
        matches!(err, PackageError::UnsafeName { ref path, .. } if path == "..\\..\\evil.txt"),
        "{err}"
    );
    fs::remove_file(root.path().join("..\\..\\evil.txt")).unwrap();

    write(root.path(), "line\nbreak.txt", b"x");
    let err = refused(root.path());
    assert!(matches!(err, PackageError::UnsafeName { .. }), "{err}");
    fs::remove_file(root.path().join("line\nbreak.txt")).unwrap();

    write(root.path(), MANIFEST_PATH, b"{}");
    let err = refused(root.path());
    assert!(matches!(err, PackageError::ReservedPath { .. }), "{err}");
}

/// Root reads every file, so the unreadable case runs the test binary again without the capabilities
/// that let root ignore file modes.
#[test]
fn unreadable_files_are_refused_with_their_path() {
    if let Ok(dir) = std::env::var("SLOT_RELEASE_TEST_UNREADABLE_ROOT") {
        let err = refused(Path::new(&dir));
        assert!(
            matches!(err, PackageError::Unreadable { ref path, .. } if path == "locked.txt"),
            "{err}"
        );
        assert!(err.to_string().contains("locked.txt"));
        return;
    }
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "app.py", b"x");
    write(root.path(), "locked.txt", b"x");
    set_mode(&root.path().join("locked.txt"), 0o000);
    let is_root = nix::unistd::geteuid().is_root();
    let mut cmd = if is_root {
        let mut c = Command::new("setpriv");
        c.args([
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
        ]);
        c.arg(std::env::current_exe().unwrap());
        c
    } else {
        Command::new(std::env::current_exe().unwrap())
    };
    let output = cmd
        .args([
            "--exact",
            "unreadable_files_are_refused_with_their_path",
            "--test-threads=1",
        ])
        .env("SLOT_RELEASE_TEST_UNREADABLE_ROOT", root.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A writer appends to a log file while the tree is packaged. The file is read last (after 2,000 others),
/// long after the walk measured it, so the build must notice the change. A build that happens to see a
/// quiet moment must still produce a consistent archive; at least one of three attempts must notice.
#[test]
fn a_file_growing_while_packaged_is_an_error_not_a_corrupt_zip() {
    let root = tempfile::tempdir().unwrap();
    for i in 0..2_000 {
        write(
            root.path(),
            &format!("a/f{i:04}.txt"),
            format!("{i}\n").repeat(50).as_bytes(),
        );
    }
    let log_path = root.path().join("zz-growing.log");
    write(root.path(), "zz-growing.log", &vec![b'a'; 1 << 16]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let path = log_path.clone();
        std::thread::spawn(move || {
            let mut f = fs::File::options().append(true).open(path).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(b"more log lines\n").unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let mut noticed = None;
    for attempt in 0..3 {
        let out = tempfile::tempdir().unwrap();
        match build(root.path(), out.path()) {
            Err(err) => {
                assert!(
                    !out.path().join("package.zip").exists(),
                    "attempt {attempt}"
                );
                noticed = Some(err);
                break;
            }
            Ok(built) => {
                // Never a corrupt package: what was stored matches the manifest.
                let mut zip = zip::ZipArchive::new(fs::File::open(&built.path).unwrap()).unwrap();
                let mut data = Vec::new();
                zip.by_name("zz-growing.log")
                    .unwrap()
                    .read_to_end(&mut data)
                    .unwrap();
                let record = read_manifest(&built.path)
                    .unwrap()
                    .files
                    .into_iter()
                    .find(|f| f.path == "zz-growing.log")
                    .unwrap();
                assert_eq!(record.size, data.len() as u64);
                let hex: String = Sha256::digest(&data)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(record.sha256.as_str(), hex);
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let err = noticed.expect("no attempt noticed the growing file");
    assert!(
        matches!(err, PackageError::ChangedWhileReading { ref path, .. } if path == "zz-growing.log"),
        "{err}"
    );
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn twenty_thousand_files_with_large_ones_streamed_and_progress_reported() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    for i in 0..20_000u32 {
        let rel = format!("d{:03}/f{i:05}.txt", i % 200);
        write(
            root.path(),
            &rel,
            format!("file {i}\n")
                .repeat((i % 7) as usize + 1)
                .as_bytes(),
        );
    }
    // Above the streaming threshold below: written sequentially between parallel windows.
    write(
        root.path(),
        "d000/big.bin",
        &(0..3_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let sink = Sink::default();
    let opts = BuildOptions {
        chunk_bytes: 1 << 20,
        progress: Some(Log::new(OutputMode::Plain, Box::new(sink.clone()))),
        ..BuildOptions::default()
    };
    let built = build_package(&PackageSpec::new(root.path()), &info(), out.path(), &opts).unwrap();
    assert_eq!(built.total.files, 20_001);
    assert_eq!(check_archive(&built.path), 20_002);

    let mut zip = zip::ZipArchive::new(fs::File::open(&built.path).unwrap()).unwrap();
    assert_eq!(zip.len(), 20_002);
    let mut big = Vec::new();
    zip.by_name("d000/big.bin")
        .unwrap()
        .read_to_end(&mut big)
        .unwrap();
    assert_eq!(big.len(), 3_000_000);
    assert!(big.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));

    let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("[  0%] Packaging") && log.contains("[100%] Packaging"),
        "{log}"
    );
    assert!(
        log.lines().count() <= 21,
        "progress comes in 5 % steps:\n{log}"
    );
}
