//! Before the load: the scenario's agents are created through the API with the admin key,
//! each with a policy of its own when the scenario gives scopes, and a token each; then the
//! bench waits until the gateway's live policies allow every step that expects a 200, so that
//! the first seconds of the load do not measure a policy refresh.

use crate::load::scenario::{AgentSpec, Scenario};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// An agent ready to send requests.
#[derive(Debug, Clone)]
pub struct ReadyAgent {
    /// Agent id.
    pub id: String,
    /// Token sent with each request.
    pub token: String,
}

/// Longest wait for the live policies to show the new agents' policies.
const POLICY_WAIT: Duration = Duration::from_secs(15);

/// Creates the agents, their policies and tokens; returns them by scenario key.
pub async fn prepare(
    client: &reqwest::Client,
    base: &str,
    admin_key: &str,
    scenario: &Scenario,
    run_id: &str,
) -> anyhow::Result<BTreeMap<String, ReadyAgent>> {
    let run_minutes = scenario.duration().as_secs().div_ceil(60) as u32;
    let mut agents = BTreeMap::new();
    for spec in &scenario.agents {
        let agent = create(client, base, admin_key, spec, run_id, run_minutes)
            .await
            .with_context(|| format!("setting up agent {:?}", spec.key))?;
        agents.insert(spec.key.clone(), agent);
    }
    wait_for_policies(client, base, admin_key, scenario, &agents).await?;
    Ok(agents)
}

async fn post(
    client: &reqwest::Client,
    url: String,
    admin_key: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let response = client
        .post(&url)
        .bearer_auth(admin_key)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// Creates one agent, its policy (when the spec gives scopes) and a token that outlives a
/// run of `run_minutes`.
pub async fn create(
    client: &reqwest::Client,
    base: &str,
    admin_key: &str,
    spec: &AgentSpec,
    run_id: &str,
    run_minutes: u32,
) -> anyhow::Result<ReadyAgent> {
    let agent = post(
        client,
        format!("{base}/api/create-agent"),
        admin_key,
        json!({"name": format!("{}-{run_id}", spec.name), "created_by": "bench", "role": spec.role}),
    )
    .await?;
    let id = agent["agent_id"]
        .as_str()
        .context("create-agent: no agent_id")?
        .to_string();
    if !spec.scopes.is_empty() {
        post(
            client,
            format!("{base}/api/policies"),
            admin_key,
            json!({"name": format!("bench {} {run_id}", spec.key), "agentId": id,
                   "spec": {"scopes": spec.scopes}}),
        )
        .await?;
    }
    // The token outlives the run: the bench measures the gateway, not token expiry.
    let ttl = spec.ttl_minutes.max(run_minutes + 5);
    let token = post(
        client,
        format!("{base}/api/generate-token"),
        admin_key,
        json!({"agent_id": id, "tools": spec.tools, "permissions": spec.permissions, "ttl_minutes": ttl}),
    )
    .await?;
    let token = token["agent_token"]
        .as_str()
        .context("generate-token: no agent_token")?
        .to_string();
    Ok(ReadyAgent { id, token })
}

/// Polls the dry-run endpoint until every step expecting a 200 is allowed by the live policies.
async fn wait_for_policies(
    client: &reqwest::Client,
    base: &str,
    admin_key: &str,
    scenario: &Scenario,
    agents: &BTreeMap<String, ReadyAgent>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + POLICY_WAIT;
    for step in scenario.steps().filter(|s| s.expect.contains(&200)) {
        let spec = scenario
            .agents
            .iter()
            .find(|a| a.key == step.agent)
            .context("agent")?;
        let body = json!({
            "agent_id": agents[&step.agent].id, "agent_name": spec.name, "agent_role": spec.role,
            "tool": step.tool, "action": step.action, "params": step.params,
            "token_tools": spec.tools, "token_permissions": spec.permissions,
        });
        loop {
            let answer = post(
                client,
                format!("{base}/api/admin/plugins/evaluate"),
                admin_key,
                body.clone(),
            )
            .await?;
            if answer["policy"]["decision"] == "allow" {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "step {:?}: the gateway's policies still refuse it after {POLICY_WAIT:?}: {}",
                    step.name,
                    answer["policy"]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
