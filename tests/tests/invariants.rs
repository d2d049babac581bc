//! Architecture invariants that a reviewer would otherwise have to remember: only the agent-contract
//! crate writes logging commands or formatting lines, so escaping and masking cannot be bypassed.

use std::path::{Path, PathBuf};

use slot_release_tests::paths;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_pipelines_crate_writes_logging_commands() {
    let crates = paths::workspace().join("crates");
    let mut offenders = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates)
        .unwrap_or_else(|e| panic!("{}: {e}", crates.display()))
        .flatten()
    {
        if entry.file_name() == "pipelines" {
            continue;
        }
        // Product code only: tests may well contain commands, to check they are neutralised.
        let mut files = Vec::new();
        rust_files(&entry.path().join("src"), &mut files);
        for file in files {
            checked += 1;
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                // Comments may talk about commands; code that writes one has it in a string.
                let code = line.split("//").next().unwrap_or_default();
                if code.contains("##vso[") || code.contains("##[") {
                    offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        checked > 0,
        "no source files found under {}",
        crates.display()
    );
    assert!(
        offenders.is_empty(),
        "logging commands written outside crates/pipelines:\n{}",
        offenders.join("\n")
    );
}
