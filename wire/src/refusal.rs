//! Every refusal the gateway answers, once: its stable code, HTTP status, the stage that
//! counts it in `gateway_refusals_total{stage, code}` (for a proxied call's refusals) and
//! what it means. Everything else — the server's answers, the metric's series, the client's
//! error kinds, the docs' table — is derived from [`Refusal::ALL`].

/// The stage of a proxied call that refused it (the `stage` label of
/// `gateway_refusals_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The token or the caller's proof of identity.
    Token,
    /// The token's claims (tools and permissions).
    Claims,
    /// The rate limits.
    RateLimit,
    /// The policy plugins.
    Policy,
}

impl Stage {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Token => "token",
            Stage::Claims => "claims",
            Stage::RateLimit => "rate_limit",
            Stage::Policy => "policy",
        }
    }
}

macro_rules! refusals {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal, $stage:expr, $meaning:literal), )+) => {
        /// A refusal: everything the gateway answers that is not a success.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Refusal {
            $( $(#[$doc])* #[doc = $meaning] $variant, )+
        }

        impl Refusal {
            /// Every refusal, in the order of the docs' table.
            pub const ALL: &'static [Refusal] = &[$(Refusal::$variant),+];

            /// The stable, machine-readable code (the envelope's `code`).
            pub const fn code(self) -> &'static str {
                match self { $(Refusal::$variant => $code,)+ }
            }

            /// The HTTP status it is answered with.
            pub const fn status(self) -> u16 {
                match self { $(Refusal::$variant => $status,)+ }
            }

            /// The stage that counts it, for a proxied call's refusals.
            pub const fn stage(self) -> Option<Stage> {
                match self { $(Refusal::$variant => $stage,)+ }
            }

            /// What it means, in one sentence (the docs' table).
            pub const fn meaning(self) -> &'static str {
                match self { $(Refusal::$variant => $meaning,)+ }
            }
        }
    };
}

use Stage::{Claims, Policy, RateLimit, Token};

refusals! {
    // Reading the request.
    InvalidJson = ("invalid_json", 400, None, "The proxy request's body is not JSON."),
    MalformedJson = ("malformed_json", 400, None, "A management request's body is not JSON."),
    InvalidBody = ("invalid_body", 400, None, "The body is JSON of the wrong shape (a field of the wrong type, an unknown field)."),
    MissingBody = ("missing_body", 400, None, "The request needs a JSON body and has none."),
    UnreadableBody = ("unreadable_body", 400, None, "The body could not be read to its end."),
    InvalidText = ("invalid_text", 400, None, "A text in the path, query or body holds a NUL character."),
    InvalidPath = ("invalid_path", 400, None, "A path segment is not valid percent-encoded UTF-8."),
    InvalidQuery = ("invalid_query", 400, None, "The query string names an unknown parameter or has a bad value."),
    MissingFields = ("missing_fields", 400, None, "A required field is missing."),
    ValidationFailed = ("validation_failed", 400, None, "The request is well-formed but some values are invalid; `details` lists them."),
    UnsupportedTool = ("unsupported_tool", 400, None, "The tool is not one the gateway knows."),
    UnsupportedAction = ("unsupported_action", 400, None, "The action is not one the tool has."),
    InvalidParams = ("invalid_params", 400, None, "The action's parameters do not match its schema."),
    InvalidTokenId = ("invalid_token_id", 400, None, "`token_id` is not a token id."),
    ProofPayloadRequired = ("proof_payload_required", 400, None, "`token_id` was sent without `proof_payload`."),
    PayloadTooLarge = ("payload_too_large", 413, None, "The body is over the route's size limit."),
    UnsupportedMediaType = ("unsupported_media_type", 415, None, "The body is not `application/json`."),
    BodyTimeout = ("body_timeout", 408, None, "The body did not arrive in time."),
    NotFound = ("not_found", 404, None, "No route has this path."),
    MethodNotAllowed = ("method_not_allowed", 405, None, "The route does not take this method."),

    // Who is calling.
    Unauthorized = ("unauthorized", 401, None, "The admin key (or the metrics bearer token) is missing or wrong."),
    InvalidSignature = ("invalid_signature", 401, None, "The agent's signature of a mint does not verify."),
    StaleTimestamp = ("stale_timestamp", 401, None, "The signed mint's timestamp is too far from the gateway's clock."),
    ReplayedSignature = ("replayed_signature", 401, None, "The signed mint was already used."),
    InvalidToken = ("invalid_token", 403, Some(Token), "The token is not one this gateway sealed, or its agent is unknown."),
    TokenExpired = ("token_expired", 403, Some(Token), "The token has expired."),
    TokenRevoked = ("token_revoked", 403, Some(Token), "The token was revoked."),
    AgentNotActive = ("agent_not_active", 403, Some(Token), "The token's agent is suspended."),
    TokenMismatch = ("token_mismatch", 403, Some(Token), "`token_id` is not the presented token's own id."),
    TooManyAuthFailures = ("too_many_auth_failures", 429, Some(Token), "Too many failed authentications from this address; wait `Retry-After`."),

    // What the token grants.
    ToolNotGranted = ("tool_not_granted", 403, Some(Claims), "The token does not grant the tool."),
    PermissionNotGranted = ("permission_not_granted", 403, Some(Claims), "The token grants the tool but no permission covering the action."),

    // Limits.
    RateLimited = ("rate_limited", 429, Some(RateLimit), "A rate limit refused the call; `scope` says which, wait `Retry-After`."),
    AgentCallsInFlight = ("agent_calls_in_flight", 429, None, "The agent has too many calls in flight."),

    // Policies.
    PolicyDenied = ("policy_denied", 403, Some(Policy), "A policy refused the call; `reason` and `rule` say why."),
    PolicyError = ("policy_error", 403, Some(Policy), "A policy plugin failed and its binding fails closed."),
    PluginBusy = ("plugin_busy", 503, Some(Policy), "Every instance of a policy plugin is busy; retry shortly."),

    // The tool and its upstream.
    ToolNotConfigured = ("tool_not_configured", 503, None, "The tool has no credential in live mode."),
    DestinationNotAllowed = ("destination_not_allowed", 403, None, "The destination is private or not allowed."),
    BreakerOpen = ("breaker_open", 503, None, "The tool's breaker is open; wait `Retry-After`."),
    BulkheadFull = ("bulkhead_full", 503, None, "The tool has too many calls in flight."),
    DeadlineExceeded = ("deadline_exceeded", 504, None, "The call's deadline passed before an answer."),
    UpstreamTimeout = ("upstream_timeout", 504, None, "The upstream did not answer in time."),
    UpstreamUnreachable = ("upstream_unreachable", 502, None, "The upstream could not be reached."),
    UpstreamFailed = ("upstream_failed", 502, None, "The upstream answered with an error."),
    UpstreamAnswerTooLarge = ("upstream_answer_too_large", 502, None, "The upstream's answer is over the size limit."),
    UpstreamBadAnswer = ("upstream_bad_answer", 502, None, "The upstream's answer could not be read."),
    ShuttingDown = ("shutting_down", 503, None, "The gateway is shutting down; retry on another instance."),

    // Tokens.
    /// The original's wire answers a mint for a suspended agent with 400, a proxied call
    /// with 403 ([`Refusal::AgentNotActive`]): same code, two statuses.
    MintAgentNotActive = ("agent_not_active", 400, None, "A token was asked for a suspended agent."),
    ForbiddenAgent = ("forbidden_agent", 403, None, "An agent asked for another agent's token."),
    EmptyScope = ("empty_scope", 400, None, "The asked tools or permissions are empty."),
    ScopeNotAllowed = ("scope_not_allowed", 403, None, "The asked scope is beyond the agent's maximum scope."),
    InvalidScope = ("invalid_scope", 400, None, "A permission is not in the permission vocabulary."),
    AmbiguousExpiry = ("ambiguous_expiry", 400, None, "Both `expires_at` and a TTL were given."),
    InvalidExpiry = ("invalid_expiry", 400, None, "`expires_at` is not an ISO 8601 time."),
    ExpiryInPast = ("expiry_in_past", 400, None, "The expiry is in the past."),
    TtlTooLong = ("ttl_too_long", 400, None, "The token would live longer than allowed."),
    TokenNotFound = ("token_not_found", 404, None, "No token has this id."),

    // Management.
    AgentNotFound = ("agent_not_found", 404, None, "No agent has this id."),
    PolicyNotFound = ("policy_not_found", 404, None, "No policy has this id."),
    MissingTarget = ("missing_target", 400, None, "A policy needs `agentId` or `role`."),
    AmbiguousTarget = ("ambiguous_target", 400, None, "A policy takes `agentId` or `role`, not both."),
    PolicyValidatorFailed = ("policy_validator_failed", 503, None, "The policy plugin that validates documents failed."),
    CredentialExists = ("credential_exists", 409, None, "The credential version already exists."),
    CredentialNotFound = ("credential_not_found", 404, None, "No credential has this key."),
    ChaosNotAllowed = ("chaos_not_allowed", 403, None, "Chaos rules are refused in production."),
    PluginNotFound = ("plugin_not_found", 404, None, "No plugin has this name."),
    PluginInvalid = ("plugin_invalid", 422, None, "The plugin does not load here; nothing was changed."),
    PluginDowngrade = ("plugin_downgrade", 409, None, "The signed version is below the highest already accepted."),
    NameConflict = ("name_conflict", 409, None, "A plugin file already binds this name."),
    BindingFromFile = ("binding_from_file", 409, None, "The binding comes from a file; change the file."),
    NoPreviousVersion = ("no_previous_version", 409, None, "The plugin has no earlier uploaded version."),
    RollbackNotUndone = ("rollback_not_undone", 409, None, "The earlier version does not load and the rollback could not be undone."),
    NoShadow = ("no_shadow", 404, None, "The plugin has no shadow candidate."),

    // The gateway itself.
    StoreUnavailable = ("store_unavailable", 503, None, "The database is unavailable; wait `Retry-After`."),
    Internal = ("internal", 500, None, "An internal error; the log has the cause under the correlation id."),
}

impl Refusal {
    /// The refusal answered with `code` (the first, for a code answered with two statuses).
    pub fn from_code(code: &str) -> Option<Refusal> {
        Refusal::ALL.iter().copied().find(|r| r.code() == code)
    }

    /// The refusals a stage counts, in table order.
    pub fn counted() -> impl Iterator<Item = (Stage, Refusal)> {
        Refusal::ALL
            .iter()
            .filter_map(|r| r.stage().map(|stage| (stage, *r)))
    }
}

impl Refusal {
    /// The docs' table of every refusal: code, status, stage, meaning.
    pub fn docs_table() -> String {
        let mut table =
            String::from("| code | status | counted as | meaning |\n|---|---|---|---|\n");
        for r in Refusal::ALL {
            let stage = r.stage().map_or("—", Stage::as_str);
            table.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                r.code(),
                r.status(),
                stage,
                r.meaning()
            ));
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_table_is_the_enum() {
        crate::generated_docs::assert_current(
            "docs/errors.md",
            "refusals",
            "wire/src/refusal.rs",
            &Refusal::docs_table(),
        );
    }

    #[test]
    fn a_code_has_one_status_except_where_the_original_wire_has_two() {
        for (i, a) in Refusal::ALL.iter().enumerate() {
            for b in &Refusal::ALL[i + 1..] {
                if a.code() == b.code() {
                    assert_eq!(
                        (a, b),
                        (&Refusal::AgentNotActive, &Refusal::MintAgentNotActive)
                    );
                    assert_ne!(a.status(), b.status());
                }
            }
        }
    }

    #[test]
    fn codes_are_snake_case_and_statuses_are_errors() {
        for r in Refusal::ALL {
            assert!(r
                .code()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert!((400..600).contains(&r.status()), "{r:?}");
        }
        assert_eq!(
            Refusal::from_code("rate_limited"),
            Some(Refusal::RateLimited)
        );
        assert_eq!(Refusal::from_code("nothing_like_it"), None);
    }
}
