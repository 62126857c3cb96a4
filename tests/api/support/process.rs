//! The `parley` binary as a separate process.

use super::app::TestApp;
use serde_json::Value;
use std::time::Duration;

/// The `parley` binary running as its own process with JSON logs, for tests
/// of signals, exit codes and log output.
pub struct ServerProcess {
    pub child: tokio::process::Child,
    pub app: TestApp,
    /// Every log line so far.
    pub logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The tasks copying stdout and stderr into `logs`: done at the
    /// process's end of output.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts the binary with `env` (plus random local ports and JSON logs)
    /// and waits for its "parley is up" line.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley"));
        command
            .env_clear()
            .env("PARLEY_HTTP_ADDR", "127.0.0.1:0")
            .env("PARLEY_ADMIN_ADDR", "127.0.0.1:0")
            .env("PARLEY_LOG_FORMAT", "json")
            .env("PARLEY_RATE_AUTH_PER_MIN", "1000")
            // Every request line, so tests can find the one they look for.
            .env("PARLEY_LOG_SAMPLE_SUCCESS", "1")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the parley binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        // stderr holds what is not a log line (a panic): kept with the logs.
        let mut readers = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            let sink = logs.clone();
            readers.push(actix_web::rt::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    sink.lock().unwrap().push(line);
                }
            }));
        }
        let (public, admin) = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                logs.lock().unwrap().push(line.clone());
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if let (Some(public), Some(admin)) =
                    (event["public_addr"].as_str(), event["admin_addr"].as_str())
                {
                    return (public.to_owned(), admin.to_owned());
                }
            }
            panic!("parley exited before reporting its address");
        })
        .await
        .expect("parley reports its address");
        let sink = logs.clone();
        // Keep reading so the pipe never fills; keep every line for the test.
        readers.push(actix_web::rt::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        }));
        let app = TestApp {
            base: format!("http://{public}"),
            admin: format!("http://{admin}"),
            client: reqwest::Client::new(),
        };
        Self {
            child,
            app,
            logs,
            readers,
        }
    }

    /// Sends `signal` (e.g. `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `limit`), then for its last
    /// output to be read, so `log_text` holds every line it wrote.
    pub async fn exit_status(&mut self, limit: Duration) -> std::process::ExitStatus {
        let status = tokio::time::timeout(limit, self.child.wait())
            .await
            .expect("parley exits in time")
            .unwrap();
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        status
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}
