//! Peak memory of this process, and trees to measure it on: a memory test runs alone in its own test
//! binary, so the process's high-water mark (`VmHWM`) is the build's.

use std::fs;
use std::io::Write;
use std::path::Path;

/// The most resident memory this process has used so far, in bytes.
pub fn peak_rss_bytes() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_else(|e| panic!("{e}"));
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or_else(|| panic!("no VmHWM in /proc/self/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable {line}"));
    kib * 1024
}

/// Deterministic bytes: a xorshift64 stream.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Random bytes, which deflate cannot shrink.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// Text-like bytes (words from a small vocabulary), which deflate shrinks several times over.
    pub fn text(&mut self, buf: &mut [u8]) {
        const WORDS: [&[u8]; 8] = [
            b"release ",
            b"slot ",
            b"swap ",
            b"health ",
            b"package ",
            b"journal ",
            b"deploy ",
            b"\n",
        ];
        let mut at = 0;
        while at < buf.len() {
            let word = WORDS[(self.next_u64() % 8) as usize];
            let n = word.len().min(buf.len() - at);
            buf[at..at + n].copy_from_slice(&word[..n]);
            at += n;
        }
    }
}

/// Writes a file of `size` bytes in 1 MiB segments, random where `random(index)` says so and text
/// elsewhere, never holding the file in memory.
pub fn segmented_file(path: &Path, size: u64, seed: u64, random: impl Fn(u64) -> bool) {
    let mut noise = Noise::new(seed);
    let mut f = fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut segment = vec![0u8; 1 << 20];
    let mut left = size;
    let mut index = 0u64;
    while left > 0 {
        let n = usize::try_from(left.min(segment.len() as u64)).unwrap_or(segment.len());
        if random(index) {
            noise.fill(&mut segment[..n]);
        } else {
            noise.text(&mut segment[..n]);
        }
        f.write_all(&segment[..n])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        left -= n as u64;
        index += 1;
    }
}
