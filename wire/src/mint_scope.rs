//! The most an agent's tokens may grant: tools, permissions and lifetime, set by the
//! operator per agent (or, until set, derived from the agent's role). Agent-signed mints
//! never exceed it; admin mints exceed it only when they say so.

use crate::catalog::{Permission, ToolName};
use serde::{Deserialize, Serialize};

/// An agent's maximum token scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MintScope {
    /// Tools its tokens may grant.
    pub tools: Vec<ToolName>,
    /// Permissions its tokens may grant.
    pub permissions: Vec<Permission>,
    /// Longest lifetime of its tokens, in minutes (`None`: the gateway's
    /// `TOKEN_MAX_TTL_MINUTES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttl_minutes: Option<u32>,
}

/// What a mint asks beyond a scope, for the refusal's message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Excess {
    /// Tools outside the scope.
    pub tools: Vec<ToolName>,
    /// Permissions outside the scope.
    pub permissions: Vec<Permission>,
    /// A lifetime over the scope's, in minutes: (asked, allowed).
    pub ttl_minutes: Option<(i64, u32)>,
}

impl Excess {
    /// True when nothing is beyond the scope.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.permissions.is_empty() && self.ttl_minutes.is_none()
    }

    /// What is beyond the scope, in words.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.tools.is_empty() {
            let names: Vec<&str> = self.tools.iter().map(|t| t.as_str()).collect();
            parts.push(format!("tools {}", names.join(", ")));
        }
        if !self.permissions.is_empty() {
            let names: Vec<String> = self.permissions.iter().map(|p| p.to_string()).collect();
            parts.push(format!("permissions {}", names.join(", ")));
        }
        if let Some((asked, allowed)) = self.ttl_minutes {
            parts.push(format!("a lifetime of {asked} minutes (at most {allowed})"));
        }
        parts.join("; ")
    }
}

impl MintScope {
    /// The scope of an agent of `role` whose operator set none: for the original gateway's
    /// roles, the tools of the role's default policy with the permissions their actions
    /// need; for any other role every tool and permission, as the original allowed (set a
    /// scope on such agents to bound their self-minted tokens).
    pub fn for_role(role: &str) -> Self {
        use Permission::{Read, Write};
        use ToolName::{GmailSend, HttpFetch, Openai, Serpapi};
        let (tools, permissions) = match role {
            "scraper" => (vec![Serpapi, HttpFetch], vec![Read]),
            "enricher" => (vec![HttpFetch, Openai], vec![Read]),
            "engager" => (vec![GmailSend], vec![Read, Write]),
            _ => (ToolName::ALL.to_vec(), Permission::ALL.to_vec()),
        };
        Self {
            tools,
            permissions,
            max_ttl_minutes: None,
        }
    }

    /// Checks a scope an operator sets: at least one tool and permission, no repeats, and a
    /// lifetime of 1 to `gateway_max_ttl` minutes.
    pub fn validate(&self, gateway_max_ttl: u32) -> Result<(), String> {
        if self.tools.is_empty() || self.permissions.is_empty() {
            return Err(
                "max_scope: tools and permissions must each name at least one entry".into(),
            );
        }
        let repeats = |n: usize, unique: usize| n != unique;
        let mut tools = self.tools.clone();
        tools.sort_by_key(|t| t.as_str());
        tools.dedup();
        let mut permissions = self.permissions.clone();
        permissions.sort_by_key(|p| p.to_string());
        permissions.dedup();
        if repeats(self.tools.len(), tools.len())
            || repeats(self.permissions.len(), permissions.len())
        {
            return Err("max_scope: tools and permissions must not repeat".into());
        }
        if let Some(ttl) = self.max_ttl_minutes {
            if ttl == 0 || ttl > gateway_max_ttl {
                return Err(format!(
                    "max_scope.max_ttl_minutes: from 1 to {gateway_max_ttl} (TOKEN_MAX_TTL_MINUTES)"
                ));
            }
        }
        Ok(())
    }

    /// What a mint of `tools`, `permissions` and `ttl_minutes` asks beyond this scope,
    /// `gateway_max_ttl` standing in for an unset lifetime.
    pub fn excess(
        &self,
        tools: &[ToolName],
        permissions: &[Permission],
        ttl_minutes: i64,
        gateway_max_ttl: u32,
    ) -> Excess {
        let allowed_ttl = self.max_ttl_minutes.unwrap_or(gateway_max_ttl);
        Excess {
            tools: tools
                .iter()
                .filter(|t| !self.tools.contains(t))
                .copied()
                .collect(),
            permissions: permissions
                .iter()
                .filter(|p| !self.permissions.iter().any(|m| m.includes(**p)))
                .copied()
                .collect(),
            ttl_minutes: (ttl_minutes > i64::from(allowed_ttl))
                .then_some((ttl_minutes, allowed_ttl)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::{Read, Write};
    use ToolName::{GmailSend, HttpFetch, Openai, Serpapi};

    #[test]
    fn the_original_roles_are_bounded_by_their_default_policy() {
        let scraper = MintScope::for_role("scraper");
        assert!(scraper
            .excess(&[Serpapi, HttpFetch], &[Read], 60, 1440)
            .is_empty());
        let wider = scraper.excess(&ToolName::ALL, &[Read, Write], 60, 1440);
        assert_eq!(wider.tools, vec![Openai, GmailSend]);
        assert_eq!(wider.permissions, vec![Write]);
        assert!(MintScope::for_role("engager")
            .excess(&[GmailSend], &[Write], 60, 1440)
            .is_empty());
        assert!(MintScope::for_role("custom")
            .excess(&ToolName::ALL, &Permission::ALL, 1440, 1440)
            .is_empty());
    }

    #[test]
    fn a_lifetime_over_the_scope_is_an_excess() {
        let scope = MintScope {
            tools: vec![Serpapi],
            permissions: vec![Read],
            max_ttl_minutes: Some(30),
        };
        let excess = scope.excess(&[Serpapi], &[Read], 31, 1440);
        assert_eq!(excess.ttl_minutes, Some((31, 30)));
        assert!(excess.describe().contains("at most 30"));
        assert!(scope.excess(&[Serpapi], &[Read], 30, 1440).is_empty());
        let unset = MintScope::for_role("scraper");
        assert_eq!(
            unset.excess(&[Serpapi], &[Read], 1441, 1440).ttl_minutes,
            Some((1441, 1440))
        );
    }

    #[test]
    fn an_operator_scope_is_checked() {
        let scope = |tools: Vec<ToolName>, permissions: Vec<Permission>, ttl| MintScope {
            tools,
            permissions,
            max_ttl_minutes: ttl,
        };
        assert!(scope(vec![Serpapi], vec![Read], Some(60))
            .validate(1440)
            .is_ok());
        assert!(scope(vec![], vec![Read], None).validate(1440).is_err());
        assert!(scope(vec![Serpapi, Serpapi], vec![Read], None)
            .validate(1440)
            .is_err());
        assert!(scope(vec![Serpapi], vec![Read], Some(0))
            .validate(1440)
            .is_err());
        assert!(scope(vec![Serpapi], vec![Read], Some(1441))
            .validate(1440)
            .is_err());
    }
}
