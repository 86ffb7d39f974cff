//! A throw-away PostgreSQL database for one benchmark run: created on a server the operator
//! names, dropped when the run ends (also when it fails), so that runs never see each
//! other's rows.

use anyhow::Context;
use sqlx::{Connection, Executor, PgConnection};

/// A database created for this run; dropped with this value.
pub struct TempPostgres {
    /// URL of the new database.
    pub url: String,
    admin_url: String,
    name: String,
}

impl TempPostgres {
    /// Creates a fresh database on the server of `admin_url` (a URL of any database there,
    /// e.g. `postgres://postgres@127.0.0.1:5432/test`).
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("gw_bench_{}", uuid::Uuid::new_v4().simple());
        admin(admin_url, &format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating a database for the run on {admin_url}"))?;
        // Same server, user and options; only the database name changes.
        let (location, options) = match admin_url.split_once('?') {
            Some((location, options)) => (location, format!("?{options}")),
            None => (admin_url, String::new()),
        };
        let server = location
            .rsplit_once('/')
            .map_or(location, |(server, _)| server);
        Ok(Self {
            url: format!("{server}/{name}{options}"),
            admin_url: admin_url.to_string(),
            name,
        })
    }
}

async fn admin(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(admin_url).await?;
    conn.execute(sql).await?;
    Ok(())
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside or outside a runtime: use a short-lived one on its own thread.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| {
                    rt.block_on(admin(
                        &admin_url,
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    ))
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the benchmark database {}", self.name);
        }
    }
}
