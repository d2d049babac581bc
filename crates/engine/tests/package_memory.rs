//! Memory bound of the package build on a tree of many files: 20,000 small files (text and random, as an
//! application tree with its dependencies and assets) and a few files large enough to be cut in chunks.
//!
//! Alone in its own test binary, so the process's peak RSS (`VmHWM`) reflects this build only; the
//! single large entry has its own binary (`package_memory_large.rs`).

mod support {
    pub mod archive;
    pub mod memory;
}

use std::fs;
use std::num::NonZeroUsize;

use slot_release_engine::package::{BuildInfo, BuildOptions, PackageSpec, build_package};
use support::archive::check_archive;
use support::memory::{Noise, peak_rss_bytes, segmented_file};

const MIB: u64 = 1 << 20;

#[test]
fn twenty_thousand_files_are_packaged_in_under_32_mib() {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut noise = Noise::new(17);
    let mut buf = vec![0u8; 8 * 1024];
    let mut tree = 0u64;
    for i in 0..20_000u64 {
        let dir = root
            .path()
            .join(format!("node_modules/p{:03}/lib", i % 400));
        if i < 400 {
            fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        }
        let len = 200 + usize::try_from(noise.next_u64() % 4000).unwrap_or(0);
        if i % 4 == 3 {
            noise.fill(&mut buf[..len]);
        } else {
            noise.text(&mut buf[..len]);
        }
        fs::write(dir.join(format!("f{i:05}.js")), &buf[..len]).unwrap_or_else(|e| panic!("{e}"));
        tree += len as u64;
    }
    fs::create_dir_all(root.path().join("static")).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..4 {
        let size = 3 * MIB + 17 * i;
        let path = root.path().join(format!("static/large-{i}.bin"));
        segmented_file(&path, size, 100 + i, |segment| segment % 3 == 2);
        tree += size;
    }
    let before = peak_rss_bytes();

    let info = BuildInfo {
        version: "1.0.0".to_owned(),
        commit: None,
        build_id: "mem".to_owned(),
        created_from: "memory test".to_owned(),
    };
    // More threads than this machine's two cores: memory grows with threads, never with the tree.
    let opts = BuildOptions {
        threads: NonZeroUsize::new(4),
        ..BuildOptions::default()
    };
    let built = build_package(&PackageSpec::new(root.path()), &info, out.path(), &opts)
        .unwrap_or_else(|e| panic!("{e}"));
    let peak = peak_rss_bytes();

    assert_eq!(built.total.files, 20_004);
    assert_eq!(built.total.bytes, tree);
    assert_eq!(check_archive(&built.path), 20_005);
    eprintln!(
        "peak RSS {:.1} MiB (before the build {:.1} MiB) for {} files, {} MiB",
        peak as f64 / MIB as f64,
        before as f64 / MIB as f64,
        built.total.files,
        tree / MIB
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
