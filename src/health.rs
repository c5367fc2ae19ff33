//! Liveness and readiness over plain HTTP for the kubelet's probes:
//! `/healthz` answers while the process serves; `/readyz` answers 200 only
//! while the controllers run, 503 once any of them has stopped (the
//! process then exits, but a probe must never see it ready and deaf).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Whether the controllers are running.
#[derive(Debug, Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The answer to one request line.
pub fn respond(request_line: &str, ready: bool) -> (u16, &'static str) {
    let path = request_line.split_whitespace().nth(1).unwrap_or("");
    match path {
        "/healthz" | "/livez" => (200, "ok"),
        "/readyz" if ready => (200, "ok"),
        "/readyz" => (503, "controllers stopped"),
        _ => (404, "not found"),
    }
}

/// Serves the probes on `addr` until the task is dropped.
pub async fn serve(addr: SocketAddr, readiness: Arc<Readiness>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        let readiness = readiness.clone();
        tokio::spawn(async move {
            let mut buffer = [0u8; 1024];
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buffer[..n]);
            let (code, body) = respond(request.lines().next().unwrap_or(""), readiness.get());
            let reason = match code {
                200 => "OK",
                503 => "Service Unavailable",
                _ => "Not Found",
            };
            let response = format!(
                "HTTP/1.1 {code} {reason}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_fetch::HttpClient;
    use std::time::Duration;

    #[test]
    fn readiness_follows_the_controllers() {
        assert_eq!(respond("GET /healthz HTTP/1.1", false).0, 200);
        assert_eq!(respond("GET /readyz HTTP/1.1", true).0, 200);
        assert_eq!(respond("GET /readyz HTTP/1.1", false).0, 503);
        assert_eq!(respond("GET /other HTTP/1.1", true).0, 404);
    }

    #[tokio::test]
    async fn probes_answer_over_http() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let readiness = Arc::new(Readiness::default());
        let server = tokio::spawn(serve(addr, readiness.clone()));
        let client = HttpClient::new().unwrap();
        let url = format!("http://{addr}/readyz");
        let mut status = 0;
        for _ in 0..50 {
            if let Ok(p) = client.probe(&url, Duration::from_secs(2)).await {
                status = p.status;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(status, 503, "not ready before the controllers run");
        readiness.set(true);
        assert_eq!(
            client
                .probe(&url, Duration::from_secs(2))
                .await
                .unwrap()
                .status,
            200
        );
        readiness.set(false);
        assert_eq!(
            client
                .probe(&url, Duration::from_secs(2))
                .await
                .unwrap()
                .status,
            503
        );
        server.abort();
    }
}
