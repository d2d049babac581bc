//! A loopback HTTP `CONNECT` proxy in front of the emulator, so any client reaches every
//! `*.emulator.test` host with its ordinary proxy setting (`HTTPS_PROXY`, Azure Pipelines'
//! `AGENT_PROXYURL`) instead of DNS entries or a patched resolver. It tunnels only to the emulator:
//! a `CONNECT` to any other host is refused, so nothing a client sends through it leaves the machine.
//! TLS stays end to end between the client and the emulator (the proxy sees only the host name).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::DOMAIN;

/// Longest request head a client may send before the tunnel opens.
const MAX_HEAD: usize = 8 * 1024;

/// Binds the proxy on 127.0.0.1 (any free port) and serves it in a task; returns its port and the
/// task, which the emulator aborts when it stops.
pub(crate) async fn start(
    emulator_port: u16,
) -> std::io::Result<(u16, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                if let Err(e) = tunnel(client, emulator_port).await {
                    tracing::debug!(error = %e, "proxy connection ended");
                }
            });
        }
    });
    Ok((port, task))
}

/// Whether `authority` (`host[:port]`) names an emulator host.
fn is_emulator_host(authority: &str) -> bool {
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == DOMAIN || host.ends_with(&format!(".{DOMAIN}"))
}

async fn refuse(mut client: TcpStream, status: &str, why: &str) -> std::io::Result<()> {
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{why}",
        why.len()
    );
    client.write_all(answer.as_bytes()).await?;
    client.shutdown().await
}

async fn tunnel(mut client: TcpStream, emulator_port: u16) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let end = loop {
        let n = client.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if head.len() > MAX_HEAD {
            return refuse(client, "431 Request Header Fields Too Large", "").await;
        }
    };
    let line = String::from_utf8_lossy(&head[..head.iter().position(|b| *b == b'\r').unwrap_or(0)])
        .into_owned();
    let mut parts = line.split_whitespace();
    let (method, authority) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !method.eq_ignore_ascii_case("CONNECT") {
        return refuse(
            client,
            "405 Method Not Allowed",
            "The emulator's proxy only tunnels HTTPS (CONNECT).",
        )
        .await;
    }
    if !is_emulator_host(authority) {
        let why = format!(
            "The emulator's proxy only reaches *.{DOMAIN}; '{authority}' is not an emulator host."
        );
        return refuse(client, "403 Forbidden", &why).await;
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", emulator_port)).await?;
    client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    // Bytes the client sent after the head (the start of its TLS handshake) go on first.
    if head.len() > end {
        upstream.write_all(&head[end..]).await?;
    }
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_emulator_host;

    #[test]
    fn only_emulator_hosts_are_tunnelled() {
        assert!(is_emulator_host("management.emulator.test:8443"));
        assert!(is_emulator_host("contoso-kv.vault.EMULATOR.test:443"));
        assert!(is_emulator_host("emulator.test"));
        assert!(!is_emulator_host("login.microsoftonline.com:443"));
        assert!(!is_emulator_host("emulator.test.evil.com:443"));
        assert!(!is_emulator_host("notemulator.test:443"));
    }
}
