//! No app process outlives an emulator, even when the process holding it is killed with SIGKILL
//! (no destructor runs): the watchdog next to each app kills its process group.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncBufReadExt;

#[tokio::test]
async fn apps_die_when_the_emulator_process_is_killed() {
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["orphan_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("EMULATOR_ORPHAN_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("child starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let port = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if let Some(p) = line.strip_prefix("APP-PORT=") {
                return p.parse::<u16>().expect("port");
            }
        }
        panic!("the child ended without reporting a port");
    })
    .await
    .expect("child reports its app port");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    child.kill().await.expect("SIGKILL the emulator process");
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the app on port {port} outlived its killed emulator");
}

/// Runs only as the child of the test above (it returns at once otherwise).
#[tokio::test]
async fn orphan_child() {
    if std::env::var("EMULATOR_ORPHAN_CHILD").is_err() {
        return;
    }
    let f = start().await;
    eventually_body(&f, &f.emu.app_url(APP, "production"), "v1").await;
    let port = f
        .emu
        .snapshot()
        .slot(APP, "production")
        .and_then(|s| match s.running {
            slot_release_emulator::RunState::Running { port } => Some(port),
            _ => None,
        })
        .expect("running");
    println!("APP-PORT={port}");
    tokio::time::sleep(Duration::from_secs(120)).await;
}
