//! The `gateway` command: serve the API, apply migrations, or generate secrets.

use clap::{Args, Parser, Subcommand};
use gateway::admin_cli::{self, Management};
use gateway::config::{generate_secret_lines, Config, Environment, Settings};
use gateway::store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc rather than glibc's allocator: requests allocate on one worker thread and often
/// free on another (tasks move between workers, audit rows are written by the writer), and
/// glibc then takes the owning arena's lock. Measured with `bench proxy` (BENCHMARKS.md):
/// about 8 % less CPU per proxied request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `print!` that survives a closed standard output (`gateway plugin test … | head`): what
/// cannot be written is dropped instead of the process panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `println!` likewise.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

const SECRETS_HELP: &str = "\
Secrets are read from the environment only (or a .env file), never from flags:
  KEK_BASE64               32 random bytes in base64: encrypts secrets stored at rest
  SIGNING_SECRET           at least 32 bytes: seals agent tokens
  SIGNING_SECRET_PREVIOUS  optional: the previous SIGNING_SECRET, still accepted while rotating
  ADMIN_API_KEY            at least 24 characters: 'Authorization: Bearer <key>' for management
In development, missing secrets are generated once into <DATA_DIR>/dev-secrets.env (mode 0600).
In production, a missing or malformed secret stops the start. `gateway keys generate` prints
fresh values.";

const MANAGEMENT_HELP: &str = "\
Exit status: 0 done; 1 failed here (gateway unreachable, file unreadable, no admin key);
2 usage error; 3 the gateway refused: its status, code and message are printed on stderr
(with --json, its JSON answer as it came).";

/// 4RUNR Gateway: lets AI agents call external tools without holding the tools' credentials.
#[derive(Parser)]
#[command(name = "gateway", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the gateway (applies pending migrations first).
    #[command(after_help = SECRETS_HELP)]
    Serve(Box<Settings>),
    /// Apply pending database migrations and exit.
    Migrate(MigrateArgs),
    /// Key material.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inspect or try a WebAssembly plugin, outside any gateway.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Manage a running gateway's agents (create, list, show, suspend, activate).
    #[command(after_help = MANAGEMENT_HELP)]
    Agents {
        #[command(flatten)]
        target: admin_cli::Target,
        #[command(subcommand)]
        command: admin_cli::AgentsCommand,
    },
    /// Manage a running gateway's tokens (mint, introspect, revoke, list).
    #[command(after_help = MANAGEMENT_HELP)]
    Tokens {
        #[command(flatten)]
        target: admin_cli::Target,
        #[command(subcommand)]
        command: admin_cli::TokensCommand,
    },
    /// Manage a running gateway's stored policies (list, apply a file, delete).
    #[command(after_help = MANAGEMENT_HELP)]
    Policies {
        #[command(flatten)]
        target: admin_cli::Target,
        #[command(subcommand)]
        command: admin_cli::PoliciesCommand,
    },
    /// Manage a running gateway's uploaded plugins (list, upload, rollback).
    #[command(after_help = MANAGEMENT_HELP)]
    Plugins {
        #[command(flatten)]
        target: admin_cli::Target,
        #[command(subcommand)]
        command: admin_cli::PluginsCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Write a new plugin crate (policy or chaos): source with an example rule, native
    /// tests, an example request and configuration, and a plugins.toml binding.
    New {
        /// The plugin's name: 1 to 64 of a-z, 0-9 and '-', starting with a letter.
        name: String,
        /// What the plugin decides: allow or deny calls (policy), or faults (chaos).
        #[arg(long, value_enum, default_value_t = WorldArg::Policy)]
        world: WorldArg,
        /// Where to create the crate's directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The plugin SDK (the gateway's `sdk/` directory); defaults to the one this gateway
        /// was built from.
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Validate a plugin and print its world, contract version, exports, size, sha256 and
    /// who signed it (its FILE.wasm.sig, judged against PLUGIN_TRUSTED_KEYS).
    Check {
        /// The plugin's .wasm file.
        file: PathBuf,
        /// Trusted public keys, comma-separated `ed25519:<base64>`.
        #[arg(long, env = "PLUGIN_TRUSTED_KEYS", default_value = "")]
        trusted_keys: String,
    },
    /// Sign a plugin: a detached ed25519 signature over its name, version and bytes, written
    /// to FILE.wasm.sig (gateways trusting the key load it; production requires one).
    Sign {
        /// The plugin's .wasm file.
        file: PathBuf,
        /// The private key file (`gateway keys generate --plugin-signing` makes one).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signature (default: FILE.wasm.sig).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Allow only bindings of this name (repeat for several; default: any). A gateway
        /// refuses the plugin under another binding name.
        #[arg(long = "binding", value_name = "NAME")]
        bindings: Vec<String>,
        /// Allow only bindings to these tools (comma-separated, `*` for a binding to every
        /// tool; default: any).
        #[arg(long, value_delimiter = ',', value_name = "TOOLS")]
        tools: Vec<String>,
        /// Allow only bindings with this failure mode (default: any).
        #[arg(long, value_enum)]
        fail: Option<gateway::plugins::manifest::FailMode>,
    },
    /// Run a plugin once on a request; exit 0 when it answered, 2 when it failed.
    Test {
        /// The plugin's .wasm file.
        file: PathBuf,
        /// The request record (JSON, snake_case fields of the WIT `request` record).
        #[arg(long)]
        request: PathBuf,
        /// The plugin configuration: a JSON object (one document, as a binding's `config`)
        /// or an array of them, most general first (stored policies, as
        /// `config_from = "policies"` hands them); `{}` when absent.
        #[arg(long)]
        config: Option<PathBuf>,
        /// A tool's answer (JSON, its `data`): a policy's `filter-response` then runs on it,
        /// and the report shows what the agent would receive.
        #[arg(long)]
        response: Option<PathBuf>,
        /// CPU-time budget of the call in milliseconds (1 to 100, as in `plugins.toml`).
        #[arg(long, default_value_t = 10,
              value_parser = clap::value_parser!(u64).range(1..=gateway::plugins::manifest::MAX_TIMEOUT_MS))]
        timeout_ms: u64,
        /// Memory cap in MiB (1 to 64).
        #[arg(long, default_value_t = 16)]
        memory_mb: u64,
    },
}

/// A plugin world, as `plugin new` takes it.
#[derive(Clone, Copy, clap::ValueEnum)]
enum WorldArg {
    /// Allows or denies calls, may filter responses.
    Policy,
    /// Injects faults.
    Chaos,
}

#[derive(Args)]
struct MigrateArgs {
    /// Database: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/gateway.db",
        hide_env_values = true
    )]
    database_url: String,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print fresh KEK_BASE64, SIGNING_SECRET and ADMIN_API_KEY lines for an env file.
    Generate {
        /// Print a plugin-signing key pair instead: the private key (for `gateway plugin
        /// sign --key FILE`) and the PLUGIN_TRUSTED_KEYS line for gateways.
        #[arg(long)]
        plugin_signing: bool,
    },
}

fn main() -> ExitCode {
    // A .env file in the working directory fills in variables the environment lacks.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(settings) => runtime.block_on(serve(*settings)),
        Command::Migrate(args) => runtime.block_on(migrate(args)),
        Command::Keys {
            command: KeysCommand::Generate { plugin_signing },
        } => {
            if plugin_signing {
                let (private, public) = gateway::plugins::signing::generate();
                outln!("# Private: save this line alone in a file (mode 0600) for `gateway plugin sign --key FILE`.");
                outln!("{private}");
                outln!("# Public: add to PLUGIN_TRUSTED_KEYS (comma-separated) on every gateway.");
                outln!("PLUGIN_TRUSTED_KEYS={public}");
            } else {
                out!("{}", generate_secret_lines());
            }
            Ok(())
        }
        Command::Plugin { command } => return runtime.block_on(plugin_command(command)),
        Command::Agents { target, command } => {
            return manage(&runtime, &target, Management::Agents(command))
        }
        Command::Tokens { target, command } => {
            return manage(&runtime, &target, Management::Tokens(command))
        }
        Command::Policies { target, command } => {
            return manage(&runtime, &target, Management::Policies(command))
        }
        Command::Plugins { target, command } => {
            return manage(&runtime, &target, Management::Plugins(command))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a management command; an error prints the server's status, code and message (its
/// JSON answer under `--json`) and exits 3 when the gateway refused, 1 when the command
/// failed here.
fn manage(
    runtime: &tokio::runtime::Runtime,
    target: &admin_cli::Target,
    command: Management,
) -> ExitCode {
    match runtime.block_on(admin_cli::run(target, command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if target.json {
                eprintln!("{}", e.to_json());
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_status())
        }
    }
}

/// Test hook: shifts the times this process stamps into the database by this many ms, so a
/// cluster test can run one instance with a wrong clock. Not a setting: never in `--help`.
const CLOCK_SKEW_VARIABLE: &str = "GATEWAY_TEST_CLOCK_SKEW_MS";

async fn serve(settings: Settings) -> anyhow::Result<()> {
    gateway::telemetry::init(settings.log_format);
    let mut host = gateway::app::Host::new()?;
    if let Some(skew) = std::env::var(CLOCK_SKEW_VARIABLE)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        host.clock = gateway::clock::Clock::shifted(skew);
        tracing::warn!(
            skew_ms = skew,
            "{CLOCK_SKEW_VARIABLE} is set: this instance's clock is shifted (for tests only)"
        );
    }
    let config = Config::resolve(settings)?;
    let settings = &config.settings;
    if settings.environment == Environment::Development {
        // Shown only when this start made it up: a key given in the environment, or kept
        // in the development secrets file, is already known to whoever set it.
        if config.secrets.generated {
            eprintln!(
                "development mode: admin API key generated now (kept in {}): {}",
                settings.data_dir.join("dev-secrets.env").display(),
                config.secrets.admin_api_key.as_str()
            );
        } else {
            eprintln!(
                "development mode: admin API key from the environment or {}",
                settings.data_dir.join("dev-secrets.env").display()
            );
        }
    }
    let address = SocketAddr::new(settings.bind, settings.port);
    let app = gateway::app::build(config.clone(), host).await?;
    let listener = gateway::server::listen(address)
        .map_err(|e| anyhow::anyhow!("cannot listen on {address} (PORT/BIND): {e}"))?;
    tracing::info!(%address, environment = ?config.settings.environment,
        database = backend_name(&app.state.store), redis = config.settings.redis_url.is_some(),
        "gateway listening");
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("gateway stopped");
    Ok(())
}

async fn plugin_command(command: PluginCommand) -> ExitCode {
    use gateway::plugins::cli;
    match command {
        PluginCommand::New {
            name,
            world,
            dir,
            sdk,
        } => {
            use gateway::plugins::{scaffold, World};
            let world = match world {
                WorldArg::Policy => World::Policy,
                WorldArg::Chaos => World::Chaos,
            };
            let Some(sdk) = sdk.or_else(scaffold::default_sdk_dir) else {
                eprintln!("error: the plugin SDK this gateway was built from is gone; give --sdk DIR (the gateway's sdk/ directory)");
                return ExitCode::FAILURE;
            };
            match scaffold::create(&name, world, &dir, &sdk) {
                Ok(created) => {
                    outln!("{}", created.next_steps);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        PluginCommand::Sign {
            file,
            key,
            out,
            bindings,
            tools,
            fail,
        } => {
            let scope = gateway::plugins::signing::SignedScope {
                bindings,
                tools,
                fail,
            };
            print_report(
                tokio::task::spawn_blocking(move || cli::sign(&file, &key, out.as_deref(), scope))
                    .await,
            )
        }
        PluginCommand::Check { file, trusted_keys } => print_report(
            tokio::task::spawn_blocking(move || cli::check(&file, &trusted_keys)).await,
        ),
        PluginCommand::Test {
            file,
            request,
            config,
            response,
            timeout_ms,
            memory_mb,
        } => {
            let limits = cli::limits(timeout_ms, memory_mb);
            match cli::test(
                &file,
                &request,
                config.as_deref(),
                response.as_deref(),
                limits,
            )
            .await
            {
                Ok(outcome) => {
                    outln!("{}", outcome.report);
                    if outcome.answered {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(2)
                    }
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Prints a blocking command's report, or its error: the exit code to return.
fn print_report(result: Result<anyhow::Result<String>, tokio::task::JoinError>) -> ExitCode {
    match result {
        Ok(Ok(report)) => {
            out!("{report}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database_url).await?;
    store.migrate().await?;
    store.close().await;
    eprintln!("migrations applied");
    Ok(())
}

fn backend_name(store: &Store) -> &'static str {
    match store.backend() {
        gateway::store::Backend::Sqlite => "sqlite",
        gateway::store::Backend::Postgres => "postgres",
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}
