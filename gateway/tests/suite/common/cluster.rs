//! Cluster harness: real `gateway serve` processes sharing one database (and Redis), and
//! throwaway Redis and PostgreSQL servers that a test may kill, freeze and restart. The
//! shared servers of the machine are never touched: a throwaway one runs on a free port,
//! in a temporary folder, and is stopped when its value is dropped.

use super::{read, ApiClient, ADMIN_KEY, SIGNING_SECRET};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Longest a process may take to start answering; only turns a hang into a failure.
const START_BOUND: Duration = Duration::from_secs(60);

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Sends `signal` to process `pid`.
fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a pid this harness started; no memory is shared.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

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
        read(
            self.client
                .post(self.url("/api/proxy-request"))
                .json(&body)
                .send()
                .await
                .expect("proxy request sent"),
        )
        .await
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

/// A Redis server of the test's own, on a free port.
pub struct ThrowawayRedis {
    pub port: u16,
    child: Option<Child>,
}

impl ThrowawayRedis {
    /// Starts one and waits until it answers.
    pub async fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.restart().await;
        redis
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port (after [`ThrowawayRedis::kill`]).
    pub async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        let url = self.url();
        wait_until("the throwaway Redis answering", || {
            let url = url.clone();
            async move {
                let Ok(client) = redis::Client::open(url) else {
                    return false;
                };
                match client.get_multiplexed_async_connection().await {
                    Ok(mut conn) => redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .is_ok(),
                    Err(_) => false,
                }
            }
        })
        .await;
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        signal(self.child.as_ref().expect("running").id(), libc::SIGSTOP);
    }

    /// Thaws it (SIGCONT).
    pub fn thaw(&self) {
        signal(self.child.as_ref().expect("running").id(), libc::SIGCONT);
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            signal(child.id(), libc::SIGCONT);
        }
        self.kill();
    }
}

/// A PostgreSQL server of the test's own (`initdb` + `pg_ctl` in a temporary folder, on a
/// free port), run as the `postgres` user when the test runs as root.
pub struct ThrowawayPostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl ThrowawayPostgres {
    /// Creates the cluster and starts it.
    pub async fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.filter_map(Result::ok).map(|e| e.path()).max())
            .map(|v| v.join("bin"))
            .filter(|b| b.join("initdb").exists())
            .expect("PostgreSQL server binaries under /usr/lib/postgresql/<version>/bin");
        let dir = tempfile::tempdir().unwrap();
        let postgres = Self {
            port: free_port(),
            dir,
            bin,
        };
        if as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(postgres.dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the throwaway cluster's folder");
        }
        let data = postgres.data();
        let ok = postgres
            .run(
                "initdb",
                &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
            )
            .success();
        assert!(ok, "initdb of the throwaway cluster");
        postgres.resume().await;
        postgres
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> std::process::ExitStatus {
        let program = self.bin.join(tool);
        let mut command = if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("PostgreSQL tool runs")
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it (fast shutdown: connections are cut).
    pub fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    /// Starts it (again) and waits until it accepts connections.
    pub async fn resume(&self) {
        let data = self.data();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        let ok = self
            .run(
                "pg_ctl",
                &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
            )
            .success();
        assert!(ok, "pg_ctl start of the throwaway cluster");
        let url = self.url();
        wait_until("the throwaway PostgreSQL answering", || {
            let url = url.clone();
            async move {
                use sqlx::Connection;
                sqlx::PgConnection::connect(&url).await.is_ok()
            }
        })
        .await;
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// True when the tests run as root (PostgreSQL then runs as `postgres`).
fn as_root() -> bool {
    // SAFETY: geteuid(2) only reads the process's user id.
    unsafe { libc::geteuid() == 0 }
}
