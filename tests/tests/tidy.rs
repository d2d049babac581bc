//! The house rules docs/architecture.md promises, checked on the source tree: which crate may depend on
//! which (the engine never links the emulator, the leaf crates know no other crate of ours), every declared
//! dependency is used, every Rust file opens with a `//!` line that says what it is, and every `Port`
//! method takes a cancellation token.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use slot_release_tests::paths;

/// Each crate's allowed dependencies on this workspace's crates (normal dependencies; tests may use more).
const ALLOWED: &[(&str, &[&str])] = &[
    ("slot-release-config", &[]),
    ("slot-release-pipelines", &[]),
    ("slot-release-azure", &[]),
    ("slot-release-emulator", &[]),
    (
        "slot-release-engine",
        &[
            "slot-release-config",
            "slot-release-azure",
            "slot-release-pipelines",
        ],
    ),
    (
        "slot-release-rehearse",
        &[
            "slot-release-engine",
            "slot-release-emulator",
            "slot-release-pipelines",
        ],
    ),
    (
        "slot-release",
        &[
            "slot-release-config",
            "slot-release-azure",
            "slot-release-pipelines",
            "slot-release-engine",
            "slot-release-rehearse",
            "slot-release-emulator",
        ],
    ),
    (
        "xtask",
        &[
            "slot-release-config",
            "slot-release-azure",
            "slot-release-engine",
            "slot-release-emulator",
        ],
    ),
    (
        "slot-release-tests",
        &[
            "slot-release-emulator",
            "slot-release-pipelines",
            "slot-release-engine",
            "slot-release-rehearse",
        ],
    ),
];

/// One crate of the workspace: its manifest and folder.
struct Manifest {
    name: String,
    dir: PathBuf,
    /// Section (`dependencies`, `dev-dependencies`, `target.….dependencies`) → dependency names.
    sections: BTreeMap<String, Vec<String>>,
}

impl Manifest {
    /// Each dependency outside the dev sections (what the crate links in its own build), with its section.
    fn normal_dependencies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.sections
            .iter()
            .filter(|(section, _)| !section.contains("dev-dependencies"))
            .flat_map(|(section, deps)| deps.iter().map(move |d| (section.as_str(), d.as_str())))
    }
}

fn manifests() -> Vec<Manifest> {
    let root = paths::workspace();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.push(root.join("tests"));
    dirs.sort();
    dirs.into_iter().map(|dir| read_manifest(&dir)).collect()
}

/// The few parts of a Cargo.toml this check needs, read line by line (no TOML dependency for a test).
fn read_manifest(dir: &Path) -> Manifest {
    let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let mut name = String::new();
    let mut section = String::new();
    let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim_matches(|c| c == '\'' || c == '"').to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if section == "package" && key == "name" {
            name = value.trim().trim_matches('"').to_owned();
        } else if section.ends_with("dependencies") && !key.is_empty() && !key.starts_with('#') {
            let dep = key.split('.').next().unwrap_or(key).to_owned();
            sections.entry(section.clone()).or_default().push(dep);
        }
    }
    Manifest {
        name,
        dir: dir.to_path_buf(),
        sections,
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            let name = entry.file_name();
            if name != "target" && name != "node_modules" {
                out.extend(rust_files(&path));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn text_of(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn crates_depend_only_on_what_the_architecture_allows() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(name, deps)| (*name, deps.iter().copied().collect()))
        .collect();
    let mut problems = Vec::new();
    for m in manifests() {
        let Some(may) = allowed.get(m.name.as_str()) else {
            problems.push(format!(
                "{} is not in the tidy test's table: add it, with the edges docs/architecture.md allows",
                m.name
            ));
            continue;
        };
        for (section, dep) in m.normal_dependencies() {
            if (dep.starts_with("slot-release") || dep == "xtask") && !may.contains(dep) {
                problems.push(format!(
                    "{} depends on {dep} ([{section}]), which docs/architecture.md forbids",
                    m.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// HTTP clients and servers, which only the azure crate (client) and the emulator (server) may use;
/// xtask's benchmarks and the end-to-end harness (its production prober) talk to the emulator as a user's
/// client would.
const HTTP_STACKS: &[&str] = &[
    "reqwest",
    "hyper",
    "hyper-util",
    "axum",
    "axum-server",
    "h2",
];
const MAY_SPEAK_HTTP: &[&str] = &[
    "slot-release-azure",
    "slot-release-emulator",
    "xtask",
    "slot-release-tests",
];

#[test]
fn only_the_azure_crate_and_the_emulator_speak_http() {
    let mut problems = Vec::new();
    for m in manifests() {
        if MAY_SPEAK_HTTP.contains(&m.name.as_str()) {
            continue;
        }
        for (section, dep) in m.normal_dependencies() {
            if HTTP_STACKS.contains(&dep) {
                problems.push(format!(
                    "{} depends on {dep} ([{section}]): HTTP goes through slot-release-azure (health probes: its PageClient)",
                    m.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_declared_dependency_is_used() {
    let mut unused = Vec::new();
    for m in manifests() {
        let code = text_of(
            &["src", "build.rs"]
                .iter()
                .flat_map(|p| {
                    let p = m.dir.join(p);
                    if p.is_file() { vec![p] } else { rust_files(&p) }
                })
                .collect::<Vec<_>>(),
        );
        let all = format!(
            "{code}\n{}",
            text_of(
                &["tests", "benches", "examples"]
                    .iter()
                    .flat_map(|p| rust_files(&m.dir.join(p)))
                    .collect::<Vec<_>>()
            )
        );
        for (section, deps) in &m.sections {
            let haystack = if section.contains("dev-dependencies") {
                &all
            } else {
                &code
            };
            for dep in deps {
                let ident = dep.replace('-', "_");
                let used = haystack.match_indices(ident.as_str()).any(|(at, _)| {
                    let before = haystack[..at].chars().next_back();
                    let after = haystack[at + ident.len()..].chars().next();
                    let edge = |c: Option<char>| {
                        c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
                    };
                    edge(before) && edge(after)
                });
                if !used {
                    unused.push(format!("{}: [{section}] {dep}", m.name));
                }
            }
        }
    }
    assert!(
        unused.is_empty(),
        "declared but never used (remove them from Cargo.toml):\n{}",
        unused.join("\n")
    );
}

#[test]
fn every_rust_file_opens_with_a_doc_line() {
    let root = paths::workspace();
    let mut files = rust_files(&root.join("crates"));
    files.extend(rust_files(&root.join("tests")));
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .map(|t| !t.starts_with("//!"))
                .unwrap_or(true)
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(files.len() > 50, "the walk found the sources");
    assert!(
        missing.is_empty(),
        "files without a `//!` first line saying what they are:\n{}",
        missing.join("\n")
    );
}

/// The agent contract stays in `crates/pipelines`: no other crate's code sets a variable or writes a
/// logging command itself (docs/architecture.md, "Code map").
#[test]
fn only_the_pipelines_crate_speaks_to_the_agent() {
    let root = paths::workspace();
    let mut offenders = Vec::new();
    for krate in std::fs::read_dir(root.join("crates")).unwrap().flatten() {
        if krate.file_name() == "pipelines" {
            continue;
        }
        for file in rust_files(&krate.path().join("src")) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for needle in ["set_variable(\"", "\"##vso[", "\"##[group]"] {
                if text.contains(needle) {
                    offenders.push(format!("{}: {needle}", file.display()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

/// The libraries below the binary read no process environment: the agent's variables reach them through
/// `slot_release_pipelines::AgentEnv` from the binary. Two reads are by design: the hook runner lists the
/// environment to scrub what a child must not inherit, and the package build honours the reproducible-build
/// convention `SOURCE_DATE_EPOCH`.
#[test]
fn the_engine_reads_no_process_environment() {
    let root = paths::workspace();
    let allowed = [
        ("hooks.rs", "std::env::vars_os()"),
        ("options.rs", "std::env::var(\"SOURCE_DATE_EPOCH\")"),
    ];
    let mut offenders = Vec::new();
    for krate in ["engine", "rehearse"] {
        for file in rust_files(&root.join("crates").join(krate).join("src")) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            for (n, line) in text.lines().enumerate() {
                let reads = line.contains("env::var(")
                    || line.contains("env::var_os(")
                    || line.contains("env::vars(")
                    || line.contains("env::vars_os(");
                let by_design = allowed
                    .iter()
                    .any(|(f, needle)| *f == name && line.contains(needle));
                if reads && !by_design {
                    offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "read the agent's variables through AgentEnv in the binary and pass them in:\n{}",
        offenders.join("\n")
    );
}

/// The methods of the `Port` trait: name, whether it is `async`, and its parameter list, read from the
/// trait's body with comments left out.
fn port_methods() -> Vec<(String, bool, String)> {
    let text = std::fs::read_to_string(paths::workspace().join("crates/engine/src/port/mod.rs"))
        .unwrap_or_default();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let Some(start) = code.find("pub trait Port") else {
        return Vec::new();
    };
    let body_start = start + code[start..].find('{').unwrap_or(0);
    let mut depth = 0usize;
    let mut body_end = code.len();
    for (i, c) in code[body_start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    body_end = body_start + i;
                    break;
                }
            }
            _ => {}
        }
    }
    let body = &code[body_start..body_end];
    let mut methods = Vec::new();
    let mut rest = body;
    while let Some(at) = rest.find("fn ") {
        let line_start = rest[..at].rfind('\n').map_or(0, |n| n + 1);
        let is_async = rest[line_start..at].contains("async");
        let after = &rest[at + 3..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let open = after.find('(').unwrap_or(0);
        let mut depth = 0usize;
        let mut close = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        methods.push((name, is_async, after[open + 1..close].to_owned()));
        rest = &after[close..];
    }
    methods
}

/// Every call through the port can be cancelled (docs/architecture.md, "Invariants"): each method of
/// the `Port` trait takes a `&CancellationToken`, except those that do no I/O (building a prober, with or
/// without a function key, and reading the clock).
#[test]
fn every_port_method_takes_a_cancellation_token() {
    const NO_IO: &[&str] = &["prober", "keyed_prober", "now_unix"];
    let methods = port_methods();
    assert!(
        methods.len() > 15,
        "the Port trait was not found in crates/engine/src/port/mod.rs: {methods:?}"
    );
    let mut missing = Vec::new();
    for (name, is_async, params) in &methods {
        if NO_IO.contains(&name.as_str()) {
            assert!(
                !is_async,
                "Port::{name} was listed as doing no I/O but is async"
            );
            continue;
        }
        if !params.contains("&CancellationToken") {
            missing.push(format!(
                "Port::{name}({})",
                params.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "Port methods without a `&CancellationToken` parameter (a call that cannot be cancelled runs on after the agent's SIGINT):\n{}",
        missing.join("\n")
    );
}
