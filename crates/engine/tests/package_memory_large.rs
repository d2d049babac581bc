//! Memory bound of the package build on one large file: a 256 MiB entry, deflated in chunks on several
//! threads and joined into one entry, without ever holding more than a few chunks.
//!
//! Alone in its own test binary, so the process's peak RSS (`VmHWM`) reflects this build only.

mod support {
    pub mod archive;
    pub mod memory;
}

use std::io::Read;
use std::num::NonZeroUsize;

use sha2::{Digest, Sha256};
use slot_release_engine::package::{
    BuildInfo, BuildOptions, PackageSpec, build_package, read_manifest,
};
use support::archive::check_archive;
use support::memory::{peak_rss_bytes, segmented_file};

const MIB: u64 = 1 << 20;

#[test]
fn a_single_256_mib_entry_is_packaged_in_under_32_mib() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let size = 256 * MIB;
    let path = root.path().join("site.tar");
    // Random first (stored blocks: quick to make, so the writer is what limits, and only the budget keeps
    // the chunks in flight from piling up), then text (deflated: the threads are what limits).
    segmented_file(&path, size, 5, |segment| segment < 128);
    let before = peak_rss_bytes();

    let info = BuildInfo {
        version: "1.0.0".to_owned(),
        commit: None,
        build_id: "mem".to_owned(),
        created_from: "memory test".to_owned(),
    };
    let opts = BuildOptions {
        threads: NonZeroUsize::new(4),
        ..BuildOptions::default()
    };
    let built = build_package(&PackageSpec::new(root.path()), &info, out.path(), &opts)
        .unwrap_or_else(|e| panic!("{e}"));
    let peak = peak_rss_bytes();

    assert_eq!(built.total.bytes, size);
    assert_eq!(check_archive(&built.path), 2);
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(&built.path).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    let mut entry = zip.by_name("site.tar").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
    // The random half as it is, the text half several times smaller.
    assert!(
        entry.compressed_size() < size * 6 / 10,
        "{} bytes",
        entry.compressed_size()
    );
    // The joined chunks inflate to the file, whose digest the manifest records.
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let manifest = read_manifest(&built.path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.files[0].sha256.as_str(), digest);
    let mut file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut hasher = Sha256::new();
    loop {
        let n = file.read(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let expected: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(digest, expected);

    eprintln!(
        "peak RSS {:.1} MiB (before the build {:.1} MiB) for one {} MiB entry",
        peak as f64 / MIB as f64,
        before as f64 / MIB as f64,
        size / MIB
    );
    let limit = 32 * MIB;
    assert!(
        peak < limit,
        "peak RSS {} MiB (before the build {} MiB) exceeds {} MiB",
        peak / MIB,
        before / MIB,
        limit / MIB
    );
}
