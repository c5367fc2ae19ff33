//! A tiny HTTP server for disk images on loopback, used by the `dev` job
//! and the tests: it serves deterministic bytes for every path under
//! `/images/` (the same path always yields the same bytes, so examples can
//! carry real SHA-256 digests) and 404 for anything else. HEAD and GET only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Size of every served image: small enough for tests, big enough to stream.
pub const IMAGE_BYTES: u64 = 1 << 20;

/// The bytes served for `path`: SHA-256 in counter mode over the path.
pub fn image_bytes(path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(IMAGE_BYTES as usize);
    let mut block = 0u64;
    while (out.len() as u64) < IMAGE_BYTES {
        out.extend_from_slice(&Sha256::digest(format!("{path}#{block}").as_bytes()));
        block += 1;
    }
    out.truncate(IMAGE_BYTES as usize);
    out
}

/// The SHA-256 (hex) of what is served for `path`.
pub fn image_sha256(path: &str) -> String {
    Sha256::digest(image_bytes(path))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A running image server. Dropping it stops serving.
pub struct ImageServer {
    pub addr: SocketAddr,
    requests: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl ImageServer {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let _ = serve(stream).await;
                });
            }
        });
        Ok(Self {
            addr,
            requests,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests served so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for ImageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(stream: tokio::net::TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    if !path.starts_with("/images/") {
        write
            .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await?;
        return write.shutdown().await;
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {IMAGE_BYTES}\r\nconnection: close\r\n\r\n"
    );
    write.write_all(head.as_bytes()).await?;
    if method == "GET" {
        write.write_all(&image_bytes(&path)).await?;
    }
    write.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_fetch::HttpClient;
    use std::time::Duration;

    #[tokio::test]
    async fn serves_deterministic_images_and_404s() {
        let server = ImageServer::start().await.unwrap();
        let client = HttpClient::new().unwrap();
        let url = format!("{}/images/a.qcow2", server.base_url());
        let probe = client.probe(&url, Duration::from_secs(5)).await.unwrap();
        assert_eq!(probe.status, 200);
        assert_eq!(probe.content_length, Some(IMAGE_BYTES));
        let digest = client
            .sha256(&url, Duration::from_secs(5), |_, _| {})
            .await
            .unwrap();
        assert_eq!(digest.bytes, IMAGE_BYTES);
        assert_eq!(digest.sha256, image_sha256("/images/a.qcow2"));
        assert_ne!(digest.sha256, image_sha256("/images/b.qcow2"));
        let missing = client
            .probe(
                &format!("{}/nothing", server.base_url()),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(missing.status, 404);
    }
}
