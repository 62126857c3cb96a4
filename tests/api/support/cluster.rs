//! Several real parley processes sharing one PostgreSQL and one Redis,
//! behind a real haproxy doing plain round-robin (no stickiness): what a
//! scaled-out deployment looks like, on 127.0.0.x addresses.

use super::db::fresh_database_url;
use super::{ServerProcess, TestApp, TestKey};
use std::time::Duration;

/// The Redis the suite uses (scripts/test/test.sh makes sure one answers).
pub fn redis_url() -> String {
    std::env::var("PARLEY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix of this test's own, so parallel tests share one Redis.
pub fn redis_prefix() -> String {
    format!("parley_test_{}:", uuid::Uuid::new_v4().simple())
}

pub struct Cluster {
    pub nodes: Vec<ServerProcess>,
    /// The load balancer, as clients see the service.
    pub lb: TestApp,
    /// The instances' Redis key prefix (a room's channel is
    /// `{prefix}room:{id}`).
    pub prefix: String,
    /// Each node's environment, to start it again ([`Cluster::restart`]).
    envs: Vec<Vec<(String, String)>>,
    _haproxy: Haproxy,
    _keys: TestKey,
}

impl Cluster {
    /// `n` instances on one fresh database and `redis` (any `REDIS_URL`:
    /// one Redis, a Sentinel's, a Redis Cluster's), each on its own
    /// 127.0.0.x address, plus haproxy in front.
    pub async fn start(n: usize, redis: &str, extra: &[(&str, &str)]) -> Self {
        let database = fresh_database_url().await;
        let prefix = redis_prefix();
        // Instances that share a cluster share the signing keys.
        let keys = TestKey::new();
        let keys_dir = keys.dir.to_string_lossy().into_owned();
        let mut nodes = Vec::new();
        let mut envs = Vec::new();
        for i in 0..n {
            let addr = format!("127.0.0.{}:0", 10 + i);
            let instance = format!("node-{i}");
            let mut env = vec![
                ("DATABASE_URL", database.as_str()),
                ("REDIS_URL", redis),
                ("PARLEY_REDIS_PREFIX", prefix.as_str()),
                ("PARLEY_JWT_KEYS_DIR", keys_dir.as_str()),
                ("PARLEY_HTTP_ADDR", addr.as_str()),
                ("PARLEY_INSTANCE_ID", instance.as_str()),
                // Every client comes through haproxy from one address, and
                // load tests use few users: the caps would be the bottleneck.
                ("PARLEY_WS_CONNS_PER_IP", "1000000"),
                ("PARLEY_WS_CONNS_PER_USER", "1000000"),
                ("PARLEY_WS_USER_MSGS_PER_S", "1000000"),
            ];
            env.extend_from_slice(extra);
            nodes.push(ServerProcess::start(&env).await);
            envs.push(
                env.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            );
        }
        let backends: Vec<String> = nodes
            .iter()
            .map(|n| n.app.base.trim_start_matches("http://").to_owned())
            .collect();
        let haproxy = Haproxy::start(&backends).await;
        let lb = TestApp {
            base: format!("http://{}", haproxy.addr),
            admin: nodes[0].app.admin.clone(),
            client: reqwest::Client::new(),
        };
        Self {
            nodes,
            lb,
            prefix,
            envs,
            _haproxy: haproxy,
            _keys: keys,
        }
    }
}

impl Cluster {
    /// Kills node `i` with SIGKILL (a crash: no drain, no goodbye) and
    /// waits for it to be gone.
    pub async fn kill(&mut self, i: usize) {
        let child = &mut self.nodes[i].child;
        child.start_kill().unwrap();
        tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("a killed node exits")
            .unwrap();
    }

    /// One more instance on the cluster's database and keys but with
    /// `overrides` (say, a Redis prefix of its own: its bus messages reach
    /// nobody, as if lost), outside haproxy.
    pub async fn start_outsider(&self, overrides: &[(&str, &str)]) -> ServerProcess {
        let mut env: Vec<(&str, &str)> = self.envs[0]
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
            .collect();
        env.retain(|(k, _)| !matches!(*k, "PARLEY_HTTP_ADDR" | "PARLEY_INSTANCE_ID"));
        env.extend_from_slice(overrides);
        env.push(("PARLEY_HTTP_ADDR", "127.0.0.30:0"));
        env.push(("PARLEY_INSTANCE_ID", "outsider"));
        ServerProcess::start(&env).await
    }

    /// Starts node `i` again with its environment, on the address it had
    /// (haproxy's backend list is fixed), once it has stopped.
    pub async fn restart(&mut self, i: usize) {
        let addr = self.nodes[i]
            .app
            .base
            .trim_start_matches("http://")
            .to_owned();
        let mut env: Vec<(&str, &str)> = self.envs[i]
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        env.retain(|(k, _)| *k != "PARLEY_HTTP_ADDR");
        env.push(("PARLEY_HTTP_ADDR", addr.as_str()));
        self.nodes[i] = ServerProcess::start(&env).await;
    }
}

/// haproxy in the foreground, killed with the test.
pub struct Haproxy {
    pub addr: String,
    _child: tokio::process::Child,
}

impl Haproxy {
    pub async fn start(backends: &[String]) -> Self {
        let port = free_port("127.0.0.2");
        let addr = format!("127.0.0.2:{port}");
        // Checks on /readyz, as a Kubernetes endpoint controller would: a
        // draining instance turns unready at once and gets no new work
        // (drain_under_load relies on it). `timeout check` keeps a busy
        // instance answering slower than the 200 ms interval in rotation.
        // A connection refused by a node that just died goes to another
        // (as in deploy/haproxy), not three times to the dead one a second
        // apart.
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, b)| format!("    server node{i} {b} check inter 200ms fall 1 rise 1\n"))
            .collect();
        let config = format!(
            "global\n    maxconn 4096\n\
             defaults\n    mode http\n    timeout check 2s\n    timeout connect 2s\n    timeout client 60s\n    timeout server 60s\n    timeout tunnel 1h\n    retries 2\n    option redispatch 1\n\
             frontend parley\n    bind {addr}\n    default_backend nodes\n\
             backend nodes\n    balance roundrobin\n    option httpchk GET /readyz\n{servers}"
        );
        let path = std::env::temp_dir().join(format!("parley-haproxy-{port}.cfg"));
        std::fs::write(&path, config).unwrap();
        let child = tokio::process::Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy is installed (scripts/test/ensure-tools.sh)");
        wait_for_port(&addr).await;
        Self {
            addr,
            _child: child,
        }
    }
}

/// A port nobody listens on at `ip` right now.
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls until `addr` accepts connections (a started process gives no
/// other signal), for at most 10 s.
pub async fn wait_for_port(addr: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Redis server of the test's own, which the test may stop and restart.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<tokio::process::Child>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let mut redis = Self {
            port: free_port("127.0.0.1"),
            child: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// Starts it again on the same port, empty.
    pub async fn restart(&mut self) {
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        wait_for_port(&format!("127.0.0.1:{}", self.port)).await;
    }
}

/// A master, a replica and one Sentinel watching them (quorum 1), all of the
/// test's own: enough for a real failover.
pub struct PrivateSentinel {
    pub sentinel_port: u16,
    master: Option<tokio::process::Child>,
    _replica: tokio::process::Child,
    _sentinel: tokio::process::Child,
}

pub const SENTINEL_SERVICE: &str = "parley";

impl PrivateSentinel {
    pub async fn start() -> Self {
        let (master_port, replica_port) = (free_port("127.0.0.1"), free_port("127.0.0.1"));
        let sentinel_port = free_port("127.0.0.1");
        let master = redis_server(&["--port", &master_port.to_string()]);
        wait_for_port(&format!("127.0.0.1:{master_port}")).await;
        let replica = redis_server(&[
            "--port",
            &replica_port.to_string(),
            "--replicaof",
            "127.0.0.1",
            &master_port.to_string(),
        ]);
        wait_for_port(&format!("127.0.0.1:{replica_port}")).await;
        // Sentinel rewrites its configuration file: one per test.
        let config = std::env::temp_dir().join(format!("parley-sentinel-{sentinel_port}.conf"));
        std::fs::write(
            &config,
            format!(
                "port {sentinel_port}\nbind 127.0.0.1\n\
                 sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n\
                 sentinel failover-timeout {SENTINEL_SERVICE} 5000\n"
            ),
        )
        .unwrap();
        let sentinel = tokio::process::Command::new("redis-server")
            .arg(&config)
            .arg("--sentinel")
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs as a Sentinel");
        wait_for_port(&format!("127.0.0.1:{sentinel_port}")).await;
        let sentinel = Self {
            sentinel_port,
            master: Some(master),
            _replica: replica,
            _sentinel: sentinel,
        };
        // A failover needs a replica the Sentinel knows about.
        sentinel
            .poll(&["sentinel", "replicas", SENTINEL_SERVICE], |out| {
                out.contains(&replica_port.to_string())
            })
            .await;
        sentinel
    }

    pub fn url(&self) -> String {
        format!(
            "redis-sentinel://127.0.0.1:{}/0?sentinelServiceName={SENTINEL_SERVICE}",
            self.sentinel_port
        )
    }

    /// Kills the master; returns once the Sentinel promoted the replica.
    pub async fn fail_over(&mut self) -> String {
        let old = self.master_port().await;
        if let Some(mut master) = self.master.take() {
            master.kill().await.unwrap();
        }
        self.poll(
            &["sentinel", "get-master-addr-by-name", SENTINEL_SERVICE],
            |out| !out.contains(&old),
        )
        .await;
        self.master_port().await
    }

    async fn master_port(&self) -> String {
        let out = self
            .cli(&["sentinel", "get-master-addr-by-name", SENTINEL_SERVICE])
            .await;
        out.lines().last().unwrap_or_default().to_owned()
    }

    async fn cli(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new("redis-cli")
            .args(["-p", &self.sentinel_port.to_string()])
            .args(args)
            .output()
            .await
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Asks the Sentinel until `done` holds (it has no push for this), for
    /// at most 20 s.
    async fn poll(&self, args: &[&str], done: impl Fn(&str) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if done(&self.cli(args).await) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Sentinel: {args:?} never settled"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn redis_server(args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new("redis-server")
        .args(args)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server is installed")
}
