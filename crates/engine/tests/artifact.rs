//! Build once, deploy many: wildcard resolution, the build record round trip, verification against it
//! (package and config digests), folder packages, garbage packages and the package root checks.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use slot_release_engine::artifact::{
    self, ArtifactError, BUILD_RECORD_FILE, BUILD_RECORD_VERSION, BuildContext, BuildRecord,
    FOLDER_ARCHIVE, PackageSource, PrepareRequest, PreparedPackage,
};
use slot_release_engine::package::{PackageSpec, Sha256Hex, read_manifest};
use slot_release_pipelines::{Log, OutputMode};
use tokio_util::sync::CancellationToken;

/// A log whose text the test can read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn log(&self) -> Log {
        Log::new(OutputMode::Plain, Box::new(self.clone()))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

fn context() -> BuildContext {
    BuildContext {
        release_id: "20261204.1".to_owned(),
        release_name: "20261204.1".to_owned(),
        source_commit: Some("0123456789abcdef0123456789abcdef01234567".to_owned()),
        build_id: Some("4242".to_owned()),
        pipeline_id: Some("17".to_owned()),
        project_id: Some("p-1".to_owned()),
        collection_id: Some("c-1".to_owned()),
        repository: Some("shop/web".to_owned()),
    }
}

/// A checkout: `src/release.yml` and an app folder `src/app`.
struct Checkout {
    dir: tempfile::TempDir,
}

impl Checkout {
    fn new() -> Checkout {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "src/release.yml",
            b"app:\n  name: contoso-web\n",
        );
        write(dir.path(), "src/app/app.py", b"print('v1')\n");
        write(dir.path(), "src/app/static/site.css", b"body {}\n");
        Checkout { dir }
    }
    fn sources(&self) -> PathBuf {
        self.dir.path().join("src")
    }
    fn config(&self) -> PathBuf {
        self.sources().join("release.yml")
    }
    fn request(&self, source: PackageSource, out: &str, write_record: bool) -> PrepareRequest {
        PrepareRequest {
            source,
            base_dir: self.dir.path().to_path_buf(),
            config: self.config(),
            sources: self.sources(),
            out_dir: self.dir.path().join(out),
            context: context(),
            write_record,
            verify_config: true,
        }
    }
    fn build(&self, out: &str) -> PreparedPackage {
        let source = PackageSource::Build {
            spec: PackageSpec::new(self.sources().join("app")),
            none_given: false,
        };
        artifact::prepare(
            &self.request(source, out, true),
            &Captured::default().log(),
            &CancellationToken::new(),
        )
        .unwrap()
    }
    fn given(&self, pattern: &str, record: Option<PathBuf>) -> PackageSource {
        PackageSource::Given {
            pattern: pattern.to_owned(),
            build_record: record,
        }
    }
    fn deploy(&self, pattern: &str) -> Result<PreparedPackage, ArtifactError> {
        let request = self.request(self.given(pattern, None), "work", false);
        artifact::prepare(
            &request,
            &Captured::default().log(),
            &CancellationToken::new(),
        )
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

// ---- wildcard resolution ----

#[test]
fn a_wildcard_resolves_to_its_single_match() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "drop/package.zip", b"x");
    write(dir.path(), "drop/slot-release-build.json", b"{}");
    write(dir.path(), "other/readme.txt", b"x");
    let found = artifact::resolve_pattern("drop/*.zip", dir.path()).unwrap();
    assert_eq!(found, dir.path().join("drop/package.zip"));
    // `**` spans folders, and an absolute pattern ignores the base.
    let found = artifact::resolve_pattern("**/*.zip", dir.path()).unwrap();
    assert_eq!(found, dir.path().join("drop/package.zip"));
    let absolute = format!("{}/d*/*.zip", dir.path().display());
    let found = artifact::resolve_pattern(&absolute, Path::new("/nonexistent")).unwrap();
    assert_eq!(found, dir.path().join("drop/package.zip"));
    // A plain path is taken as it is.
    let found = artifact::resolve_pattern("drop/package.zip", dir.path()).unwrap();
    assert_eq!(found, dir.path().join("drop/package.zip"));
}

#[test]
fn a_wildcard_with_several_matches_lists_them_and_names_the_pattern() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "drop/a.zip", b"x");
    write(dir.path(), "drop/nested/b.zip", b"x");
    let err = artifact::resolve_pattern("**/*.zip", dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, ArtifactError::AmbiguousMatch { count: 2, .. }),
        "{text}"
    );
    assert!(text.contains("\"**/*.zip\""), "{text}");
    assert!(text.contains("drop/a.zip"), "{text}");
    assert!(text.contains("drop/nested/b.zip"), "{text}");
    // Many matches are summarised, not all listed.
    for i in 0..15 {
        write(dir.path(), &format!("many/{i:02}.zip"), b"x");
    }
    let text = artifact::resolve_pattern("many/*.zip", dir.path())
        .unwrap_err()
        .to_string();
    assert!(text.contains("matches 15"), "{text}");
    assert!(text.contains("and 5 more"), "{text}");
    assert!(!text.contains("14.zip"), "{text}");
}

#[test]
fn a_wildcard_with_no_match_says_so_and_names_the_pattern() {
    let dir = tempfile::tempdir().unwrap();
    // `*` stays within one folder; `.git` is never searched.
    write(dir.path(), "drop/nested/a.zip", b"x");
    write(dir.path(), ".git/objects/pack.zip", b"x");
    for pattern in ["drop/*.zip", "*.zip", "missing/*.zip", "drop/nested/b.zip"] {
        let err = artifact::resolve_pattern(pattern, dir.path()).unwrap_err();
        assert!(
            matches!(err, ArtifactError::NoMatch { .. }),
            "{pattern}: {err}"
        );
        assert!(err.to_string().contains(pattern), "{err}");
    }
    let found = artifact::resolve_pattern("**/*.zip", dir.path()).unwrap();
    assert_eq!(found, dir.path().join("drop/nested/a.zip"));
    let err = artifact::resolve_pattern("drop/[.zip", dir.path()).unwrap_err();
    assert!(matches!(err, ArtifactError::InvalidPattern { .. }), "{err}");
}

#[test]
fn a_folder_can_be_the_match() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "out/publish/app.dll", b"x");
    let found = artifact::resolve_pattern("out/*", dir.path()).unwrap();
    assert_eq!(found, dir.path().join("out/publish"));
}

// ---- the build record ----

#[test]
fn the_build_record_round_trips_with_the_fields_stages_need() {
    let checkout = Checkout::new();
    let built = checkout.build("artifact");
    let record_path = checkout.dir.path().join("artifact").join(BUILD_RECORD_FILE);
    assert_eq!(built.record_path.as_deref(), Some(record_path.as_path()));
    assert!(built.built);
    let read = artifact::read_build_record(&record_path).unwrap();
    assert_eq!(Some(&read), built.record.as_ref());
    assert_eq!(read.record_version, BUILD_RECORD_VERSION);
    assert_eq!(read.release_id, "20261204.1");
    assert_eq!(read.release_name, "20261204.1");
    assert_eq!(read.package, "package.zip");
    assert_eq!(read.sha256, built.sha256);
    assert_eq!(read.size, fs::metadata(&built.path).unwrap().len());
    let (sha, _) = artifact::sha256_file(&built.path, &CancellationToken::new()).unwrap();
    assert_eq!(read.sha256, sha, "the record holds the zip's own digest");
    assert_eq!(
        read.config_sha256,
        Sha256Hex::of(&fs::read(checkout.config()).unwrap())
    );
    assert_eq!(
        read.source_commit.as_deref(),
        Some("0123456789abcdef0123456789abcdef01234567")
    );
    assert_eq!(read.build_id, "4242");
    assert_eq!(read.pipeline_id.as_deref(), Some("17"));
    assert_eq!(read.run_id.as_deref(), Some("4242"));
    // The names in the JSON are the ones documented and shared with the release identity work.
    let json: serde_json::Value = serde_json::from_slice(&fs::read(&record_path).unwrap()).unwrap();
    for key in [
        "recordVersion",
        "releaseId",
        "releaseName",
        "package",
        "size",
        "sha256",
        "configSha256",
        "sourceCommit",
        "buildId",
        "pipelineId",
        "runId",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
}

#[test]
fn a_record_outside_a_pipeline_has_no_run_ids() {
    let context = BuildContext::from_run("local-1", "local 1", &Default::default());
    assert_eq!(context.build_id, None);
    let record = BuildRecord {
        record_version: BUILD_RECORD_VERSION,
        release_id: context.release_id.clone(),
        release_name: context.release_name.clone(),
        package: "package.zip".into(),
        size: 1,
        sha256: Sha256Hex::of(b"x"),
        config_sha256: Sha256Hex::of(b"y"),
        source_commit: None,
        build_id: "local-1".into(),
        pipeline_id: None,
        run_id: None,
        project_id: None,
        collection_id: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(BUILD_RECORD_FILE);
    artifact::write_build_record(&path, &record).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("runId"), "{text}");
    assert_eq!(artifact::read_build_record(&path).unwrap(), record);
}

#[test]
fn a_newer_or_garbage_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(BUILD_RECORD_FILE);
    fs::write(&path, br#"{"recordVersion": 99, "somethingNew": true}"#).unwrap();
    let err = artifact::read_build_record(&path).unwrap_err();
    assert!(
        matches!(err, ArtifactError::RecordTooNew { version: 99, .. }),
        "{err}"
    );
    fs::write(&path, b"not json").unwrap();
    let err = artifact::read_build_record(&path).unwrap_err();
    assert!(matches!(err, ArtifactError::RecordInvalid { .. }), "{err}");
    let err = artifact::read_build_record(&dir.path().join("missing.json")).unwrap_err();
    assert!(
        matches!(err, ArtifactError::RecordUnreadable { .. }),
        "{err}"
    );
}

// ---- deploying a given package ----

#[test]
fn a_copied_artifact_is_verified_and_deployed_as_is() {
    let checkout = Checkout::new();
    let built = checkout.build("artifact");
    // Another job downloads the artifact somewhere else.
    copy_dir(
        &checkout.dir.path().join("artifact"),
        &checkout.dir.path().join("drop"),
    );
    let captured = Captured::default();
    let request = checkout.request(checkout.given("drop/*.zip", None), "work", false);
    let prepared = artifact::prepare(&request, &captured.log(), &CancellationToken::new()).unwrap();
    assert_eq!(prepared.sha256, built.sha256);
    assert_eq!(prepared.path, checkout.dir.path().join("drop/package.zip"));
    assert!(!prepared.built, "nothing is rebuilt");
    assert!(
        !checkout.dir.path().join("work").exists(),
        "nothing written"
    );
    assert_eq!(prepared.record, built.record);
    let log = captured.text();
    assert!(log.contains("verified against its build record"), "{log}");
    assert!(!log.contains("building"), "{log}");
}

#[test]
fn a_package_changed_after_the_build_is_refused_naming_both_digests() {
    let checkout = Checkout::new();
    let built = checkout.build("artifact");
    let zip = checkout.dir.path().join("artifact/package.zip");
    // One byte of the first entry's data changes: still a readable zip, not the bytes the build made.
    let mut bytes = fs::read(&zip).unwrap();
    bytes[40] ^= 0x01;
    fs::write(&zip, &bytes).unwrap();
    let err = checkout.deploy("artifact/package.zip").unwrap_err();
    let ArtifactError::PackageDigestMismatch(mismatch) = &err else {
        panic!("{err}");
    };
    assert_eq!(mismatch.expected, built.sha256);
    assert_eq!(mismatch.actual, Sha256Hex::of(&bytes));
    let text = err.to_string();
    assert!(text.contains(built.sha256.as_str()), "{text}");
    assert!(text.contains(Sha256Hex::of(&bytes).as_str()), "{text}");
}

#[test]
fn an_explicit_record_is_used_and_a_mismatch_names_it() {
    let checkout = Checkout::new();
    checkout.build("artifact");
    let record = checkout.dir.path().join("artifact").join(BUILD_RECORD_FILE);
    // Another zip with no record beside it, checked against the explicit record.
    write(&checkout.sources(), "app/app.py", b"print('v2')\n");
    checkout.build("other");
    fs::remove_file(checkout.dir.path().join("other").join(BUILD_RECORD_FILE)).unwrap();
    let unverified = checkout.deploy("other/package.zip").unwrap();
    assert_eq!(unverified.record, None, "no record beside it: as given");
    let request = checkout.request(
        checkout.given("other/package.zip", Some(record.clone())),
        "work",
        false,
    );
    let err = artifact::prepare(
        &request,
        &Captured::default().log(),
        &CancellationToken::new(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ArtifactError::PackageDigestMismatch(_)),
        "{err}"
    );
    assert!(err.to_string().contains(&record.display().to_string()));
}

#[test]
fn a_config_changed_since_the_build_is_refused_naming_both_digests() {
    let checkout = Checkout::new();
    let built = checkout.build("artifact");
    let before = built.record.as_ref().unwrap().config_sha256.clone();
    fs::write(checkout.config(), b"app:\n  name: contoso-other\n").unwrap();
    let after = Sha256Hex::of(&fs::read(checkout.config()).unwrap());
    let err = checkout.deploy("artifact/*.zip").unwrap_err();
    assert!(
        matches!(err, ArtifactError::ConfigDigestMismatch(_)),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains(before.as_str()), "{text}");
    assert!(text.contains(after.as_str()), "{text}");
    assert!(
        text.contains("0123456789abcdef"),
        "names the commit: {text}"
    );
}

#[test]
fn a_folder_package_is_zipped_deterministically_as_it_is() {
    let checkout = Checkout::new();
    // Another tool's output: no ignore rules apply, hidden files are kept.
    let publish = checkout.dir.path().join("publish");
    write(&publish, "app.dll", b"MZ...");
    write(&publish, ".gitignore", b"*.json\n");
    write(&publish, "appsettings.json", b"{}");
    write(&publish, "wwwroot/index.html", b"<html/>");
    let first = checkout.deploy("publish").unwrap();
    let manifest = read_manifest(&first.path).unwrap();
    let names: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        names,
        [
            ".gitignore",
            "app.dll",
            "appsettings.json",
            "wwwroot/index.html"
        ]
    );
    assert_eq!(
        first.path,
        checkout.dir.path().join("work").join(FOLDER_ARCHIVE)
    );
    let second = checkout.deploy("publish").unwrap();
    assert_eq!(
        first.sha256, second.sha256,
        "the same folder, the same bytes"
    );
    // A package `build` wrote to the same work folder, and its record, are left as they were.
    let built = checkout.build("work");
    let third = checkout.deploy("publish").unwrap();
    assert_eq!(third.sha256, first.sha256);
    let still = checkout.deploy("work/package.zip").unwrap();
    assert_eq!(
        still.sha256, built.sha256,
        "the build's package was replaced"
    );
    assert!(still.record.is_some());
    // An empty folder is refused.
    fs::create_dir_all(checkout.dir.path().join("empty")).unwrap();
    let err = checkout.deploy("empty").unwrap_err();
    assert!(matches!(err, ArtifactError::EmptyFolder { .. }), "{err}");
}

#[test]
fn a_folder_given_to_build_is_recorded_and_verifies_downstream() {
    let checkout = Checkout::new();
    let publish = checkout.dir.path().join("publish");
    write(&publish, "index.js", b"console.log(1)\n");
    let request = checkout.request(checkout.given("publish", None), "artifact", true);
    let recorded = artifact::prepare(
        &request,
        &Captured::default().log(),
        &CancellationToken::new(),
    )
    .unwrap();
    assert!(recorded.record.is_some());
    let deployed = checkout.deploy("artifact/*.zip").unwrap();
    assert_eq!(deployed.sha256, recorded.sha256);
    assert_eq!(deployed.record, recorded.record);
}

#[test]
fn a_zip_given_to_build_is_copied_beside_its_record() {
    let checkout = Checkout::new();
    let file = fs::File::create(checkout.dir.path().join("app.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file("index.js", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"console.log(1)").unwrap();
    zip.finish().unwrap();
    let request = checkout.request(checkout.given("app.zip", None), "artifact", true);
    let recorded = artifact::prepare(
        &request,
        &Captured::default().log(),
        &CancellationToken::new(),
    )
    .unwrap();
    assert_eq!(recorded.path, checkout.dir.path().join("artifact/app.zip"));
    assert_eq!(recorded.record.as_ref().unwrap().package, "app.zip");
    let deployed = checkout.deploy("artifact/*.zip").unwrap();
    assert_eq!(deployed.sha256, recorded.sha256);
    assert_eq!(deployed.record, recorded.record);
}

#[test]
fn garbage_packages_are_refused_before_anything() {
    let checkout = Checkout::new();
    let dir = checkout.dir.path();
    write(dir, "text.zip", b"this is not a zip file at all");
    write(dir, "empty-file.zip", b"");
    let err = checkout.deploy("text.zip").unwrap_err();
    assert!(matches!(err, ArtifactError::NotAZip { .. }), "{err}");
    assert!(err.to_string().contains("text.zip"));
    let err = checkout.deploy("empty-file.zip").unwrap_err();
    assert!(matches!(err, ArtifactError::NotAZip { .. }), "{err}");
    // A valid zip with nothing in it.
    let file = fs::File::create(dir.join("no-entries.zip")).unwrap();
    zip::ZipWriter::new(file).finish().unwrap();
    let err = checkout.deploy("no-entries.zip").unwrap_err();
    assert!(matches!(err, ArtifactError::EmptyZip { .. }), "{err}");
    // A zip whose entry would land outside the site folder.
    let file = fs::File::create(dir.join("slip.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file(
        "../../etc/cron.d/x",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(b"x").unwrap();
    zip.finish().unwrap();
    let err = checkout.deploy("slip.zip").unwrap_err();
    assert!(matches!(err, ArtifactError::UnsafeZipEntry { .. }), "{err}");
    // A path that does not exist.
    let err = checkout.deploy("nowhere/package.zip").unwrap_err();
    assert!(matches!(err, ArtifactError::NoMatch { .. }), "{err}");
    assert!(!dir.join("work").exists(), "nothing was written");
}

#[test]
fn a_zip_built_by_another_tool_is_accepted() {
    let checkout = Checkout::new();
    let file = fs::File::create(checkout.dir.path().join("app.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file("bin\\app.dll", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"MZ").unwrap();
    zip.finish().unwrap();
    let prepared = checkout.deploy("*.zip").unwrap();
    assert_eq!(prepared.path, checkout.dir.path().join("app.zip"));
    assert_eq!(prepared.record, None);
}

// ---- building when no package is given ----

#[test]
fn building_because_none_was_given_says_so() {
    let checkout = Checkout::new();
    let captured = Captured::default();
    let source = PackageSource::Build {
        spec: PackageSpec::new(checkout.sources().join("app")),
        none_given: true,
    };
    let prepared = artifact::prepare(
        &checkout.request(source, "work", false),
        &captured.log(),
        &CancellationToken::new(),
    )
    .unwrap();
    assert!(prepared.built);
    let log = captured.text();
    assert!(
        log.contains(&format!(
            "No package given: building one from {}",
            checkout.sources().join("app").display()
        )),
        "{log}"
    );
}

#[test]
fn the_package_root_must_exist_lie_inside_the_sources_and_hold_something() {
    let checkout = Checkout::new();
    let sources = checkout.sources();
    assert!(artifact::check_package_root(&sources.join("app"), &sources).is_ok());
    let err = artifact::check_package_root(&sources.join("missing"), &sources).unwrap_err();
    assert!(matches!(err, ArtifactError::RootMissing { .. }), "{err}");
    let err = artifact::check_package_root(&sources.join("release.yml"), &sources).unwrap_err();
    assert!(matches!(err, ArtifactError::RootNotAFolder { .. }), "{err}");
    fs::create_dir_all(sources.join("empty")).unwrap();
    let err = artifact::check_package_root(&sources.join("empty"), &sources).unwrap_err();
    assert!(matches!(err, ArtifactError::RootEmpty { .. }), "{err}");
    // `..` and a symlink both resolve outside.
    write(checkout.dir.path(), "outside/secret.txt", b"x");
    let err = artifact::check_package_root(&sources.join("../outside"), &sources).unwrap_err();
    assert!(
        matches!(err, ArtifactError::RootOutsideSources { .. }),
        "{err}"
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(checkout.dir.path().join("outside"), sources.join("link"))
            .unwrap();
        let err = artifact::check_package_root(&sources.join("link"), &sources).unwrap_err();
        assert!(
            matches!(err, ArtifactError::RootOutsideSources { .. }),
            "{err}"
        );
    }
    // The build refuses such a root before writing anything.
    let source = PackageSource::Build {
        spec: PackageSpec::new(sources.join("../outside")),
        none_given: true,
    };
    let err = artifact::prepare(
        &checkout.request(source, "work", true),
        &Captured::default().log(),
        &CancellationToken::new(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ArtifactError::RootOutsideSources { .. }),
        "{err}"
    );
    assert!(!checkout.dir.path().join("work").exists());
}

#[test]
fn sources_are_the_agents_else_the_git_work_tree_else_the_config_folder() {
    let checkout = Checkout::new();
    let config = checkout.config();
    let agent = artifact::sources_dir(&config, Some(PathBuf::from("/agent/s")));
    assert_eq!(agent, PathBuf::from("/agent/s"));
    let plain = artifact::sources_dir(&config, None);
    assert_eq!(plain, fs::canonicalize(checkout.sources()).unwrap());
    fs::create_dir_all(checkout.dir.path().join(".git")).unwrap();
    let git = artifact::sources_dir(&config, None);
    assert_eq!(git, fs::canonicalize(checkout.dir.path()).unwrap());
}
