//! Run from package (`WEBSITE_RUN_FROM_PACKAGE=1`): each deployment is kept under
//! `/home/data/SitePackages`, `packagename.txt` names the current one, the site runs from it
//! read-only, and the next package switches the site over.

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
}
