//! Checks a built package with two readers besides the zip crate the engine reads with: Info-ZIP's
//! `unzip -t` and Python's `zipfile`, whose `testzip` inflates every entry and checks its CRC-32.

use std::path::Path;
use std::process::Command;

const PYTHON_CHECK: &str = "\
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    if bad is not None:
        sys.exit('bad entry: ' + bad)
    print(len(z.infolist()))
";

/// Panics unless both readers accept every entry of `archive`; returns the number of entries.
pub fn check_archive(archive: &Path) -> usize {
    let unzip = Command::new("unzip")
        .arg("-tq")
        .arg(archive)
        .output()
        .unwrap_or_else(|e| panic!("unzip: {e}"));
    assert!(
        unzip.status.success(),
        "unzip -t rejects {}: {}",
        archive.display(),
        String::from_utf8_lossy(&unzip.stdout)
    );
    let python = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_CHECK)
        .arg(archive)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        python.status.success(),
        "Python's zipfile rejects {}: {}",
        archive.display(),
        String::from_utf8_lossy(&python.stderr)
    );
    String::from_utf8_lossy(&python.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("Python's entry count: {e}"))
}
