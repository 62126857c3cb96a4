//! A real Redis Cluster of the test's own: three masters and three
//! replicas from Debian's `redis-server` (7.0, with sharded pub/sub) on free
//! 127.0.0.1 ports, in a temporary directory, every process killed on drop.
//!
//! `cluster-node-timeout` is short (1 s) so a killed master is replaced by
//! its replica within a few seconds, and `cluster-require-full-coverage no`
//! keeps the other shards serving meanwhile, as the runbook recommends.

use super::cluster::wait_for_port;
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

const NODES: usize = 6;
/// A node's cluster bus listens on its port + this (Redis' fixed offset).
const BUS_OFFSET: u16 = 10_000;
/// How long any change of the cluster may take to settle.
const SETTLE: Duration = Duration::from_secs(30);

pub struct RedisCluster {
    /// Every node's port, the first three created as masters.
    pub ports: Vec<u16>,
    children: HashMap<u16, tokio::process::Child>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts six nodes, joins them into three shards of a master and a
    /// replica, and returns once every node sees `cluster_state:ok` and
    /// every replica is in sync with its master.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "parley-redis-cluster-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ports = free_cluster_ports(NODES);
        let mut children = HashMap::new();
        for &port in &ports {
            children.insert(port, cluster_node(&dir, port));
        }
        for &port in &ports {
            wait_for_port(&format!("127.0.0.1:{port}")).await;
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = tokio::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .await
            .expect("redis-cli is installed");
        assert!(
            created.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Self {
            ports,
            children,
            dir,
        };
        cluster.wait_until_settled(&[]).await;
        cluster
    }

    /// The `REDIS_URL` parley takes: every node, so any one answering is
    /// enough to find the others.
    pub fn url(&self) -> String {
        let mut ports = self.ports.iter();
        let first = ports.next().unwrap();
        let rest: Vec<String> = ports.map(|p| format!("node=127.0.0.1:{p}")).collect();
        format!("redis-cluster://127.0.0.1:{first}?{}", rest.join("&"))
    }

    /// The hash slot of `key` (or channel).
    pub async fn slot_of(&self, key: &str) -> u16 {
        let out = self
            .cli(self.any_live(), &["cluster", "keyslot", key])
            .await;
        out.trim().parse().unwrap()
    }

    /// The port of the master serving `slot`, as a live node sees it.
    pub async fn master_of(&self, slot: u16) -> u16 {
        let nodes = self.nodes(self.any_live()).await;
        nodes
            .iter()
            .find(|n| n.master && n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("no master serves slot {slot}: {nodes:?}"))
    }

    /// Subscribers of shard channel `channel` on the master owning it
    /// (`PUBSUB SHARDNUMSUB`), and of the classic channel of that name on
    /// every live node (`PUBSUB NUMSUB`, which a node counts for its own
    /// clients only).
    pub async fn subscribers(&self, channel: &str) -> (u64, u64) {
        let owner = self.master_of(self.slot_of(channel).await).await;
        let count = |out: String| out.lines().nth(1).and_then(|n| n.trim().parse().ok());
        let sharded = count(self.cli(owner, &["pubsub", "shardnumsub", channel]).await);
        let mut classic = 0;
        for &port in self.children.keys() {
            classic += count(self.cli(port, &["pubsub", "numsub", channel]).await).unwrap_or(0);
        }
        (sharded.unwrap_or(0), classic)
    }

    /// Kills the master serving `slot` with SIGKILL and returns once its
    /// replica serves the slot and every live node sees the cluster ok.
    /// Returns the new master's port.
    pub async fn kill_master_of(&mut self, slot: u16) -> u16 {
        let old = self.master_of(slot).await;
        let mut child = self.children.remove(&old).unwrap();
        child.kill().await.unwrap();
        self.wait_until_settled(&[old]).await;
        let new = self.master_of(slot).await;
        assert_ne!(new, old, "the replica took over slot {slot}");
        new
    }

    /// Moves `slot` from its master to another live master the way
    /// `redis-cli --cluster reshard` does: IMPORTING / MIGRATING, MIGRATE
    /// of its keys, then SETSLOT NODE on every master. Returns the new
    /// owner's port.
    pub async fn migrate_slot(&self, slot: u16) -> u16 {
        let nodes = self.nodes(self.any_live()).await;
        let masters: Vec<&Node> = nodes.iter().filter(|n| n.master && n.alive).collect();
        let from = *masters
            .iter()
            .find(|n| n.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .unwrap();
        let to = *masters.iter().find(|n| n.port != from.port).unwrap();
        let s = slot.to_string();
        self.ok(to.port, &["cluster", "setslot", &s, "importing", &from.id])
            .await;
        self.ok(from.port, &["cluster", "setslot", &s, "migrating", &to.id])
            .await;
        loop {
            let keys = self
                .cli(from.port, &["cluster", "getkeysinslot", &s, "100"])
                .await;
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let port = to.port.to_string();
            let mut args = vec!["migrate", "127.0.0.1", &port, "", "0", "5000", "keys"];
            args.extend(keys);
            self.ok(from.port, &args).await;
        }
        for master in &masters {
            self.ok(master.port, &["cluster", "setslot", &s, "node", &to.id])
                .await;
        }
        self.wait_until_settled(&[]).await;
        to.port
    }

    /// Waits until every live node (all but `dead`) reports
    /// `cluster_state:ok`, no live node counts a failed master among the
    /// slot owners, and every replica's link to its master is up.
    async fn wait_until_settled(&self, dead: &[u16]) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            if self.settled(dead).await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the Redis Cluster did not settle within {SETTLE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn settled(&self, dead: &[u16]) -> bool {
        for &port in self.children.keys() {
            let info = self.cli(port, &["cluster", "info"]).await;
            if !info.contains("cluster_state:ok") || !info.contains("cluster_slots_ok:16384") {
                return false;
            }
            let nodes = self.nodes(port).await;
            let owners_alive = nodes
                .iter()
                .filter(|n| !n.slots.is_empty())
                .all(|n| n.alive && n.master && !dead.contains(&n.port));
            if !owners_alive {
                return false;
            }
            let replication = self.cli(port, &["info", "replication"]).await;
            if replication.contains("role:slave") && !replication.contains("master_link_status:up")
            {
                return false;
            }
        }
        true
    }

    fn any_live(&self) -> u16 {
        *self.children.keys().min().unwrap()
    }

    /// `CLUSTER NODES` as `port`'s node sees it.
    async fn nodes(&self, port: u16) -> Vec<Node> {
        self.cli(port, &["cluster", "nodes"])
            .await
            .lines()
            .filter_map(Node::parse)
            .collect()
    }

    async fn ok(&self, port: u16, args: &[&str]) {
        let out = self.cli(port, args).await;
        assert!(
            out.trim() == "OK" || out.trim() == "NOKEY",
            "{args:?} on {port}: {out}"
        );
    }

    async fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = tokio::process::Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .output()
            .await
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One line of `CLUSTER NODES`.
#[derive(Debug)]
struct Node {
    id: String,
    port: u16,
    master: bool,
    alive: bool,
    slots: Vec<(u16, u16)>,
}

impl Node {
    /// `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (id, addr, flags) = (fields.first()?, fields.get(1)?, fields.get(2)?);
        let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
        let slots = fields
            .iter()
            .skip(8)
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => s.parse().ok().map(|one| (one, one)),
            })
            .collect();
        Some(Self {
            id: (*id).to_owned(),
            port,
            master: flags.contains("master"),
            alive: !flags.contains("fail") && fields.get(7) == Some(&"connected")
                || flags.contains("myself"),
            slots,
        })
    }
}

/// `n` ports nobody listens on, each below 65535 - 10000 with its cluster
/// bus port free too. The listeners are held until all are chosen, so the
/// ports differ; a parallel test could still take one before the node
/// binds it, which is as likely as for every other free port here.
fn free_cluster_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bus = port
            .checked_add(BUS_OFFSET)
            .map(|b| TcpListener::bind(("127.0.0.1", b)));
        if let Some(Ok(bus)) = bus {
            ports.push(port);
            held.push(bus);
        }
        held.push(listener);
    }
    ports
}

fn cluster_node(dir: &std::path::Path, port: u16) -> tokio::process::Child {
    let node_dir = dir.join(port.to_string());
    std::fs::create_dir_all(&node_dir).unwrap();
    tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
        .args(["--cluster-require-full-coverage", "no"])
        // A replica takes over however long its link was down.
        .args(["--cluster-replica-validity-factor", "0"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&node_dir)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server is installed")
}
