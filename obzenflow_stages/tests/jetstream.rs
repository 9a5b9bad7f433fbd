//! Journals on real `nats-server` processes (feature `jetstream`; `cargo xtask nats` installs
//! the server): a single node and a 3-node cluster, started and stopped by each test.

use obzenflow_stages::jetstream::{LocalNats, LocalNatsConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_and_a_three_node_cluster_start_ready_and_stop() {
    let single = LocalNats::start(LocalNatsConfig::nodes(1)).await.unwrap();
    assert_eq!(single.urls().len(), 1);
    let client = async_nats::connect(single.url_list()).await.unwrap();
    let reply = client.request("$JS.API.INFO", "".into()).await.unwrap();
    let info: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(info["streams"], 0, "JetStream is enabled: {info}");

    let mut cluster = LocalNats::start(LocalNatsConfig::nodes(3)).await.unwrap();
    assert_eq!(cluster.urls().len(), 3);
    let dir = cluster.dir().to_path_buf();
    cluster.kill(0).await;
    assert_eq!(cluster.url_list().split(',').count(), 2);
    drop(cluster);
    assert!(!dir.exists(), "the cluster's directory is removed on drop");
}
