//! Java and Windows apps on Kudu: OneDeploy's `type=war|jar` checked against the stack with Kudu's
//! answers, `app.war`/`app.jar` placed in `wwwroot`, a real JAR run by `java -jar`, and a Windows
//! app run by the handler its `web.config` names, offline (503, app_offline.htm) while Kudu deploys.

use std::time::Duration;

use crate::common::*;
use slot_release_emulator::{AppOs, SeedApp, SeedPlan, SeedSlot};

fn app(name: &str, os: AppOs, config: &[(&str, &str)], meta: &[(&str, &str)]) -> SeedApp {
    let slots = ["production", "staging"]
        .iter()
        .map(|n| {
            let mut s = SeedSlot::named(*n);
            for (k, v) in config {
                s.site_config.insert((*k).into(), (*v).into());
            }
            for (k, v) in meta {
                s.metadata.insert((*k).into(), (*v).into());
            }
            s
        })
        .collect();
    SeedApp {
        name: name.into(),
        os,
        plan: SeedPlan {
            name: None,
            sku: "P1v3".into(),
        },
        slots,
        ..SeedApp::default()
    }
}

async fn start_kinds(step: Duration) -> Fixture {
    start_with(|o| {
        o.deployment_step_delay = step;
        let apps = &mut o.seed.subscriptions[0].resource_groups[0].apps;
        apps.push(app(
            "contoso-jar",
            AppOs::Linux,
            &[("linuxFxVersion", "JAVA|17-java17")],
            &[],
        ));
        apps.push(app(
            "contoso-tomcat",
            AppOs::Linux,
            &[("linuxFxVersion", "TOMCAT|10.1-java17")],
            &[],
        ));
        apps.push(app(
            "contoso-win",
            AppOs::Windows,
            &[("nodeVersion", "~20")],
            &[("CURRENT_STACK", "node")],
        ));
    })
    .await
}

/// Posts an artifact to a slot's OneDeploy with `type=`; returns the status and body.
async fn publish(f: &Fixture, app: &str, kind: &str, body: Vec<u8>) -> (u16, String) {
    let token = f.arm_token().await;
    let url = format!(
        "{}/api/publish?type={kind}&async=false",
        f.emu.scm_url(app, "staging")
    );
    let r = f
        .http
        .post(url)
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("publish");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// `ls` of the slot's `wwwroot` through Kudu's command API.
async fn wwwroot(f: &Fixture, app: &str) -> String {
    in_wwwroot(f, app, "ls -A").await
}

/// The output of `command` run by Kudu's `/api/command` in the staging slot's `site/wwwroot`.
async fn in_wwwroot(f: &Fixture, app: &str, command: &str) -> String {
    let token = f.arm_token().await;
    let v: serde_json::Value = f
        .http
        .post(format!("{}/api/command", f.emu.scm_url(app, "staging")))
        .bearer_auth(token)
        .json(&serde_json::json!({"command": command, "dir": "site/wwwroot"}))
        .send()
        .await
        .expect("command")
        .json()
        .await
        .expect("json");
    v["Output"].as_str().unwrap_or_default().to_owned()
}

/// A real executable JAR: a JDK HTTP server that answers with `text`, built with javac and jar.
fn build_jar(dir: &std::path::Path, text: &str) -> Vec<u8> {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(
        src.join("Hello.java"),
        format!(
            r#"import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
public class Hello {{
  public static void main(String[] a) throws Exception {{
    int port = Integer.parseInt(System.getenv("PORT"));
    HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
    s.createContext("/", x -> {{ byte[] b = "{text}".getBytes(); x.sendResponseHeaders(200, b.length); x.getResponseBody().write(b); x.close(); }});
    s.start();
  }}
}}
"#
        ),
    )
    .expect("write");
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().expect("run the JDK tool");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(std::process::Command::new("javac")
        .args(["-d", "classes", "src/Hello.java"])
        .current_dir(dir));
    std::fs::write(dir.join("manifest.txt"), "Main-Class: Hello\n").expect("write");
    run(std::process::Command::new("jar")
        .args(["cfm", "hello.jar", "manifest.txt", "-C", "classes", "."])
        .current_dir(dir));
    std::fs::read(dir.join("hello.jar")).expect("read jar")
}

#[tokio::test]
async fn war_and_jar_need_their_stack_and_land_as_kudu_names_them() {
    let f = start_kinds(Duration::from_millis(20)).await;
    let war = zip(&[("WEB-INF/web.xml", "<web-app/>"), ("index.jsp", "hi")]);
    // Kudu's own refusals, before anything is written.
    assert_eq!(
        publish(&f, "contoso-jar", "war", war.clone()).await,
        (
            400,
            "WAR files cannot be deployed to stack='JAVA'. Expected stack='TOMCAT'".into()
        )
    );
    assert_eq!(
        publish(&f, "contoso-tomcat", "jar", war.clone()).await,
        (
            400,
            "JAR files cannot be deployed to stack='TOMCAT'. Expected stack='JAVA'".into()
        )
    );
    assert_eq!(
        publish(&f, APP, "jar", war.clone()).await,
        (
            400,
            "JAR files cannot be deployed to stack='PYTHON'. Expected stack='JAVA'".into()
        )
    );
    assert_eq!(
        publish(&f, "contoso-tomcat", "wart", war.clone()).await.0,
        400
    );
    // A WAR becomes app.war, byte for byte, beside what wwwroot held.
    let (status, _) = publish(&f, "contoso-tomcat", "zip", zip(&[("keep.txt", "k")])).await;
    assert_eq!(status, 200);
    let (status, body) = publish(&f, "contoso-tomcat", "war", war.clone()).await;
    assert_eq!(status, 200, "{body}");
    let listing = wwwroot(&f, "contoso-tomcat").await;
    assert_eq!(
        listing.split_whitespace().collect::<Vec<_>>(),
        ["app.war", "keep.txt"]
    );
    let output = in_wwwroot(&f, "contoso-tomcat", "sha256sum app.war").await;
    use sha2::Digest;
    let want: String = sha2::Sha256::digest(&war)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(output.starts_with(&want), "{output}");
}

#[tokio::test]
async fn a_jar_runs_with_java_dash_jar() {
    let f = start_kinds(Duration::from_millis(20)).await;
    let jar = build_jar(f.dir.path(), "hello from app.jar");
    let (status, body) = publish(&f, "contoso-jar", "jar", jar).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(wwwroot(&f, "contoso-jar").await.trim(), "app.jar");
    let (status, text) = f.get_text(&f.emu.app_url("contoso-jar", "staging")).await;
    assert_eq!((status, text.as_str()), (200, "hello from app.jar"));
}

#[tokio::test]
async fn a_windows_app_runs_its_web_config_handler_and_is_offline_while_kudu_deploys() {
    let f = start_kinds(Duration::from_millis(700)).await;
    let web_config = r#"<?xml version="1.0" encoding="utf-8"?>
<configuration><system.webServer><handlers><add name="iisnode" path="server.js" verb="*" modules="iisnode"/></handlers></system.webServer></configuration>
"#;
    let server = |text: &str| {
        format!(
            "require('http').createServer((q, r) => r.end('{text}')).listen(process.env.PORT, '127.0.0.1');\n"
        )
    };
    let v1 = zip(&[("web.config", web_config), ("server.js", &server("win v1"))]);
    let (status, body) = publish(&f, "contoso-win", "zip", v1).await;
    assert_eq!(status, 200, "{body}");
    let url = f.emu.app_url("contoso-win", "staging");
    assert_eq!(f.get_text(&url).await, (200, "win v1".into()));

    // While the next deployment runs, IIS answers with Kudu's app_offline.htm.
    let v2 = zip(&[("web.config", web_config), ("server.js", &server("win v2"))]);
    let deploy = {
        let (http, token) = (f.http.clone(), f.arm_token().await);
        let publish = format!(
            "{}/api/publish?type=zip&async=false",
            f.emu.scm_url("contoso-win", "staging")
        );
        tokio::spawn(async move {
            http.post(publish)
                .bearer_auth(token)
                .body(v2)
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, page) = f.get_text(&url).await;
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("being deployed"), "{page}");
    assert_eq!(deploy.await.expect("join").expect("send"), 200);
    assert_eq!(f.get_text(&url).await, (200, "win v2".into()));
    // Kudu removed its page, and web.config is as the package had it.
    let listing = wwwroot(&f, "contoso-win").await;
    assert!(!listing.contains("app_offline"), "{listing}");
    assert_eq!(
        in_wwwroot(&f, "contoso-win", "cat web.config").await,
        web_config
    );
}
