//! The README's walkthrough from an agent's side, end to end:
//!
//! ```sh
//! make run                                   # in another terminal
//! ADMIN_API_KEY=<key> cargo run -p gateway-client --example agent
//! ```
//!
//! The operator's part (creating the agent) uses the admin key; everything after it is the
//! agent alone, with its private key: it mints its own token, searches, and is refused a tool
//! its token does not grant.

use gateway_client::{AgentClient, ErrorKind};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::var("GATEWAY_URL").unwrap_or_else(|_| "http://127.0.0.1:3000".into());
    let admin_key = std::env::var("ADMIN_API_KEY").map_err(|_| "set ADMIN_API_KEY")?;

    // The operator registers the agent and hands it its id and private key.
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/create-agent"))
        .bearer_auth(admin_key)
        .json(&json!({"name": "example-agent", "created_by": "example", "role": "scraper"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let agent_id = created["agent_id"].as_str().ok_or("no agent_id")?;
    let private_key = created["private_key"].as_str().ok_or("no private_key")?;
    println!("agent {agent_id} created");

    // From here on, only the agent's own key.
    let agent = AgentClient::builder(&base, agent_id, private_key)
        .tools(["serpapi"])
        .ttl_minutes(15)
        .build()?;
    let answer = agent
        .call("serpapi", "search", json!({"q": "secure tool gateways"}))
        .await?;
    println!(
        "search answered {} (correlation id {}, cached: {})",
        answer.status, answer.correlation_id, answer.cached
    );
    println!("{}", serde_json::to_string_pretty(&answer.body["data"])?);

    match agent
        .call(
            "openai",
            "chat",
            json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await
    {
        Err(e) if e.kind() == Some(&ErrorKind::NotGranted) => {
            println!("openai refused, as the token does not grant it: {e}")
        }
        other => println!("openai: {other:?}"),
    }
    Ok(())
}
