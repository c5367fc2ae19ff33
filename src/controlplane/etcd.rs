//! etcd: the API server's storage.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Error;
use super::ports::{LOOPBACK, Ports, loopback_url};
use super::process::{Launch, Process};
use super::readiness::wait_ready;

pub(crate) const NAME: &str = "etcd";
/// Member name; only used inside etcd's own cluster configuration.
const MEMBER: &str = "partnercloud-test";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start etcd with its data in `data_dir`, serving clients on `ports.etcd_client`.
pub(crate) fn launch(assets: &Path, data_dir: &Path, log: &Path, ports: &Ports) -> Launch {
    Launch {
        name: NAME,
        program: assets.join(NAME),
        args: args(data_dir, ports),
        log: log.to_owned(),
    }
}

/// The client URL the API server talks to.
pub(crate) fn client_url(ports: &Ports) -> String {
    loopback_url("http", ports.etcd_client)
}

fn args(data_dir: &Path, ports: &Ports) -> Vec<String> {
    let client = client_url(ports);
    let peer = loopback_url("http", ports.etcd_peer);
    vec![
        format!("--name={MEMBER}"),
        format!("--data-dir={}", data_dir.display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster={MEMBER}={peer}"),
        // Test data need not survive a power cut; fsync dominates write latency otherwise.
        "--unsafe-no-fsync".to_owned(),
        "--log-level=warn".to_owned(),
    ]
}

/// Waits until etcd reports itself healthy on its client port.
pub(crate) async fn wait(process: &mut Process, ports: &Ports) -> Result<Duration, Error> {
    let port = ports.etcd_client;
    wait_ready(process, READY_TIMEOUT, || health(port)).await
}

/// `GET /health` over plain HTTP/1.1; etcd closes the connection after answering.
async fn health(port: u16) -> Result<(), String> {
    let mut stream = TcpStream::connect((LOOPBACK, port))
        .await
        .map_err(|err| format!("connecting: {err}"))?;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|err| format!("sending: {err}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|err| format!("reading: {err}"))?;
    let response = String::from_utf8_lossy(&response);
    if is_healthy(&response) {
        Ok(())
    } else {
        Err(format!(
            "unhealthy: {}",
            response.lines().last().unwrap_or("")
        ))
    }
}

/// Whether an HTTP response to `/health` says etcd is healthy.
fn is_healthy(response: &str) -> bool {
    response.starts_with("HTTP/1.1 200") && response.contains(r#""health":"true""#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_and_advertises_on_loopback_only() {
        let args = args(Path::new("/tmp/etcd"), &Ports::fixture());
        for expected in [
            "--data-dir=/tmp/etcd",
            "--listen-client-urls=http://127.0.0.1:1",
            "--advertise-client-urls=http://127.0.0.1:1",
            "--listen-peer-urls=http://127.0.0.1:2",
            "--initial-advertise-peer-urls=http://127.0.0.1:2",
            "--initial-cluster=partnercloud-test=http://127.0.0.1:2",
            "--unsafe-no-fsync",
        ] {
            assert!(args.iter().any(|arg| arg == expected), "missing {expected}");
        }
    }

    #[test]
    fn health_response_is_judged_by_status_and_body() {
        let healthy = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n{\"health\":\"true\",\"reason\":\"\"}";
        let unhealthy = "HTTP/1.1 503 Service Unavailable\r\n\r\n{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}";
        assert!(is_healthy(healthy));
        assert!(!is_healthy(unhealthy));
        assert!(!is_healthy(""));
    }
}
