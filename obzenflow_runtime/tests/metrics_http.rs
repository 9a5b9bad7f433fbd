//! The Prometheus endpoint (cargo feature `prometheus-http`), scraped over a real socket on
//! 127.0.0.1 with an ephemeral port, during a run and after it.
//!
//! `cargo xtask ci` runs it with
//! `cargo test -p obzenflow_runtime --features prometheus-http --test metrics_http`.
#![cfg(feature = "prometheus-http")]

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use obzenflow_core::ChainEvent;
use obzenflow_runtime::metrics::{
    MetricsConfig, PrometheusHttpConfig, PrometheusServer, CONTENT_TYPE,
};
use obzenflow_runtime::pipeline::{FlowBuilder, FlowState, Journals};
use obzenflow_runtime::stages::{AsyncSourceHandler, HandlerFailure, SourcePoll};
use serde_json::json;
use support::Collect;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// A generous bound on one scrape; only there so a regression fails instead of hanging.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Emits ten records, then holds the flow open until released.
struct HeldOpen {
    emitted: bool,
    release: watch::Receiver<bool>,
}

impl AsyncSourceHandler for HeldOpen {
    // Cancel safe: nothing is taken before the wait completes.
    async fn next_batch(&mut self, _max: usize) -> Result<SourcePoll, HandlerFailure> {
        if !self.emitted {
            self.emitted = true;
            let records = (0..10)
                .map(|n| ChainEvent::data("n", json!({"n": n, "from": "held"})))
                .collect();
            return Ok(SourcePoll::Records(records));
        }
        let _ = self.release.wait_for(|released| *released).await;
        Ok(SourcePoll::Done)
    }
}

/// A response: status code, headers (lowercased names) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends `request` over a fresh connection and reads the response to the end.
async fn exchange(addr: SocketAddr, request: &str) -> Response {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(HANG_GUARD, exchange).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.split(' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts.next().unwrap().parse().unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("name: value");
            (name.to_ascii_lowercase(), value.to_owned())
        })
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn scrape(addr: SocketAddr) -> String {
    let response = exchange(addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some(CONTENT_TYPE));
    let length: usize = response.header("content-length").unwrap().parse().unwrap();
    assert_eq!(length, response.body.len());
    response.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_serves_the_exposition_during_and_after_the_run() {
    let (release, released) = watch::channel(false);
    let handle = FlowBuilder::new("http")
        .async_source(
            "held",
            HeldOpen {
                emitted: false,
                release: released,
            },
        )
        .sink("collect", Collect::default())
        .chain(["held", "collect"])
        .journals(Journals::memory())
        .metrics(MetricsConfig::default().with_interval(Duration::from_millis(5)))
        .build()
        .unwrap()
        .start()
        .unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = handle
        .serve_prometheus(PrometheusHttpConfig::new(addr))
        .await
        .unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0);

    // During the run: wait until a fold has seen the ten records, then scrape.
    let mut snapshots = handle.snapshots();
    snapshots
        .wait_for(|snapshot| {
            snapshot
                .stage("collect")
                .is_some_and(|s| s.records_out == 10)
        })
        .await
        .unwrap();
    let during = scrape(addr).await;
    let delivered =
        "obzenflow_stage_records_out_total{flow=\"http\",stage=\"collect\",stage_kind=\"sink\"} 10";
    assert!(during.contains(delivered), "{during}");
    assert!(
        during.contains("obzenflow_flow_final{flow=\"http\"} 0"),
        "{during}"
    );
    assert!(
        during.contains("stage=\"collect\",stage_kind=\"sink\",state=\"running\"} 1"),
        "{during}"
    );

    // After the run: the final numbers, served by the same endpoint.
    release.send_replace(true);
    let final_snapshot = handle.final_snapshot().await;
    assert!(final_snapshot.is_final);
    assert_eq!(*handle.state().borrow(), FlowState::Drained);
    let after = scrape(addr).await;
    assert!(
        after.contains("obzenflow_flow_final{flow=\"http\"} 1"),
        "{after}"
    );
    assert!(after.contains(delivered), "{after}");
    assert!(
        after.contains("stage=\"collect\",stage_kind=\"sink\",state=\"drained\"} 1"),
        "{after}"
    );
    assert_eq!(after, final_snapshot.to_prometheus());
    let report = handle.wait().await.unwrap();
    assert_eq!(report.state, FlowState::Drained, "{report}");
    server.shutdown();
}

#[tokio::test]
async fn only_get_and_head_of_metrics_are_served() {
    let config = PrometheusHttpConfig::new("127.0.0.1:0".parse().unwrap());
    let server = PrometheusServer::bind(config, || "up 1\n".to_owned())
        .await
        .unwrap();
    let addr = server.local_addr();
    let missing = exchange(addr, "GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(missing.status, 404);
    let posted = exchange(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").await;
    assert_eq!(posted.status, 405);
    assert_eq!(posted.header("allow"), Some("GET, HEAD"));
    let head = exchange(addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("5"));
    assert!(head.body.is_empty());
    let garbage = exchange(addr, "hello\r\n\r\n").await;
    assert_eq!(garbage.status, 400);
    assert_eq!(scrape(addr).await, "up 1\n");
}
