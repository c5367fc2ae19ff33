//! A loopback HTTP proxy between the in-process operator and the real API
//! server that can make watches on one resource expire, the way the API
//! server does once etcd has compacted the revision a watch resumes from.
//!
//! Everything passes through unchanged until [`ExpiryProxy::expire_through`]
//! is called with a resourceVersion `rv`. From then on, for the chosen
//! resource:
//! - every open watch stream gets a `410 Gone` ERROR event and ends;
//! - every new watch that resumes from a resourceVersion at or below `rv`
//!   is answered with the same event at once — forever, so a client that
//!   retried the old resourceVersion instead of relisting would stay deaf.
//!
//! Only a relist (which returns a newer resourceVersion) gets a watcher
//! going again, which is what the test wants to prove the operator does.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kube::Client;
use tokio::net::TcpListener;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// What the proxy has done since it was armed, for the test to wait on.
#[derive(Debug, Default)]
pub struct Counters {
    /// Watches answered or cut with 410 Gone.
    pub expired: AtomicU32,
    /// Lists of the resource (not watches) seen after arming.
    pub relists: AtomicU32,
}

struct Shared {
    upstream: Client,
    /// The path segment that names the resource, e.g. `/virtualservers`.
    resource: String,
    /// Watches resuming at or below this resourceVersion expire; 0: none.
    expired_through: AtomicU64,
    /// Bumped on each arming, so open watch streams end.
    cut: tokio::sync::watch::Sender<u64>,
    counters: Counters,
}

/// A running proxy; dropping it leaves the serving task to end with its runtime.
#[derive(Clone)]
pub struct ExpiryProxy {
    shared: Arc<Shared>,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl ExpiryProxy {
    /// Serves on a free loopback port, forwarding with `upstream`'s
    /// credentials. `resource` is the plural whose watches may expire.
    pub async fn start(upstream: Client, resource: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let (cut, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            upstream,
            resource: format!("/{resource}"),
            expired_through: AtomicU64::new(0),
            cut,
            counters: Counters::default(),
        });
        let serving = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(shared.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { shared, url }
    }

    /// A client that talks to the API server through this proxy.
    pub fn client(&self) -> Client {
        let config = kube::Config::new(self.url.parse().expect("proxy url"));
        Client::try_from(config).expect("proxy client")
    }

    /// From now on, watches resuming at or below `resource_version` expire,
    /// and every open watch on the resource is cut with 410 Gone.
    pub fn expire_through(&self, resource_version: u64) {
        self.shared
            .expired_through
            .store(resource_version, Ordering::SeqCst);
        self.shared.cut.send_modify(|generation| *generation += 1);
    }

    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}

/// The event the API server sends when a watch's resourceVersion is gone.
fn gone_event(resource_version: u64) -> Bytes {
    let event = serde_json::json!({
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": format!("too old resource version: {resource_version}"),
            "reason": "Expired",
            "code": 410
        }
    });
    Bytes::from(format!("{event}\n"))
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

async fn handle(
    shared: Arc<Shared>,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<ProxyBody>, Infallible> {
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let ours = path.ends_with(&shared.resource);
    let watch = matches!(query_param(&query, "watch"), Some("true" | "1"));
    let armed = shared.expired_through.load(Ordering::SeqCst);
    if ours && armed > 0 && !watch && request.method() == hyper::Method::GET {
        shared.counters.relists.fetch_add(1, Ordering::SeqCst);
    }
    if ours && watch && armed > 0 {
        let from: u64 = query_param(&query, "resourceVersion")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if from != 0 && from <= armed {
            shared.counters.expired.fetch_add(1, Ordering::SeqCst);
            return Ok(json_response(
                Full::new(gone_event(from))
                    .map_err(|e| match e {})
                    .boxed_unsync(),
            ));
        }
    }

    let (parts, body) = request.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return Ok(bad_gateway(format!("reading the request: {e}"))),
    };
    let mut forward = http::Request::builder().method(parts.method).uri(
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
    );
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            forward = forward.header(name, value);
        }
    }
    let forward = match forward.body(kube::client::Body::from(bytes.to_vec())) {
        Ok(request) => request,
        Err(e) => return Ok(bad_gateway(format!("building the request: {e}"))),
    };
    let response = match shared.upstream.send(forward).await {
        Ok(response) => response,
        Err(e) => return Ok(bad_gateway(format!("upstream: {e}"))),
    };
    let (mut parts, body) = response.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    parts.headers = headers
        .iter()
        .filter(|(name, _)| !hop_by_hop(name))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let body: ProxyBody = if ours && watch {
        cuttable(&shared, body)
    } else {
        BodyExt::boxed_unsync(body.map_err(|e| Box::new(e) as BoxError))
    };
    Ok(hyper::Response::from_parts(parts, body))
}

/// A watch body that ends with a 410 event when the proxy is (re)armed, or
/// when the upstream watch ends by itself.
fn cuttable(shared: &Arc<Shared>, body: kube::client::Body) -> ProxyBody {
    let mut cut = shared.cut.subscribe();
    cut.mark_unchanged();
    let upstream = body
        .into_data_stream()
        .map(|chunk| chunk.map(Frame::data).map_err(|e| Box::new(e) as BoxError))
        .boxed();
    let state = Some((upstream, cut, shared.clone()));
    let stream = futures::stream::unfold(state, |state| async move {
        let (mut upstream, mut cut, shared) = state?;
        tokio::select! {
            chunk = upstream.next() => chunk.map(|chunk| (chunk, Some((upstream, cut, shared)))),
            Ok(()) = cut.changed() => {
                shared.counters.expired.fetch_add(1, Ordering::SeqCst);
                let through = shared.expired_through.load(Ordering::SeqCst);
                Some((Ok(Frame::data(gone_event(through))), None))
            }
        }
    });
    BodyExt::boxed_unsync(StreamBody::new(stream))
}

fn json_response(body: ProxyBody) -> hyper::Response<ProxyBody> {
    let mut response = hyper::Response::new(body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn bad_gateway(message: String) -> hyper::Response<ProxyBody> {
    let mut response = hyper::Response::new(
        Full::new(Bytes::from(message))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *response.status_mut() = http::StatusCode::BAD_GATEWAY;
    response
}

fn hop_by_hop(name: &http::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "connection" | "content-length" | "transfer-encoding" | "keep-alive" | "upgrade"
    )
}
