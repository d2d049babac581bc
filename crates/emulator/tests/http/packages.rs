//! Run from package (`WEBSITE_RUN_FROM_PACKAGE=1`): each deployment is kept under
//! `/home/data/SitePackages`, `packagename.txt` names the current one, the site runs from it
//! read-only, and the next package switches the site over. Kudu keeps the newest
//! `SCM_MAX_ZIP_PACKAGE_COUNT` (5) zips; pointing `packagename.txt` back at a kept one and restarting
//! runs it again; the packages follow the content on a swap.

use reqwest::Method;
use serde_json::json;

use crate::common::*;
use crate::stacks::stacked;

/// An app that answers VERSION, and on `/write` tries to write into its site folder.
const RO_APP: &str = r#"
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/write":
            try:
                open("written.txt", "w").write("x")
                body = "wrote"
            except OSError as e:
                body = "write failed: " + e.strerror
        else:
            body = open("VERSION").read().strip()
        b = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

async fn vfs_put(f: &Fixture, path: &str, body: &str, if_match: bool) -> u16 {
    let token = f.arm_token().await;
    let mut r = f
        .http
        .put(f.scm("staging", &format!("/api/vfs/{path}")))
        .bearer_auth(&token)
        .body(body.to_owned());
    if if_match {
        r = r.header("If-Match", "*");
    }
    r.send().await.expect("vfs put").status().as_u16()
}

async fn packages(f: &Fixture) -> Vec<String> {
    packages_of(f, "staging").await
}

async fn packages_of(f: &Fixture, slot: &str) -> Vec<String> {
    let token = f.arm_token().await;
    let r = f
        .http
        .get(f.scm(slot, "/api/vfs/data/SitePackages/"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("vfs");
    let status = r.status().as_u16();
    let listing = r.text().await.expect("text");
    if status == 404 {
        return Vec::new();
    }
    serde_json::from_str::<Vec<serde_json::Value>>(&listing)
        .expect("json")
        .iter()
        .map(|e| e["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn vfs(f: &Fixture, path: &str) -> (u16, String) {
    let token = f.arm_token().await;
    let r = f
        .http
        .get(f.scm("staging", &format!("/api/vfs/{path}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("vfs");
    (r.status().as_u16(), r.text().await.expect("text"))
}

#[tokio::test]
async fn a_site_run_from_a_package_keeps_each_package_and_runs_the_current_one_read_only() {
    let s = stacked("PYTHON|3.12", |o, _| {
        let staging = o.seed.subscriptions[0].resource_groups[0].apps[0]
            .slots
            .iter_mut()
            .find(|s| s.name == "staging")
            .expect("staging");
        staging
            .app_settings
            .insert("WEBSITE_RUN_FROM_PACKAGE".into(), "1".into());
        staging.site_config.insert(
            "appCommandLine".into(),
            format!("{} app.py", python()).into(),
        );
    })
    .await;
    let f = &s.f;
    let url = f.emu.app_url(APP, "staging");
    let d = f
        .one_deploy("staging", zip(&[("app.py", RO_APP), ("VERSION", "p1")]))
        .await;
    assert_eq!(d["status"], 4, "{d}");
    eventually_body(f, &url, "p1").await;
    let (status, first) = vfs(f, "data/SitePackages/packagename.txt").await;
    assert_eq!(status, 200);
    assert!(first.ends_with(".zip"), "{first}");
    // The site folder is the package, mounted read-only: the app cannot write into it.
    let (_, wrote) = f.get_text(&format!("{url}/write")).await;
    assert_eq!(wrote, "write failed: Read-only file system");

    let d = f
        .one_deploy("staging", zip(&[("app.py", RO_APP), ("VERSION", "p2")]))
        .await;
    assert_eq!(d["status"], 4, "{d}");
    eventually_body(f, &url, "p2").await;
    let (_, second) = vfs(f, "data/SitePackages/packagename.txt").await;
    assert_ne!(first, second);
    let (_, listing) = vfs(f, "data/SitePackages/").await;
    let names: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(&listing)
        .expect("json")
        .iter()
        .map(|e| e["name"].as_str().expect("name").to_owned())
        .collect();
    assert!(
        names.contains(&first) && names.contains(&second),
        "{names:?}"
    );
    assert!(names.contains(&"packagename.txt".to_owned()), "{names:?}");
    // The package itself is the one uploaded.
    let (status, _) = vfs(f, &format!("data/SitePackages/{second}")).await;
    assert_eq!(status, 200);
    // The site folder cannot be written through Kudu either.
    assert_eq!(
        vfs_put(f, "site/wwwroot/VERSION", "hacked", true).await,
        409
    );
    eventually_body(f, &url, "p2").await;

    // Pointing packagename.txt back at the first package and restarting runs it again.
    assert_eq!(
        vfs_put(f, "data/SitePackages/packagename.txt", &first, false).await,
        412,
        "replacing a file needs If-Match"
    );
    assert_eq!(
        vfs_put(f, "data/SitePackages/packagename.txt", &first, true).await,
        204
    );
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/restart?api-version=2016-08-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    eventually_body(f, &url, "p1").await;

    // Kudu keeps the newest five zips.
    for n in 3..=7 {
        let d = f
            .one_deploy(
                "staging",
                zip(&[("app.py", RO_APP), ("VERSION", &format!("p{n}"))]),
            )
            .await;
        assert_eq!(d["status"], 4, "{d}");
    }
    let names = packages(f).await;
    let zips = names.iter().filter(|n| n.ends_with(".zip")).count();
    assert_eq!(zips, 5, "{names:?}");
    assert!(!names.contains(&first), "{names:?}");

    // The packages are the content's: a swap takes them to production.
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/slotsswap?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    assert_eq!(f.wait_lro(r).await.status(), 200);
    let staging_after = packages(f).await;
    assert_eq!(packages_of(f, "production").await, names);
    assert!(
        !staging_after
            .iter()
            .any(|n| names.contains(n) && n.ends_with(".zip")),
        "{staging_after:?}"
    );
}
