//! A small HTTP(S) client for disk images: probing a URL (the simulator
//! plays CDI's importer with it) and streaming an image to check its
//! SHA-256 (CDI has no checksum field, so the operator verifies templates
//! itself). Bodies are streamed, never held in memory.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url} is not a valid URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    #[error("request to {url} failed: {reason}")]
    Request { url: String, reason: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("reading {url} failed after {bytes} bytes: {reason}")]
    Body {
        url: String,
        bytes: u64,
        reason: String,
    },
    #[error("{url} did not finish within {seconds}s")]
    Timeout { url: String, seconds: u64 },
}

/// What a probe learned about a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub status: u16,
    pub content_length: Option<u64>,
}

/// The SHA-256 of a streamed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HttpClient {
    pub fn new() -> Result<Self, FetchError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| FetchError::Tls(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            inner: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    fn request(
        &self,
        method: http::Method,
        url: &str,
    ) -> Result<http::Request<Empty<Bytes>>, FetchError> {
        let uri: http::Uri =
            url.parse()
                .map_err(|e: http::uri::InvalidUri| FetchError::BadUrl {
                    url: url.into(),
                    reason: e.to_string(),
                })?;
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::USER_AGENT, "partnercloud")
            .body(Empty::new())
            .map_err(|e| FetchError::BadUrl {
                url: url.into(),
                reason: e.to_string(),
            })
    }

    /// A `HEAD` request: does the image exist, and how big is it?
    pub async fn probe(&self, url: &str, timeout: Duration) -> Result<Probe, FetchError> {
        let request = self.request(http::Method::HEAD, url)?;
        let response = tokio::time::timeout(timeout, self.inner.request(request))
            .await
            .map_err(|_| FetchError::Timeout {
                url: url.into(),
                seconds: timeout.as_secs(),
            })?
            .map_err(|e| FetchError::Request {
                url: url.into(),
                reason: e.to_string(),
            })?;
        let content_length = response
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(Probe {
            status: response.status().as_u16(),
            content_length,
        })
    }

    /// Streams the body of a `GET` through SHA-256. `progress` is called
    /// with the bytes read so far and the announced length.
    pub async fn sha256(
        &self,
        url: &str,
        timeout: Duration,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> Result<Digested, FetchError> {
        let work = async {
            let request = self.request(http::Method::GET, url)?;
            let response = self
                .inner
                .request(request)
                .await
                .map_err(|e| FetchError::Request {
                    url: url.into(),
                    reason: e.to_string(),
                })?;
            if !response.status().is_success() {
                return Err(FetchError::Status {
                    url: url.into(),
                    status: response.status().as_u16(),
                });
            }
            let total = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok());
            let mut body = response.into_body();
            let mut hasher = Sha256::new();
            let mut bytes = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| FetchError::Body {
                    url: url.into(),
                    bytes,
                    reason: e.to_string(),
                })?;
                if let Ok(data) = frame.into_data() {
                    hasher.update(&data);
                    bytes += data.len() as u64;
                    progress(bytes, total);
                }
            }
            let sha256 = hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            Ok(Digested { sha256, bytes })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| FetchError::Timeout {
                url: url.into(),
                seconds: timeout.as_secs(),
            })?
    }
}
