//! Throwaway Redis and PostgreSQL servers for the gateway's tests and benchmarks: each runs
//! on a free port of 127.0.0.1, in a temporary folder, and is stopped when its value is
//! dropped, so that a test or a benchmark may kill, freeze and restart it without touching
//! the machine's shared servers.
//!
//! The calls block (they start processes and wait for them to answer); from async code, call
//! them where blocking a worker for a few seconds is acceptable, or on the blocking pool.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Longest a server may take to answer after a start; only turns a hang into an error.
const START_BOUND: Duration = Duration::from_secs(60);

/// A port of 127.0.0.1 nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a process id; no memory is shared.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

/// Polls `ready` every 20 ms until it holds; panics after [`START_BOUND`] naming `what`.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + START_BOUND;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not answer within {START_BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `redis-server` of its own.
pub struct ThrowawayRedis {
    /// Its port.
    pub port: u16,
    child: Option<Child>,
}

impl ThrowawayRedis {
    /// Starts one and waits until it answers `PING`.
    pub fn start() -> Self {
        let mut redis = Self {
            port: free_port(),
            child: None,
        };
        redis.restart();
        redis
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port (after [`ThrowawayRedis::kill`]).
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt-get install redis-server)");
        self.child = Some(child);
        let port = self.port;
        wait_until("the throwaway Redis", || pong(port));
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
        signal(self.pid(), libc::SIGSTOP);
    }

    /// Thaws it (SIGCONT).
    pub fn thaw(&self) {
        signal(self.pid(), libc::SIGCONT);
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

/// True when a Redis on `port` answers `PING` with `+PONG`.
fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            signal(child.id(), libc::SIGCONT);
        }
        self.kill();
    }
}

/// A PostgreSQL server of its own (`initdb` + `pg_ctl`), trust authentication, user
/// `postgres`; run as the `postgres` user when the caller is root (PostgreSQL refuses root).
pub struct ThrowawayPostgres {
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl ThrowawayPostgres {
    /// Creates the cluster and starts it.
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| versions.filter_map(Result::ok).map(|e| e.path()).max())
            .map(|v| v.join("bin"))
            .filter(|b| b.join("initdb").exists())
            .expect("PostgreSQL server binaries under /usr/lib/postgresql/<version>/bin");
        let postgres = Self {
            port: free_port(),
            dir: tempfile::tempdir().expect("a temporary folder"),
            bin,
        };
        if as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(postgres.dir.path())
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of the throwaway cluster's folder");
        }
        let data = postgres.data();
        let created = postgres.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        assert!(created.success(), "initdb of the throwaway cluster");
        postgres.resume();
        postgres
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it (fast shutdown: open connections are cut).
    pub fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    /// Starts it (again) and waits until it accepts connections.
    pub fn resume(&self) {
        let data = self.data();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        let started = self.run(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
        assert!(started.success(), "pg_ctl start of the throwaway cluster");
        let port = self.port.to_string();
        wait_until("the throwaway PostgreSQL", || {
            Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port])
                .status()
                .is_ok_and(|s| s.success())
        });
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> ExitStatus {
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
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// True when this process runs as root.
fn as_root() -> bool {
    // SAFETY: geteuid(2) only reads the process's user id.
    unsafe { libc::geteuid() == 0 }
}
