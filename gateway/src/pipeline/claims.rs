//! Step 3: the token's claims grant the tool and the action's permission, and the tool
//! has what it needs to be called.

use crate::catalog::ActionSpec;
use crate::crypto::token::Claims;
use crate::error::{ApiError, Refusal};
use crate::tools::Tools;

/// Whether `claims` may call `action`, and the tool can answer.
pub(super) fn check(claims: &Claims, action: &ActionSpec, tools: &Tools) -> Result<(), ApiError> {
    check_claims(claims, action)?;
    if !tools.is_configured(action.tool) {
        return Err(ApiError::new(
            Refusal::ToolNotConfigured,
            format!(
                "{} not configured - no active credential found",
                action.tool
            ),
        ));
    }
    Ok(())
}

fn check_claims(claims: &Claims, action: &ActionSpec) -> Result<(), ApiError> {
    let tool = action.tool;
    if !claims.tools.contains(&tool) {
        return Err(ApiError::new(
            Refusal::ToolNotGranted,
            format!("Token does not grant the tool {tool}"),
        ));
    }
    if !claims.permissions.iter().any(|p| p.covers(action)) {
        return Err(ApiError::new(
            Refusal::PermissionNotGranted,
            format!(
                "Token does not grant {tool}.{}: it needs {}, {tool}:{} or {tool}:*",
                action.action, action.permission, action.action
            ),
        ));
    }
    Ok(())
}
