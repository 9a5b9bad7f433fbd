//! [`LocalNats`]: `nats-server` processes with JetStream on loopback ports, in a temporary
//! directory, for tests, examples and benchmarks: one node, or a cluster of several.
//!
//! Readiness is read off the servers' own log lines as they are written (every node's
//! `Server is ready`, and for a cluster a node naming the JetStream metadata leader), never
//! guessed with a sleep; a start that has not become ready by [`LocalNatsConfig::ready_within`]
//! fails with the log's tail. Dropping a [`LocalNats`] kills its servers and removes their
//! directory.

use std::collections::VecDeque;
use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::watch;

/// Where the `nats-server` binary is looked for when [`LocalNatsConfig::binary`] is not set
/// and the `OBZENFLOW_NATS_SERVER` variable is not either: the `PATH`, then Debian's
/// `/usr/sbin`.
const FALLBACK_BINARY: &str = "/usr/sbin/nats-server";

/// How many of a node's last log lines an error quotes.
const LOG_TAIL_LINES: usize = 20;

/// How to start a [`LocalNats`].
#[derive(Debug, Clone)]
pub struct LocalNatsConfig {
    /// How many nodes: 1 starts a single server, more start a cluster of that size.
    pub nodes: usize,
    /// The `nats-server` binary; `None` looks for it (see [`LocalNats::find_binary`]).
    pub binary: Option<PathBuf>,
    /// How long the servers may take to become ready before the start fails.
    pub ready_within: Duration,
}

impl LocalNatsConfig {
    /// `nodes` nodes, the binary looked for, 30 s to become ready.
    pub fn nodes(nodes: usize) -> Self {
        Self {
            nodes,
            binary: None,
            ready_within: Duration::from_secs(30),
        }
    }
}

/// Why a [`LocalNats`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalNatsError {
    /// No `nats-server` binary was found.
    #[error(
        "nats-server not found (looked at $OBZENFLOW_NATS_SERVER, the PATH and {FALLBACK_BINARY}): \
         run `cargo xtask nats` to install it (Debian package nats-server, 2.9 or later)"
    )]
    Missing,
    /// A cluster needs at least one node.
    #[error("a local NATS cluster needs at least one node, not {nodes}")]
    NoNodes {
        /// The number asked for.
        nodes: usize,
    },
    /// Preparing the directory, configuration or ports failed.
    #[error("cannot {operation} {}", path.display())]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A node exited, or did not become ready in time.
    #[error("nats-server node {node} {problem}; its last log lines:\n{log}")]
    NotReady {
        /// The node's name.
        node: String,
        /// What happened: "exited" or "was not ready within 30s".
        problem: String,
        /// The tail of its log.
        log: String,
    },
}

/// What a node's log has said so far.
#[derive(Debug, Clone, Default)]
struct NodeLog {
    /// The client port it listens on, once logged.
    client_port: Option<u16>,
    /// `Server is ready` was logged.
    ready: bool,
    /// The node named a JetStream metadata leader (itself or another).
    meta_leader: bool,
    /// Its stderr ended: the process is gone.
    ended: bool,
}

/// One node of a [`LocalNats`].
struct Node {
    name: String,
    child: Option<Child>,
    log: watch::Receiver<NodeLog>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Node {
    fn tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Local `nats-server` processes with JetStream: a single node, or a cluster.
///
/// ```no_run
/// use obzenflow_stages::jetstream::{LocalNats, LocalNatsConfig};
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = LocalNats::start(LocalNatsConfig::nodes(3)).await?;
/// println!("connect to {}", cluster.urls().join(","));
/// # Ok(()) }
/// ```
pub struct LocalNats {
    nodes: Vec<Node>,
    urls: Vec<String>,
    dir: tempfile::TempDir,
}

impl fmt::Debug for LocalNats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalNats")
            .field("urls", &self.urls)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl LocalNats {
    /// The `nats-server` binary: `$OBZENFLOW_NATS_SERVER`, else `nats-server` on the `PATH`,
    /// else `/usr/sbin/nats-server` (where Debian puts it, off a normal user's `PATH`).
    pub fn find_binary() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("OBZENFLOW_NATS_SERVER") {
            return Some(PathBuf::from(path));
        }
        let on_path = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("nats-server"))
                .find(|candidate| candidate.is_file())
        });
        on_path.or_else(|| {
            let fallback = PathBuf::from(FALLBACK_BINARY);
            fallback.is_file().then_some(fallback)
        })
    }

    /// Starts the nodes on free loopback ports, each storing JetStream data in its own
    /// directory under one temporary directory, and waits until they are ready: every node
    /// logged `Server is ready` and, for a cluster, a node logged the metadata leader.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: servers started so far are killed when the future is dropped.
    pub async fn start(config: LocalNatsConfig) -> Result<Self, LocalNatsError> {
        if config.nodes == 0 {
            return Err(LocalNatsError::NoNodes { nodes: 0 });
        }
        let binary = match &config.binary {
            Some(binary) => binary.clone(),
            None => Self::find_binary().ok_or(LocalNatsError::Missing)?,
        };
        let dir = tempfile::Builder::new()
            .prefix("obzenflow-nats-")
            .tempdir()
            .map_err(|source| {
                io_error(
                    "create a temporary directory in",
                    std::env::temp_dir(),
                    source,
                )
            })?;
        let cluster_ports = if config.nodes > 1 {
            free_ports(config.nodes, dir.path())?
        } else {
            Vec::new()
        };
        let mut nodes = Vec::with_capacity(config.nodes);
        for index in 0..config.nodes {
            let name = format!("n{}", index + 1);
            let conf = write_config(dir.path(), &name, index, &cluster_ports)?;
            nodes.push(spawn_node(&binary, name, &conf)?);
        }
        let mut local = Self {
            nodes,
            urls: Vec::new(),
            dir,
        };
        let deadline = tokio::time::Instant::now() + config.ready_within;
        let clustered = config.nodes > 1;
        match tokio::time::timeout_at(deadline, local.wait_ready(clustered)).await {
            Ok(Ok(urls)) => {
                local.urls = urls;
                Ok(local)
            }
            Ok(Err(error)) => Err(error),
            Err(_elapsed) => {
                Err(local.not_ready(format!("was not ready within {:?}", config.ready_within)))
            }
        }
    }

    /// Waits on the nodes' log watches until every node is ready (and, for a cluster, a
    /// metadata leader is known); returns the client URLs.
    async fn wait_ready(&mut self, clustered: bool) -> Result<Vec<String>, LocalNatsError> {
        for index in 0..self.nodes.len() {
            let mut log = self.nodes[index].log.clone();
            let seen = log.wait_for(|log| log.ended || (log.ready && log.client_port.is_some()));
            let ended = seen.await.map(|log| log.ended).unwrap_or(true);
            if ended {
                return Err(self.node_error(index, "exited before it was ready"));
            }
        }
        if clustered {
            let mut leaders: Vec<_> = self.nodes.iter().map(|node| node.log.clone()).collect();
            let waits = leaders.iter_mut().map(|log| {
                Box::pin(async move {
                    let _ = log.wait_for(|log| log.meta_leader || log.ended).await;
                })
            });
            futures_util::future::select_all(waits).await;
            if !self.nodes.iter().any(|node| node.log.borrow().meta_leader) {
                return Err(self.not_ready(
                    "exited before a JetStream metadata leader was elected".to_owned(),
                ));
            }
        }
        Ok(self
            .nodes
            .iter()
            .map(|node| {
                let port = node.log.borrow().client_port.unwrap_or_default();
                format!("nats://127.0.0.1:{port}")
            })
            .collect())
    }

    fn node_error(&self, index: usize, problem: &str) -> LocalNatsError {
        let node = &self.nodes[index];
        LocalNatsError::NotReady {
            node: node.name.clone(),
            problem: problem.to_owned(),
            log: node.tail(),
        }
    }

    /// The error for the first node that is not ready (or the first node).
    fn not_ready(&self, problem: String) -> LocalNatsError {
        let index = self
            .nodes
            .iter()
            .position(|node| !node.log.borrow().ready)
            .unwrap_or(0);
        self.node_error(index, &problem)
    }

    /// The client URLs of the nodes, in node order (`nats://127.0.0.1:<port>`).
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The client URLs of the nodes still running, joined with commas, as NATS clients
    /// take a server list.
    pub fn url_list(&self) -> String {
        self.urls
            .iter()
            .zip(&self.nodes)
            .filter(|(_, node)| node.child.is_some())
            .map(|(url, _)| url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How many nodes were started.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes (never true for a started [`LocalNats`]).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Kills node `index` (0-based) with SIGKILL and waits for it to exit: a crash, not a
    /// shutdown. Killing a node twice does nothing.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the kill is sent before the first await; the process is reaped later.
    pub async fn kill(&mut self, index: usize) {
        let Some(node) = self.nodes.get_mut(index) else {
            return;
        };
        if let Some(mut child) = node.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
            tracing::info!(node = %node.name, "nats-server node killed");
        }
    }

    /// The temporary directory holding the nodes' configuration and data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut() {
                // `kill_on_drop` reaps nothing synchronously; a kill now stops the server before
                // its directory is removed.
                let _ = child.start_kill();
            }
        }
    }
}

fn io_error(operation: &'static str, path: PathBuf, source: std::io::Error) -> LocalNatsError {
    LocalNatsError::Io {
        operation,
        path,
        source,
    }
}

/// `count` distinct free loopback ports: each is bound (port 0) and released just before the
/// servers take them.
fn free_ports(count: usize, dir: &Path) -> Result<Vec<u16>, LocalNatsError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| io_error("reserve loopback ports for", dir.to_path_buf(), source))?;
    listeners
        .iter()
        .map(|listener| listener.local_addr().map(|address| address.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| io_error("reserve loopback ports for", dir.to_path_buf(), source))
}

/// Writes node `name`'s configuration: a random client port (read back from its log),
/// JetStream in its own directory, and for a cluster the routes to every node.
fn write_config(
    dir: &Path,
    name: &str,
    index: usize,
    cluster_ports: &[u16],
) -> Result<PathBuf, LocalNatsError> {
    let store = dir.join(name);
    let mut conf = format!(
        "server_name: {name}\nlisten: \"127.0.0.1:-1\"\njetstream {{ store_dir: {:?} }}\n",
        store.display().to_string()
    );
    if let Some(port) = cluster_ports.get(index) {
        let routes: Vec<String> = cluster_ports
            .iter()
            .map(|port| format!("\"nats://127.0.0.1:{port}\""))
            .collect();
        conf.push_str(&format!(
            "cluster {{ name: obzenflow, listen: \"127.0.0.1:{port}\", routes: [{}] }}\n",
            routes.join(", ")
        ));
    }
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, conf).map_err(|source| io_error("write", path.clone(), source))?;
    Ok(path)
}

fn spawn_node(binary: &Path, name: String, conf: &Path) -> Result<Node, LocalNatsError> {
    let mut child = Command::new(binary)
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| io_error("start", binary.to_path_buf(), source))?;
    let (sender, log) = watch::channel(NodeLog::default());
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL_LINES)));
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(follow_log(stderr, sender, tail.clone()));
    }
    Ok(Node {
        name,
        child: Some(child),
        log,
        tail,
    })
}

/// Reads a node's log lines as they come, updating what it has said.
async fn follow_log(
    stderr: ChildStderr,
    sender: watch::Sender<NodeLog>,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        sender.send_modify(|log| read_line(log, &line));
        let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == LOG_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    sender.send_modify(|log| log.ended = true);
}

/// What one log line says about readiness.
fn read_line(log: &mut NodeLog, line: &str) {
    const LISTENING: &str = "Listening for client connections on ";
    if let Some(at) = line.find(LISTENING) {
        let address = &line[at + LISTENING.len()..];
        log.client_port = address
            .rsplit(':')
            .next()
            .and_then(|port| port.trim().parse().ok());
    } else if line.contains("Server is ready") {
        log.ready = true;
    } else if line.contains("JetStream cluster new metadata leader")
        || line.contains("Self is new JetStream cluster metadata leader")
    {
        log.meta_leader = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_of_nats_server_2_9_are_read() {
        let mut log = NodeLog::default();
        read_line(
            &mut log,
            "[6896] 2026/12/03 13:24:39.424787 [INF] Listening for client connections on 127.0.0.1:36615",
        );
        assert_eq!(log.client_port, Some(36615));
        assert!(!log.ready);
        read_line(
            &mut log,
            "[6896] 2026/12/03 13:24:39.424852 [INF] Server is ready",
        );
        assert!(log.ready);
        read_line(
            &mut log,
            "[6894] 2026/12/03 13:24:39.800307 [INF] JetStream cluster new metadata leader: n1/obz",
        );
        assert!(log.meta_leader);
    }
}
