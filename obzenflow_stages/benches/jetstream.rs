//! The JetStream journal benchmark (`cargo xtask bench --jetstream`): the same depth-3 flow
//! (source, three maps, sink) of small JSON records on local disk journals, on one JetStream
//! node (R1) and on a local 3-node cluster (R3), in one invocation, each the median of its
//! rounds. Prints a table with each against disk and the targets (single node at least 50%
//! of disk, 3-node at least 25%), and writes `target/bench/jetstream.json`.
//!
//! Arguments: `[--records N] [--rounds N]` (default 200,000 records, 3 rounds).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use obzenflow_core::ChainEvent;
use obzenflow_runtime::pipeline::{FlowBuilder, Journals};
use obzenflow_stages::jetstream::{JetStreamConfig, JetStreamJournals, LocalNats, LocalNatsConfig};
use obzenflow_stages::sinks::NullSink;
use obzenflow_stages::sources::IterSource;
use obzenflow_stages::transforms::map;
use serde_json::json;

/// The flow measured: a source of `records` small records, three maps, a sink.
fn depth3(records: u64, journals: Journals) -> FlowBuilder {
    let events = (0..records).map(|n| ChainEvent::data("number", json!({ "n": n, "k": n % 7 })));
    let step = |field: &'static str| {
        map(move |mut event: ChainEvent| {
            if let Some(payload) = event.payload_mut() {
                let n = payload["n"].as_u64().unwrap_or_default();
                payload[field] = (n + 1).into();
            }
            event
        })
    };
    FlowBuilder::new("jetstream_depth3")
        .source("numbers", IterSource::new(events))
        .transform("a", step("a"))
        .transform("b", step("b"))
        .transform("c", step("c"))
        .sink("out", NullSink::new())
        .chain(["numbers", "a", "b", "c", "out"])
        .journals(journals)
}

/// Runs the flow once; returns its wall time.
async fn once(records: u64, journals: Journals) -> Duration {
    let started = Instant::now();
    let report = depth3(records, journals)
        .build()
        .expect("the flow builds")
        .run()
        .await
        .expect("the flow runs");
    assert!(report.is_success(), "{report}");
    started.elapsed()
}

/// The median of `rounds` runs, in records per second.
async fn median(records: u64, rounds: usize, mut journals: impl FnMut() -> Journals) -> f64 {
    let mut rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let elapsed = once(records, journals()).await;
        rates.push(records as f64 / elapsed.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn argument(name: &str, default: u64) -> u64 {
    let arguments: Vec<String> = std::env::args().collect();
    arguments
        .iter()
        .position(|argument| argument == name)
        .and_then(|at| arguments.get(at + 1))
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let records = argument("--records", 200_000);
    let rounds = argument("--rounds", 3).max(1) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let output = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
        let disk_base = output.join("jetstream-disk");
        let disk = median(records, rounds, || Journals::disk(&disk_base)).await;

        let single = LocalNats::start(LocalNatsConfig::nodes(1)).await.expect("nats-server starts (cargo xtask nats installs it)");
        let single_journals = JetStreamJournals::connect(JetStreamConfig::new(single.url_list())).await.expect("JetStream connects");
        let r1 = median(records, rounds, || single_journals.journals()).await;
        drop(single);

        let cluster = LocalNats::start(LocalNatsConfig::nodes(3)).await.expect("a 3-node cluster starts");
        let config = JetStreamConfig::new(cluster.url_list()).with_replicas(3);
        let cluster_journals = JetStreamJournals::connect(config).await.expect("JetStream connects");
        let r3 = median(records, rounds, || cluster_journals.journals()).await;
        drop(cluster);

        println!("depth-3 flow, {records} records, median of {rounds} rounds");
        println!("{:<28} {:>14} {:>10}", "journals", "records/s", "vs disk");
        for (name, rate) in [("local disk (group commit)", disk), ("JetStream, 1 node (R1)", r1), ("JetStream, 3 nodes (R3)", r3)] {
            println!("{name:<28} {rate:>14.0} {:>9.1}%", 100.0 * rate / disk);
        }
        let single_met = r1 >= 0.5 * disk;
        let cluster_met = r3 >= 0.25 * disk;
        println!("target: 1 node at least 50% of disk: {}", if single_met { "met" } else { "MISSED" });
        println!("target: 3 nodes at least 25% of disk: {}", if cluster_met { "met" } else { "MISSED" });
        let results = json!({
            "records": records,
            "rounds": rounds,
            "records_per_second": { "disk": disk, "jetstream_r1": r1, "jetstream_r3": r3 },
            "targets": { "r1_at_least_half_of_disk": single_met, "r3_at_least_quarter_of_disk": cluster_met },
        });
        std::fs::create_dir_all(&output).expect("target/bench can be made");
        std::fs::write(output.join("jetstream.json"), results.to_string()).expect("the results can be written");
    });
}
