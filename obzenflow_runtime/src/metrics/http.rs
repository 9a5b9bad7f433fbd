//! A tiny HTTP/1.1 responder that serves a flow's Prometheus exposition (cargo feature
//! `prometheus-http`).
//!
//! It answers `GET /metrics` (and `HEAD`) with the exposition, anything else with 404 or 405,
//! one connection at a time, and closes every connection after its response: a scraper asks
//! once every few seconds, so there is nothing to gain from keep-alive or concurrency, and a
//! sequential loop has no tasks to leak. A client that does not send its request within
//! [`PrometheusHttpConfig::request_timeout`] is dropped. There is no TLS and no
//! authentication: bind it to a loopback address (the default) or put a proxy in front.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::prometheus::CONTENT_TYPE;

/// Where and how the responder listens.
///
/// ```
/// use obzenflow_runtime::metrics::PrometheusHttpConfig;
///
/// let config = PrometheusHttpConfig::default();
/// assert!(config.addr.ip().is_loopback());
/// let ephemeral = PrometheusHttpConfig::new("127.0.0.1:0".parse().unwrap());
/// assert_eq!(ephemeral.addr.port(), 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PrometheusHttpConfig {
    /// The address to listen on; port 0 picks a free port (see
    /// [`PrometheusServer::local_addr`]).
    pub addr: SocketAddr,
    /// How long a client may take to send its request.
    pub request_timeout: Duration,
    /// The largest request head accepted; larger ones get `431`.
    pub max_request_bytes: usize,
}

impl PrometheusHttpConfig {
    /// The default address: loopback, on the port the OpenTelemetry Prometheus exporter uses.
    pub const DEFAULT_ADDR: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464));
    /// The default request timeout; a scraper sends its request at once.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
    /// The default request size limit; a scrape request is a few hundred bytes.
    pub const DEFAULT_MAX_REQUEST_BYTES: usize = 8 * 1024;

    /// The defaults, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            ..Self::default()
        }
    }
}

impl Default for PrometheusHttpConfig {
    fn default() -> Self {
        Self {
            addr: Self::DEFAULT_ADDR,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            max_request_bytes: Self::DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

/// How much of a request is read per call; a whole scrape request fits.
const READ_CHUNK_BYTES: usize = 1024;

/// The exposition to serve, rendered anew for each request.
type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A running responder. Dropping it (or [`shutdown`](PrometheusServer::shutdown)) stops it.
///
/// ```no_run
/// use obzenflow_runtime::metrics::{PrometheusHttpConfig, PrometheusServer};
///
/// # async fn serve() -> std::io::Result<()> {
/// let server = PrometheusServer::bind(PrometheusHttpConfig::default(), || {
///     "# HELP up Whether the process is up.\n# TYPE up gauge\nup 1\n".to_owned()
/// })
/// .await?;
/// println!("scrape http://{}/metrics", server.local_addr());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct PrometheusServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl PrometheusServer {
    /// Listens on `config.addr` and serves whatever `render` returns at `/metrics`, on the
    /// current tokio runtime, until dropped.
    ///
    /// Cancel safety: cancel safe; a cancelled call has bound nothing (the listener is
    /// dropped with the future).
    pub async fn bind(
        config: PrometheusHttpConfig,
        render: impl Fn() -> String + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(config.addr).await?;
        let local_addr = listener.local_addr()?;
        tracing::info!(%local_addr, "prometheus endpoint listening");
        let task = tokio::spawn(accept_loop(listener, Arc::new(render), config));
        Ok(Self { local_addr, task })
    }

    /// The address it listens on, with the port picked when `addr` asked for port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops listening; a response being written is cut off.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves connections one after the other until aborted.
async fn accept_loop(listener: TcpListener, render: Render, config: PrometheusHttpConfig) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Per-connection failures (a client that reset before being accepted); the
                // listener itself stays usable.
                tracing::warn!(
                    error = &error as &(dyn std::error::Error + 'static),
                    "prometheus endpoint cannot accept"
                );
                continue;
            }
        };
        let served = tokio::time::timeout(
            config.request_timeout,
            respond(stream, &render, config.max_request_bytes),
        )
        .await;
        match served {
            Ok(Ok(())) => tracing::trace!(%peer, "prometheus scrape served"),
            Ok(Err(error)) => {
                tracing::debug!(%peer, error = &error as &(dyn std::error::Error + 'static), "prometheus scrape failed")
            }
            Err(_elapsed) => tracing::debug!(%peer, "prometheus scrape timed out"),
        }
    }
}

/// What to answer a request head with.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    Metrics { with_body: bool },
    NotFound,
    MethodNotAllowed,
    BadRequest,
    TooLarge,
}

/// Reads one request head and writes the answer.
async fn respond(mut stream: TcpStream, render: &Render, max_bytes: usize) -> io::Result<()> {
    let answer = match read_head(&mut stream, max_bytes).await? {
        Some(head) => route(&head),
        None => Answer::TooLarge,
    };
    let (status, body) = match answer {
        Answer::Metrics { with_body } => {
            let body = render();
            let length = body.len();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: \
                 {length}\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            if with_body {
                stream.write_all(body.as_bytes()).await?;
            }
            return stream.shutdown().await;
        }
        Answer::NotFound => ("404 Not Found", "not found: try /metrics\n"),
        Answer::MethodNotAllowed => ("405 Method Not Allowed", "only GET and HEAD\n"),
        Answer::BadRequest => ("400 Bad Request", "bad request\n"),
        Answer::TooLarge => ("431 Request Header Fields Too Large", "request too large\n"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \
         {}\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads until the blank line that ends a request head; `None` if it exceeds `max_bytes`.
async fn read_head(stream: &mut TcpStream, max_bytes: usize) -> io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut chunk = [0_u8; READ_CHUNK_BYTES];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..read]);
        if let Some(end) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            head.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&head).into_owned()));
        }
        if head.len() > max_bytes {
            return Ok(None);
        }
    }
}

/// Picks the answer from the request line.
fn route(head: &str) -> Answer {
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Answer::BadRequest;
    };
    if !version.starts_with("HTTP/1.") {
        return Answer::BadRequest;
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Answer::Metrics { with_body: true },
        ("HEAD", "/metrics") => Answer::Metrics { with_body: false },
        ("GET" | "HEAD", _) => Answer::NotFound,
        _ => Answer::MethodNotAllowed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_the_request_line() {
        let metrics = Answer::Metrics { with_body: true };
        assert_eq!(route("GET /metrics HTTP/1.1\r\nHost: x"), metrics);
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0"), metrics);
        assert_eq!(
            route("HEAD /metrics HTTP/1.1"),
            Answer::Metrics { with_body: false }
        );
        assert_eq!(route("GET / HTTP/1.1"), Answer::NotFound);
        assert_eq!(route("POST /metrics HTTP/1.1"), Answer::MethodNotAllowed);
        assert_eq!(route("GET /metrics"), Answer::BadRequest);
        assert_eq!(route("GET /metrics SPDY/3"), Answer::BadRequest);
        assert_eq!(route(""), Answer::BadRequest);
    }
}
