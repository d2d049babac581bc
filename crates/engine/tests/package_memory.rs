//! Memory bound of the package build: a tree far larger than the allowed peak RSS is packaged.
//!
//! Alone in its own test binary, so the process's peak RSS (`VmHWM`) reflects this build only.

use std::fs;
use std::io::Write;
use std::path::Path;

use slot_release_engine::package::{BuildInfo, BuildOptions, PackageSpec, build_package};

fn peak_rss_bytes() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Writes `size` pseudo-random (incompressible) bytes in 1 MiB chunks, never holding the file in memory.
fn random_file(path: &Path, size: usize, seed: u64) {
    let mut f = fs::File::create(path).unwrap();
    let mut state = seed | 1;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for b in &mut chunk {
            // xorshift64: fast, and deflate cannot shrink it.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
}

#[test]
fn peak_memory_stays_far_below_the_tree_size() {
    const MIB: usize = 1 << 20;
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    // Streamed sequentially (above the 4 MiB default threshold).
    random_file(&root.path().join("large-1.bin"), 64 * MIB, 1);
    random_file(&root.path().join("large-2.bin"), 64 * MIB, 2);
    // Compressed in parallel, at most 16 MiB of input in flight.
    fs::create_dir(root.path().join("medium")).unwrap();
    for i in 0..30 {
        random_file(
            &root.path().join(format!("medium/m{i:02}.bin")),
            3 * MIB + 17,
            100 + i,
        );
    }
    let tree = 128 * MIB + 30 * (3 * MIB + 17);
    let before = peak_rss_bytes();

    let info = BuildInfo {
        version: "1.0.0".to_owned(),
        commit: None,
        build_id: "mem".to_owned(),
        created_from: "memory test".to_owned(),
    };
    let built = build_package(
        &PackageSpec::new(root.path()),
        &info,
        out.path(),
        &BuildOptions::default(),
    )
    .unwrap();
    assert_eq!(built.total.bytes, tree as u64);
    assert!(
        built.size > tree as u64,
        "incompressible input cannot shrink"
    );

    let peak = peak_rss_bytes();
    eprintln!("peak RSS {} MiB for a {} MiB tree", peak >> 20, tree >> 20);
    // Bound: the shared in-flight budget (16 MiB) of compressed copies, one file buffer per thread, and
    // allocator slack; the performance target for packaging is 64 MiB whatever the tree.
    let limit = 64 * MIB as u64;
    assert!(
        peak < limit,
        "peak RSS {} MiB (before the build {} MiB) exceeds {} MiB for a {} MiB tree",
        peak >> 20,
        before >> 20,
        limit >> 20,
        tree >> 20
    );
}
