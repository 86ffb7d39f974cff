//! Cluster harness: real `gateway serve` processes sharing one database (and Redis); the
//! throwaway Redis and PostgreSQL servers a test kills, freezes and restarts come from
//! `testkit` (never the machine's shared ones).

use super::{ApiClient, ADMIN_KEY, SIGNING_SECRET};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testkit::{free_port, signal};
pub use testkit::{ThrowawayPostgres, ThrowawayRedis};

/// Longest a process may take to start answering; only turns a hang into a failure.
const START_BOUND: Duration = Duration::from_secs(60);

/// Polls `ready` until it holds, failing after [`START_BOUND`] with `what` (a condition, not
/// a delay: it returns as soon as `ready` does).
pub async fn wait_until<F, Fut>(what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + START_BOUND;
    while !ready().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {START_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One `gateway serve` process.
pub struct Instance {
    pub api: ApiClient,
    child: Option<Child>,
    /// Where its log goes (printed when a test fails).
    pub log: PathBuf,
}

impl std::ops::Deref for Instance {
    type Target = ApiClient;
    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

/// What every instance of a cluster shares, and what one instance adds.
#[derive(Clone, Default)]
pub struct InstanceEnv {
    /// Extra variables (name, value).
    pub vars: Vec<(String, String)>,
}

impl InstanceEnv {
    /// Adds a variable.
    pub fn with(mut self, name: &str, value: impl ToString) -> Self {
        self.vars.push((name.to_string(), value.to_string()));
        self
    }
}

impl Instance {
    /// Starts `gateway serve` on a free port with `database_url`, its data in `dir`, and
    /// `env`; returns once it answers `/health`.
    pub async fn start(database_url: &str, dir: &Path, env: &InstanceEnv) -> Self {
        let port = free_port();
        std::fs::create_dir_all(dir).unwrap();
        let log = dir.join(format!("gateway-{port}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
        command
            .arg("serve")
            .current_dir(dir)
            .env("GATEWAY_ENV", "development")
            .env("DATA_DIR", dir)
            .env("DATABASE_URL", database_url)
            .env("PLUGINS_DIR", dir.join("no-plugins"))
            .env("POLICY_BINDINGS_REQUIRED", "off")
            .env("BIND", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("KEK_BASE64", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
            .env("SIGNING_SECRET", SIGNING_SECRET)
            .env("ADMIN_API_KEY", ADMIN_KEY)
            .env("KEY_POOL_SIZE", "1")
            .env("SHUTDOWN_GRACE_MS", "0")
            .env("LOG_FORMAT", "text")
            .env("RUST_LOG", "info")
            .env_remove("REDIS_URL")
            .env_remove("SIGNING_SECRET_PREVIOUS")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (name, value) in &env.vars {
            command.env(name, value);
        }
        let child = command.spawn().expect("the gateway binary runs");
        let instance = Self {
            api: ApiClient::new(format!("http://127.0.0.1:{port}")),
            child: Some(child),
            log,
        };
        let (client, url) = (instance.client.clone(), instance.url("/health"));
        wait_until("a gateway instance answering", || {
            let (client, url) = (client.clone(), url.clone());
            async move { client.get(url).send().await.is_ok() }
        })
        .await;
        instance
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the process to shut down (SIGTERM), without waiting.
    pub fn terminate(&self) {
        signal(self.pid(), libc::SIGTERM);
    }

    /// Waits for the process to exit; returns its exit code.
    pub async fn exited(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        tokio::task::spawn_blocking(move || child.wait().ok().and_then(|s| s.code()))
            .await
            .unwrap()
    }

    /// The process's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a proxied `serpapi` search with `token`; returns the status and body.
    pub async fn search(&self, token: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let body = serde_json::json!({"agent_token": token, "tool": "serpapi", "action": "search",
                                      "params": {"q": "cluster"}});
        let (status, _, body) = super::proxy(&self.api, body).await;
        (status, body)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Several instances on one database.
pub struct Cluster {
    pub instances: Vec<Instance>,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` instances on `database_url`, each with `env`.
    pub async fn start(n: usize, database_url: &str, env: &InstanceEnv) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut instances = Vec::with_capacity(n);
        for i in 0..n {
            instances
                .push(Instance::start(database_url, &dir.path().join(i.to_string()), env).await);
        }
        Self { instances, dir }
    }
}

impl std::ops::Index<usize> for Cluster {
    type Output = Instance;
    fn index(&self, i: usize) -> &Instance {
        &self.instances[i]
    }
}

impl std::ops::IndexMut<usize> for Cluster {
    fn index_mut(&mut self, i: usize) -> &mut Instance {
        &mut self.instances[i]
    }
}
