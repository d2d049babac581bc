//! Oryx-style builds on deployment (`SCM_DO_BUILD_DURING_DEPLOYMENT`): pip into `antenv` from a
//! local wheel folder, `npm ci` from an offline cache, the build's lines in the deployment log, a
//! failed build failing the deployment while the previous content keeps running, and packages
//! vendored in the zip (`__oryx_packages__`, as Oryx's startup reads them) used as they are when the
//! setting is off, and Azure Functions' `.python_packages` not read by a web app.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::common::*;
use crate::stacks::{WSGI_APP, stacked};

/// Writes a real wheel (a zip with the module, METADATA, WHEEL and a RECORD of hashes) to `dir`.
fn write_wheel(dir: &Path, name: &str, version: &str, module: &str) {
    let info = format!("{name}-{version}.dist-info");
    let files = [
        (format!("{name}.py"), module.to_owned()),
        (
            format!("{info}/METADATA"),
            format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
        ),
        (
            format!("{info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: emulator-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_owned(),
        ),
    ];
    let mut record = String::new();
    for (path, content) in &files {
        let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(content.as_bytes()));
        record += &format!("{path},sha256={digest},{}\n", content.len());
    }
    record += &format!("{info}/RECORD,,\n");
    let path = dir.join(format!("{name}-{version}-py3-none-any.whl"));
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).expect("create wheel"));
    for (p, c) in files
        .iter()
        .chain(std::iter::once(&(format!("{info}/RECORD"), record)))
    {
        w.start_file(p.as_str(), zip::write::SimpleFileOptions::default())
            .expect("entry");
        w.write_all(c.as_bytes()).expect("write");
    }
    w.finish().expect("finish wheel");
}

fn set_build(o: &mut slot_release_emulator::EmulatorOptions, value: &str) {
    let staging = o.seed.subscriptions[0].resource_groups[0].apps[0]
        .slots
        .iter_mut()
        .find(|s| s.name == "staging")
        .expect("staging");
    staging
        .app_settings
        .insert("SCM_DO_BUILD_DURING_DEPLOYMENT".into(), value.into());
}

async fn deployment_log(f: &Fixture, id: &str) -> String {
    let token = f.arm_token().await;
    let entries: Vec<serde_json::Value> = f
        .http
        .get(f.scm("staging", &format!("/api/deployments/{id}/log")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    entries
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned() + "\n")
        .collect()
}

#[tokio::test]
async fn a_python_build_installs_requirements_offline_into_antenv_and_a_failed_one_keeps_the_old_site()
 {
    let s = stacked("PYTHON|3.12", |o, root| {
        let wheels = root.join("wheels");
        std::fs::create_dir_all(&wheels).expect("mkdir");
        write_wheel(
            &wheels,
            "greeting",
            "1.0",
            "def hello():\n    return 'hello from the wheel'\n",
        );
        o.python_packages = Some(wheels);
        // Kudu reads the setting case-insensitively.
        set_build(o, "True");
    })
    .await;
    let f = &s.f;
    let url = f.emu.app_url(APP, "staging");
    let d = f
        .one_deploy(
            "staging",
            zip(&[
                ("app.py", WSGI_APP),
                ("requirements.txt", "greeting==1.0\n"),
            ]),
        )
        .await;
    assert_eq!(d["status"], 4, "{d}");
    let log = deployment_log(f, d["id"].as_str().expect("id")).await;
    assert!(log.contains("Running oryx build..."), "{log}");
    assert!(log.contains("Python Virtual Environment: antenv"), "{log}");
    assert!(log.contains("Successfully installed greeting-1.0"), "{log}");
    eventually_body(f, &url, "hello from the wheel").await;
    // The app runs inside the environment, as Oryx's run script sets it up.
    let (_, venv) = f.get_text(&format!("{url}/venv")).await;
    assert!(venv.ends_with("/antenv"), "{venv}");

    // A requirement the local index cannot satisfy fails the build and the deployment.
    let d = f
        .one_deploy(
            "staging",
            zip(&[("app.py", "broken"), ("requirements.txt", "missing==2.0\n")]),
        )
        .await;
    assert_eq!(d["status"], 3, "{d}");
    assert!(
        d["status_text"]
            .as_str()
            .expect("text")
            .contains("Oryx build failed"),
        "{d}"
    );
    let log = deployment_log(f, d["id"].as_str().expect("id")).await;
    assert!(
        log.contains("No matching distribution found for missing==2.0"),
        "{log}"
    );
    assert!(log.contains("Deployment Failed."), "{log}");
    // The previous content still runs.
    assert_eq!(
        f.get_text(&url).await,
        (200, "hello from the wheel".to_owned())
    );
}

#[tokio::test]
async fn without_the_build_setting_vendored_python_packages_are_used_as_they_are() {
    let s = stacked("PYTHON|3.12", |o, _| set_build(o, "false")).await;
    let f = &s.f;
    let url = f.emu.app_url(APP, "staging");
    let d = f
        .one_deploy(
            "staging",
            zip(&[
                ("app.py", WSGI_APP),
                ("requirements.txt", "greeting==1.0\n"),
                (
                    "__oryx_packages__/greeting.py",
                    "def hello():\n    return 'hello vendored'\n",
                ),
                // A console script of a vendored package: Oryx puts the folder's bin first on PATH.
                (
                    "__oryx_packages__/bin/greet",
                    "#!/bin/sh\necho vendored-bin\n",
                ),
            ]),
        )
        .await;
    assert_eq!(d["status"], 4, "{d}");
    let log = deployment_log(f, d["id"].as_str().expect("id")).await;
    assert!(!log.contains("oryx build"), "{log}");
    eventually_body(f, &url, "hello vendored").await;
    let (_, path) = f.get_text(&format!("{url}/path")).await;
    assert!(
        path.split(':')
            .next()
            .is_some_and(|first| first.ends_with("__oryx_packages__/bin")),
        "{path}"
    );
    // Functions' folder is not on a web app's path: the same module there is not found.
    let d = f
        .one_deploy(
            "staging",
            zip(&[
                ("app.py", WSGI_APP),
                (
                    ".python_packages/lib/site-packages/greeting.py",
                    "def hello():\n    return 'hello functions'\n",
                ),
            ]),
        )
        .await;
    assert_eq!(d["status"], 4, "{d}");
    eventually_body(f, &url, "flask-style contoso-web").await;
    let dir = f
        .emu
        .snapshot()
        .slot(APP, "staging")
        .expect("slot")
        .content_dir
        .clone();
    assert!(
        !dir.join("antenv").exists(),
        "no build, no virtual environment"
    );
}

#[tokio::test]
async fn a_node_build_runs_npm_ci_from_the_offline_cache() {
    let s = stacked("NODE|20-lts", |o, root| {
        // A real npm tarball, packed and put in a cache the build may read offline.
        let pkg = root.join("leftish");
        std::fs::create_dir_all(&pkg).expect("mkdir");
        std::fs::write(
            pkg.join("package.json"),
            r#"{"name":"leftish","version":"1.0.0","main":"index.js"}"#,
        )
        .expect("write");
        std::fs::write(pkg.join("index.js"), "module.exports = s => 'left:' + s;\n")
            .expect("write");
        let cache = root.join("npm-cache");
        let run = |args: &[&str]| {
            let out = std::process::Command::new("npm")
                .args(args)
                .current_dir(root)
                .env("npm_config_update_notifier", "false")
                .output()
                .expect("npm");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["pack", "./leftish", "--silent"]);
        run(&[
            "cache",
            "add",
            "./leftish-1.0.0.tgz",
            "--cache",
            cache.to_str().expect("utf-8"),
        ]);
        o.npm_cache = Some(cache);
        set_build(o, "1");
    })
    .await;
    let f = &s.f;
    let tgz = std::fs::read(s.tools.path().join("leftish-1.0.0.tgz")).expect("tarball");
    let integrity = format!(
        "sha512-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(&tgz))
    );
    let package = r#"{"name":"web","version":"1.0.0","scripts":{"start":"node server.js"},"dependencies":{"leftish":"1.0.0"}}"#;
    let lock = format!(
        r#"{{"name":"web","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{{"":{{"name":"web","version":"1.0.0","dependencies":{{"leftish":"1.0.0"}}}},"node_modules/leftish":{{"version":"1.0.0","resolved":"https://registry.npmjs.org/leftish/-/leftish-1.0.0.tgz","integrity":"{integrity}"}}}}}}"#
    );
    let server = "require('http').createServer((q, r) => r.end(require('leftish')('node'))).listen(process.env.PORT, '127.0.0.1');";
    let d = f
        .one_deploy(
            "staging",
            zip(&[
                ("package.json", package),
                ("package-lock.json", &lock),
                ("server.js", server),
            ]),
        )
        .await;
    assert_eq!(d["status"], 4, "{d}");
    let log = deployment_log(f, d["id"].as_str().expect("id")).await;
    assert!(log.contains("Running 'npm ci --omit=dev'..."), "{log}");
    eventually_body(f, &f.emu.app_url(APP, "staging"), "left:node").await;
}
