//! Management from the command line: `gateway agents|tokens|policies|plugins …` call a
//! running gateway's management API (`--url`, the admin key from `ADMIN_API_KEY`), print a
//! table for people or the server's JSON for scripts (`--json`), and on an error answer print
//! the server's status, code and message and exit 1.

mod http;
mod output;

pub use http::CliError;

use base64::Engine;
use clap::{Args, Subcommand};
use http::{admin_key, AdminApi};
use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Which gateway a management command talks to, and how it prints.
#[derive(Args, Debug)]
pub struct Target {
    /// Base URL of the gateway. The admin key comes from ADMIN_API_KEY (never a flag), or,
    /// for a development gateway on this machine, from <DATA_DIR>/dev-secrets.env.
    #[arg(
        long,
        env = "GATEWAY_URL",
        default_value = "http://127.0.0.1:3000",
        global = true
    )]
    pub url: String,
    /// Print the server's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `gateway agents …`.
#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// Register an agent; prints its id and (once only) its private key.
    Create {
        /// The agent's name.
        name: String,
        /// Its role (policies are chosen by role).
        #[arg(long)]
        role: String,
        /// Who registers it (recorded with the agent).
        #[arg(long, default_value = "cli")]
        created_by: String,
        /// Write the private key to this file (mode 0600) instead of printing it.
        #[arg(long)]
        key_out: Option<PathBuf>,
    },
    /// List agents.
    List {
        /// Most agents listed.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one agent.
    Show {
        /// The agent's id.
        id: String,
    },
    /// Suspend an agent: its tokens are revoked at once, on every instance.
    Suspend {
        /// The agent's id.
        id: String,
    },
    /// Make a suspended agent active again (it needs new tokens).
    Activate {
        /// The agent's id.
        id: String,
    },
}

/// `gateway tokens …`.
#[derive(Subcommand, Debug)]
pub enum TokensCommand {
    /// Mint a token for an agent (with the admin key).
    Mint {
        /// The agent's id.
        agent_id: String,
        /// Tools the token grants, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        tools: Vec<String>,
        /// Permissions, comma-separated: read, write, <tool>:<action> or <tool>:*.
        #[arg(long, value_delimiter = ',', default_value = "read")]
        permissions: Vec<String>,
        /// Lifetime in minutes.
        #[arg(long, default_value_t = 60)]
        ttl_minutes: u32,
    },
    /// Say whether a token is active, and whose it is.
    Introspect {
        /// The token (`-`: read it from standard input, which keeps it out of the shell's
        /// history and the process list).
        token: String,
    },
    /// Revoke a token by its id, on every instance.
    Revoke {
        /// The token's id.
        token_id: String,
    },
    /// List token records, newest first (never the tokens themselves).
    List {
        /// Only this agent's.
        #[arg(long)]
        agent: Option<String>,
        /// Most records listed.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

/// `gateway policies …`.
#[derive(Subcommand, Debug)]
pub enum PoliciesCommand {
    /// List the stored policies.
    List,
    /// Create a policy from a JSON file ({name, spec, agentId | role, …}), or update the one
    /// its `id` names.
    Apply {
        /// The policy's JSON file.
        file: PathBuf,
    },
    /// Delete a policy.
    Delete {
        /// The policy's id.
        id: String,
    },
}

/// `gateway plugins …`.
#[derive(Subcommand, Debug)]
pub enum PluginsCommand {
    /// List the loaded plugins (files and uploads) with their counters.
    List,
    /// Upload a plugin as a new version of NAME, live on every instance.
    Upload {
        /// The binding's name.
        name: String,
        /// The component (.wasm).
        file: PathBuf,
        /// The binding as JSON (the plugins.toml keys except plugin and name), or @FILE.
        #[arg(long, default_value = r#"{"tools":["*"]}"#)]
        binding: String,
        /// The signature `gateway plugin sign` wrote (default: FILE.sig when it exists).
        #[arg(long)]
        signature: Option<PathBuf>,
    },
    /// Bring back the version before the live upload of NAME.
    Rollback {
        /// The binding's name.
        name: String,
    },
}

/// A management command and its target.
#[derive(Debug)]
pub enum Management {
    /// `gateway agents`.
    Agents(AgentsCommand),
    /// `gateway tokens`.
    Tokens(TokensCommand),
    /// `gateway policies`.
    Policies(PoliciesCommand),
    /// `gateway plugins`.
    Plugins(PluginsCommand),
}

/// Runs `command` against `target`.
pub async fn run(target: &Target, command: Management) -> Result<(), CliError> {
    let api = AdminApi::new(&target.url, admin_key()?)?;
    let print = |value: &Value, people: &dyn Fn(&Value)| {
        if target.json {
            output::json(value)
        } else {
            people(value)
        }
    };
    match command {
        Management::Agents(command) => agents(&api, command, &print).await,
        Management::Tokens(command) => tokens(&api, command, &print).await,
        Management::Policies(command) => policies(&api, command, &print).await,
        Management::Plugins(command) => plugins(&api, command, &print).await,
    }
}

type Print<'a> = dyn Fn(&Value, &dyn Fn(&Value)) + 'a;

const AGENT_FIELDS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("ROLE", "role"),
    ("STATUS", "status"),
    ("CREATED", "createdAt"),
];

async fn agents(api: &AdminApi, command: AgentsCommand, print: &Print<'_>) -> Result<(), CliError> {
    match command {
        AgentsCommand::Create {
            name,
            role,
            created_by,
            key_out,
        } => {
            let mut body = api
                .call(
                    Method::POST,
                    "/api/create-agent",
                    Some(json!({"name": name, "role": role, "created_by": created_by})),
                )
                .await?;
            if let (Some(path), Some(key)) = (&key_out, body["private_key"].as_str()) {
                write_private(path, key)?;
                body["private_key"] = json!(format!("written to {}", path.display()));
            }
            print(&body, &|b| {
                output::fields(
                    b,
                    &[("agent_id", "agent_id"), ("private_key", "private_key")],
                )
            });
        }
        AgentsCommand::List { limit } => {
            let body = api
                .call(Method::GET, &format!("/api/agents?limit={limit}"), None)
                .await?;
            print(&body, &|b| {
                output::table(as_rows(&b["agents"]), AGENT_FIELDS)
            });
        }
        AgentsCommand::Show { id } => {
            let body = api.call(Method::GET, &agent_path(&id)?, None).await?;
            print(&body, &|b| output::fields(&b["agent"], AGENT_FIELDS));
        }
        AgentsCommand::Suspend { id } => set_status(api, &id, "suspended", print).await?,
        AgentsCommand::Activate { id } => set_status(api, &id, "active", print).await?,
    }
    Ok(())
}

async fn set_status(
    api: &AdminApi,
    id: &str,
    status: &str,
    print: &Print<'_>,
) -> Result<(), CliError> {
    let body = api
        .call(
            Method::PATCH,
            &agent_path(id)?,
            Some(json!({"status": status})),
        )
        .await?;
    print(&body, &|b| output::fields(&b["agent"], AGENT_FIELDS));
    Ok(())
}

async fn tokens(api: &AdminApi, command: TokensCommand, print: &Print<'_>) -> Result<(), CliError> {
    match command {
        TokensCommand::Mint {
            agent_id,
            tools,
            permissions,
            ttl_minutes,
        } => {
            let body = api
                .call(
                    Method::POST,
                    "/api/generate-token",
                    Some(json!({"agent_id": agent_id, "tools": tools,
                                "permissions": permissions, "ttl_minutes": ttl_minutes})),
                )
                .await?;
            print(&body, &|b| {
                output::fields(
                    b,
                    &[
                        ("agent_token", "agent_token"),
                        ("token_id", "token_id"),
                        ("expires_at", "expires_at"),
                    ],
                )
            });
        }
        TokensCommand::Introspect { token } => {
            let token = if token == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut std::io::Read::take(std::io::stdin(), 64 * 1024),
                    &mut text,
                )
                .map_err(|e| CliError::Other(format!("reading the token: {e}")))?;
                text.trim().to_string()
            } else {
                token
            };
            let body = api
                .call(
                    Method::POST,
                    "/api/admin/tokens/introspect",
                    Some(json!({"agent_token": token})),
                )
                .await?;
            print(&body, &|b| {
                output::fields(
                    b,
                    &[
                        ("active", "active"),
                        ("reason", "reason"),
                        ("token_id", "token_id"),
                        ("agent_id", "agent_id"),
                        ("tools", "tools"),
                        ("permissions", "permissions"),
                        ("expires_at", "expires_at"),
                    ],
                )
            });
        }
        TokensCommand::Revoke { token_id } => {
            let id = path_segment(&token_id)?;
            let body = api
                .call(
                    Method::POST,
                    &format!("/api/admin/tokens/{id}/revoke"),
                    None,
                )
                .await?;
            print(&body, &|b| {
                output::fields(b, &[("revoked", "tokenId"), ("at", "revokedAt")])
            });
        }
        TokensCommand::List { agent, limit } => {
            let mut path = format!("/api/admin/tokens?limit={limit}");
            if let Some(agent) = agent {
                path += &format!("&agentId={}", path_segment(&agent)?);
            }
            let body = api.call(Method::GET, &path, None).await?;
            print(&body, &|b| {
                output::table(
                    as_rows(b),
                    &[
                        ("TOKEN_ID", "tokenId"),
                        ("AGENT", "agentId"),
                        ("TOOLS", "tools"),
                        ("EXPIRES", "expiresAt"),
                        ("REVOKED", "isRevoked"),
                    ],
                )
            });
        }
    }
    Ok(())
}

async fn policies(
    api: &AdminApi,
    command: PoliciesCommand,
    print: &Print<'_>,
) -> Result<(), CliError> {
    const FIELDS: &[(&str, &str)] = &[
        ("ID", "id"),
        ("NAME", "name"),
        ("AGENT", "agentId"),
        ("ROLE", "role"),
        ("ACTIVE", "active"),
        ("UPDATED", "updatedAt"),
    ];
    match command {
        PoliciesCommand::List => {
            let body = api.call(Method::GET, "/api/policies", None).await?;
            print(&body, &|b| output::table(as_rows(b), FIELDS));
        }
        PoliciesCommand::Apply { file } => {
            let text = read(&file)?;
            let mut policy: Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Other(format!("{}: not JSON: {e}", file.display())))?;
            let body = match policy.as_object_mut().and_then(|p| p.remove("id")) {
                Some(Value::String(id)) => {
                    // An update takes the fields a policy may change; its owner stays.
                    if let Some(fields) = policy.as_object_mut() {
                        fields.retain(|k, _| {
                            matches!(k.as_str(), "name" | "description" | "spec" | "active")
                        });
                    }
                    let path = format!("/api/policies/{}", path_segment(&id)?);
                    api.call(Method::PATCH, &path, Some(policy)).await?
                }
                Some(_) => return Err(CliError::Other("id: a policy id is a string".into())),
                None => {
                    api.call(Method::POST, "/api/policies", Some(policy))
                        .await?
                }
            };
            print(&body, &|b| output::fields(b, FIELDS));
        }
        PoliciesCommand::Delete { id } => {
            let path = format!("/api/policies/{}", path_segment(&id)?);
            let body = api.call(Method::DELETE, &path, None).await?;
            print(&body, &|_| {
                let _ = std::io::Write::write_all(
                    &mut std::io::stdout(),
                    format!("deleted {id}\n").as_bytes(),
                );
            });
        }
    }
    Ok(())
}

async fn plugins(
    api: &AdminApi,
    command: PluginsCommand,
    print: &Print<'_>,
) -> Result<(), CliError> {
    match command {
        PluginsCommand::List => {
            let body = api.call(Method::GET, "/api/admin/plugins", None).await?;
            print(&body, &|b| {
                output::table(
                    as_rows(&b["plugins"]),
                    &[
                        ("NAME", "name"),
                        ("SOURCE", "source"),
                        ("VERSION", "upload_version"),
                        ("WORLD", "world"),
                        ("TOOLS", "tools"),
                        ("SHA256", "sha256"),
                    ],
                )
            });
        }
        PluginsCommand::Upload {
            name,
            file,
            binding,
            signature,
        } => {
            let wasm = std::fs::read(&file)
                .map_err(|e| CliError::Other(format!("{}: {e}", file.display())))?;
            let binding_text = match binding.strip_prefix('@') {
                Some(path) => read(&PathBuf::from(path))?,
                None => binding,
            };
            let binding: Value = serde_json::from_str(&binding_text)
                .map_err(|e| CliError::Other(format!("--binding: not JSON: {e}")))?;
            let signature_file = signature.or_else(|| {
                let default = PathBuf::from(format!("{}.sig", file.display()));
                default.exists().then_some(default)
            });
            let mut body = json!({
                "wasm_base64": base64::engine::general_purpose::STANDARD.encode(wasm),
                "binding": binding,
            });
            if let Some(path) = signature_file {
                let signature: Value = serde_json::from_str(&read(&path)?)
                    .map_err(|e| CliError::Other(format!("{}: not JSON: {e}", path.display())))?;
                body["signature"] = signature;
            }
            let path = format!("/api/admin/plugins/{}", path_segment(&name)?);
            let answer = api.call(Method::PUT, &path, Some(body)).await?;
            print(&answer, &|b| {
                output::fields(
                    b,
                    &[
                        ("name", "name"),
                        ("version", "version"),
                        ("world", "world"),
                        ("sha256", "sha256"),
                    ],
                )
            });
        }
        PluginsCommand::Rollback { name } => {
            let path = format!("/api/admin/plugins/{}/rollback", path_segment(&name)?);
            let body = api.call(Method::POST, &path, None).await?;
            print(&body, &|b| {
                output::fields(b, &[("name", "name"), ("live version", "version")])
            });
        }
    }
    Ok(())
}

fn as_rows(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// `id` as one URL path segment: anything else is refused before a call is made.
fn path_segment(id: &str) -> Result<&str, CliError> {
    if !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && id != "."
        && id != ".."
    {
        Ok(id)
    } else {
        Err(CliError::Other(format!("not a valid id: {id:?}")))
    }
}

fn agent_path(id: &str) -> Result<String, CliError> {
    Ok(format!("/api/agents/{}", path_segment(id)?))
}

fn read(path: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| CliError::Other(format!("{}: {e}", path.display())))
}

/// Writes a private key readable by its owner only.
fn write_private(path: &PathBuf, key: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(key.as_bytes()))
        .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::path_segment;

    #[test]
    fn ids_stay_one_path_segment() {
        assert!(path_segment("0b6c9a1e-1f2a-4c3d-9e8f-000000000001").is_ok());
        for bad in ["", "..", "a/b", "a?b=c", "a b", "%2e%2e"] {
            assert!(path_segment(bad).is_err(), "{bad}");
        }
    }
}
