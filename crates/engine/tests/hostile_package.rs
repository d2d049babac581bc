//! Hostile package trees that `package.rs` does not cover yet: device files, files that vanish while
//! the package is built, and a tree of 200,000 files. Each is refused with the path, or handled
//! with an archive that is whole and tells the truth about what it holds.
#![cfg(target_os = "linux")]

mod support {
    pub mod archive;
}

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use slot_release_engine::package::{
    BuildInfo, BuildOptions, PackageError, PackageSpec, build_package, read_manifest,
};
use support::archive::check_archive;

fn info() -> BuildInfo {
    BuildInfo {
        version: "9.9.9".to_owned(),
        commit: None,
        build_id: "hostile".to_owned(),
        created_from: "hostile-package test".to_owned(),
    }
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    }
    fs::write(&path, data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn build(
    root: &Path,
    out: &Path,
) -> Result<slot_release_engine::package::BuiltPackage, PackageError> {
    build_package(
        &PackageSpec::new(root),
        &info(),
        out,
        &BuildOptions::default(),
    )
}

#[test]
fn a_character_device_is_refused_with_its_path() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(root.path(), "app.py", b"print('hi')\n");
    let device = root.path().join("dev-null");
    // The same device as /dev/null: reading it would give an empty file, hiding the problem.
    let made = Command::new("mknod")
        .arg(&device)
        .args(["c", "1", "3"])
        .status()
        .unwrap_or_else(|e| panic!("mknod: {e}"));
    assert!(
        made.success(),
        "mknod needs CAP_MKNOD; the CI container runs as root"
    );
    let err = build(root.path(), out.path()).expect_err("a device file was packaged");
    assert!(
        matches!(err, PackageError::SpecialFile { ref path, .. } if path == "dev-null"),
        "{err}"
    );
    assert!(err.to_string().contains("dev-null"), "{err}");
    assert!(!out.path().join("package.zip").exists());
}

#[test]
fn a_symlink_to_a_device_outside_the_root_is_refused() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    write(root.path(), "app.py", b"x");
    std::os::unix::fs::symlink("/dev/zero", root.path().join("zeros"))
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let err = build(root.path(), out.path()).expect_err("/dev/zero was packaged");
    // /dev/zero never ends: only a refusal before reading keeps this fast.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("zeros"), "{err}");
}

#[test]
fn files_vanishing_while_packaged_are_refused_or_left_out_truthfully() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let count = 3000;
    for i in 0..count {
        write(
            root.path(),
            &format!("d{:02}/f{i:04}.txt", i % 30),
            format!("file {i}\n").repeat(20).as_bytes(),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let deleter = {
        let stop = stop.clone();
        let root = root.path().to_path_buf();
        std::thread::spawn(move || {
            let mut deleted = 0;
            // From the end, so the walk has already listed what disappears.
            for i in (0..count).rev() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if fs::remove_file(root.join(format!("d{:02}/f{i:04}.txt", i % 30))).is_ok() {
                    deleted += 1;
                }
            }
            deleted
        })
    };
    let result = build(root.path(), out.path());
    stop.store(true, Ordering::Relaxed);
    let deleted = deleter.join().unwrap_or(0);
    eprintln!("{deleted} file(s) deleted during the build");
    match result {
        Err(err) => {
            let text = err.to_string();
            assert!(
                matches!(
                    err,
                    PackageError::Vanished { .. } | PackageError::ChangedWhileReading { .. }
                ),
                "an unexpected refusal: {text}"
            );
            assert!(
                text.contains(".txt"),
                "the refusal does not name the file: {text}"
            );
            assert!(
                !out.path().join("package.zip").exists(),
                "a half-built archive was left"
            );
        }
        Ok(built) => {
            // Handled: the archive is whole and its manifest lists exactly what it holds.
            check_archive(&built.path);
            let manifest = read_manifest(&built.path).unwrap_or_else(|e| panic!("{e}"));
            let zip =
                zip::ZipArchive::new(fs::File::open(&built.path).unwrap_or_else(|e| panic!("{e}")))
                    .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                manifest.total.files + 1,
                zip.len() as u64,
                "the manifest and the archive disagree"
            );
        }
    }
}

#[test]
fn a_tree_of_two_hundred_thousand_files_is_packaged_in_bounded_time() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let files = 200_000u32;
    let started = Instant::now();
    for dir in 0..1000u32 {
        let path = root.path().join(format!("node_modules/p{dir:04}"));
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..files / 1000 {
            fs::write(
                path.join(format!("f{i:03}.js")),
                format!("module.exports={dir}{i};\n"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let created = started.elapsed();
    let started = Instant::now();
    let built = build(root.path(), out.path()).unwrap_or_else(|e| panic!("{e}"));
    let packaged = started.elapsed();
    eprintln!(
        "200,000 files: created in {created:?}, packaged in {packaged:?}, archive {} bytes",
        built.size
    );
    assert_eq!(built.total.files, u64::from(files));
    // More entries than a zip without Zip64 end records can count.
    assert_eq!(check_archive(&built.path), files as usize + 1);
    let zip = zip::ZipArchive::new(fs::File::open(&built.path).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(zip.len(), files as usize + 1, "every file and the manifest");
    // Generous for a debug build on two shared cores; a quadratic walk would blow far past it.
    assert!(
        packaged < Duration::from_secs(240),
        "packaging took {packaged:?}"
    );
}
