//! No app process outlives an emulator, even when the process holding it is killed with SIGKILL
//! (no destructor runs): the watchdog next to each app kills its process group.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test]
async fn apps_die_when_the_emulator_process_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port_file = dir.path().join("port");
    let mut child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["orphan_child", "--exact", "--test-threads=1"])
        .env("EMULATOR_ORPHAN_CHILD", &port_file)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("child starts");
    let mut port = None;
    for _ in 0..600 {
        if let Some(p) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok())
        {
            port = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let port = port.expect("the child reports its app port");
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
    let Ok(port_file) = std::env::var("EMULATOR_ORPHAN_CHILD") else {
        return;
    };
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
    let tmp = format!("{port_file}.tmp");
    std::fs::write(&tmp, port.to_string()).expect("write port");
    std::fs::rename(&tmp, &port_file).expect("publish port");
    tokio::time::sleep(Duration::from_secs(120)).await;
}
