//! mcpd's auth plugin: API keys, JWT bearer tokens and an OAuth 2.1
//! resource server (MCP authorization, RFC 9728) for one route.
//!
//! - `on-http-request`: answers `GET /.well-known/oauth-protected-resource<path>`
//!   with the route's metadata document; every other request must carry a
//!   valid credential (else 401 with a `WWW-Authenticate: Bearer` challenge)
//!   and the `required_scopes` (else 403); the principal and scopes are then
//!   set for later hooks and plugins.
//! - `on-request`: a `tools/call` of a tool that `tool_scopes` guards needs
//!   those scopes, else 403 `insufficient_scope` (step-up authorization).
//!
//! The README describes every config key, the metrics and what clients see.

mod apikeys;
mod authenticate;
mod challenge;
mod cidr;
mod config;
mod credentials;
mod duration;
mod identity;
mod jwt;
mod metadata;
mod origin;
mod paths;
mod scopes;
mod telemetry;

use mcpd_plugin_sdk::clock;
use mcpd_plugin_sdk::prelude::*;
use mcpd_plugin_sdk::reuse::{self, Vary};
use std::time::Duration;

use crate::config::Policy;
use crate::identity::{Method, Refusal};
use crate::jwt::Lifetime;
use crate::origin::WELL_KNOWN;
use crate::paths::RoutePaths;
use crate::telemetry::Labels;

/// How long mcpd may reuse a decision. Keys and scopes come from the
/// config, and a new config is a reload, which drops kept decisions. For
/// a token it is also how long a verdict may outlive the removal of its
/// signing key from the JWKS, hence modest.
const REUSE: Duration = Duration::from_secs(60);

/// A token's verdict is reused until this long before its `exp`: mcpd
/// counts the time from after the call, on its own clock, so the reuse
/// must end early enough never to outlive the token. (The verifier's
/// `clock_skew` leeway past `exp` is for clocks that disagree with the
/// issuer's; a reuse does not stretch it: tokens in it are checked afresh.)
const TOKEN_MARGIN: Duration = Duration::from_secs(1);

pub struct Auth {
    policy: Policy,
    paths: RoutePaths,
    labels: Labels,
    token_reuse: TokenReuse,
}

/// What a token's verdict depends on besides the token and the clock: the
/// path and HTTP method (mcpd keys by the method anyway), and whatever the
/// audience, the route's resource URI, is derived from.
struct TokenReuse {
    vary: Vary,
    headers: Vec<&'static str>,
    /// At most the JWKS cache period, so that an operator who shortens it
    /// to retire keys sooner is not undone by the reuse.
    longest: Duration,
}

impl TokenReuse {
    fn new(policy: &Policy) -> TokenReuse {
        let mut vary = Vary::PATH;
        let mut headers = vec!["authorization"];
        let jwt = policy.jwt.as_ref();
        if !jwt.is_some_and(|jwt| jwt.fixed_audience()) {
            let reads = policy.origins.reads();
            if reads.client_address {
                vary |= Vary::CLIENT_ADDRESS;
            }
            headers.extend(reads.headers);
        }
        let longest = jwt.and_then(|jwt| jwt.key_cache_ttl()).map_or(REUSE, |ttl| ttl.min(REUSE));
        TokenReuse { vary, headers, longest }
    }

    /// Asks mcpd to reuse the verdict on a token with this lifetime, for as
    /// long as the token is valid (less [`TOKEN_MARGIN`]) and at most
    /// `longest`; nothing for a token not valid yet or about to expire.
    fn ask(&self, lifetime: &Lifetime, now_ms: u64) {
        let left = lifetime.remaining(now_ms).and_then(|left| left.checked_sub(TOKEN_MARGIN));
        if let Some(ttl) = left.map(|left| left.min(self.longest)).filter(|ttl| !ttl.is_zero()) {
            reuse::decision(ttl, self.vary, &self.headers);
        }
    }
}

impl Plugin for Auth {
    fn info() -> Info {
        Info::new("auth", env!("CARGO_PKG_VERSION"), Hooks::HTTP_REQUEST | Hooks::REQUEST)
    }

    fn new(config: Config) -> Result<Self, Error> {
        let policy = Policy::from_config(&config)?;
        let labels = Labels::new(policy.metric_label_values);
        let token_reuse = TokenReuse::new(&policy);
        Ok(Auth { policy, paths: RoutePaths::default(), labels, token_reuse })
    }

    /// The HTTP hook authenticates every request; the message hook is only
    /// needed for `tool_scopes`, and reads headers only to point a refused
    /// client at the metadata document.
    fn describe(&self) -> Info {
        if self.policy.tool_scopes.is_empty() {
            return Info { hooks: Hooks::HTTP_REQUEST, ..Self::info() };
        }
        let reads = if self.policy.metadata.is_some() { Parts::HEADERS } else { Parts::empty() };
        Self::info().request_methods(["tools/call"]).reads(reads)
    }

    fn on_http_request(&mut self, request: &HttpRequest) -> Decision {
        if let Some(resource_path) = metadata_path(&request.path) {
            return self.metadata_document(request, resource_path);
        }
        // A CORS preflight carries no credentials by design.
        if request.method.eq_ignore_ascii_case("OPTIONS") {
            return Decision::proceed();
        }
        self.paths.remember(&request.route, &request.path);
        self.check_credentials(request)
    }

    fn on_request(&mut self, message: &Message) -> Decision {
        let Some(principal) = message.principal.as_deref() else {
            // The HTTP hook authenticates every request before this one;
            // a message without a principal got past it some other way.
            let metadata_url = self.metadata_url(message);
            return challenge::unauthorized(&Refusal::Missing, &self.required_scopes(), metadata_url.as_deref());
        };
        let Some(tool) = message.tool_name() else {
            return Decision::proceed();
        };
        // Owned: the challenge below needs `&mut self` for the metadata URL.
        let needed: Vec<String> = self.policy.tool_scopes.required(tool).into_iter().map(str::to_string).collect();
        if needed.is_empty() {
            // Not NAME alone: a message without a principal is refused above.
            reuse::decision(REUSE, Vary::NAME | Vary::PRINCIPAL, &[]);
            return Decision::proceed();
        }
        let mut missing = Vec::new();
        for scope in &needed {
            let granted = message.has_scope(scope);
            self.labels.scope_check(principal, tool, scope, granted);
            if !granted {
                missing.push(scope.as_str());
            }
        }
        if missing.is_empty() {
            // Who calls which tool with which scopes: the metrics name the
            // principal, the check the scopes. (A refusal points at the
            // metadata document, which depends on more: not reused.)
            reuse::decision(REUSE, Vary::NAME | Vary::PRINCIPAL | Vary::SCOPES, &[]);
            return Decision::proceed();
        }
        self.labels.denial(principal, tool, "insufficient_scope");
        log::info!("{principal} may not call {tool}: missing scope {}", missing.join(" "));
        let message_text = format!("tool {tool} needs scope {}", needed.join(" "));
        let needed: Vec<&str> = needed.iter().map(String::as_str).collect();
        let metadata_url = self.metadata_url(message);
        challenge::insufficient_scope(&needed, metadata_url.as_deref(), message_text)
    }
}

impl Auth {
    /// RFC 9728 §3: the metadata document for the resource at `resource_path`.
    fn metadata_document(&mut self, request: &HttpRequest, resource_path: &str) -> Decision {
        let Some(metadata) = &self.policy.metadata else {
            return Decision::reply(404, r#"{"error":"not_found"}"#);
        };
        if !request.method.eq_ignore_ascii_case("GET") {
            return Decision::reply(405, r#"{"error":"method_not_allowed"}"#).header("allow", "GET");
        }
        let resource = self.policy.origins.resource(&request.headers, &request.client_address, resource_path);
        if !resource_path.is_empty() {
            self.paths.remember(&request.route, resource_path);
        }
        Decision::reply(200, metadata.document(&resource))
            .header("cache-control", "max-age=300")
            // Browser-based MCP clients fetch it from another origin.
            .header("access-control-allow-origin", "*")
    }

    fn check_credentials(&mut self, request: &HttpRequest) -> Decision {
        // The resource URI (a JWT's audience, the metadata URL) takes some
        // string work; an API key needs neither, so it is made on demand.
        let origins = &self.policy.origins;
        let resource = || origins.resource(&request.headers, &request.client_address, &request.path);
        let result = authenticate::authenticate(
            &self.policy.api_keys,
            self.policy.jwt.as_mut(),
            &request.headers,
            || resource().uri(),
            clock::now_millis,
        );
        let metadata_url = || self.policy.metadata.as_ref().map(|_| resource().metadata_url());
        let required = self.required_scopes();
        let identity = match result {
            Ok(identity) => identity,
            Err(refusal) => {
                telemetry::authentication(refusal.method_label(), refusal.label());
                log::debug!("refused: {}", refusal.description());
                return challenge::unauthorized(&refusal, &required, metadata_url().as_deref());
            }
        };
        if let Some(scope) = required.iter().find(|s| !identity.scopes.iter().any(|have| have == *s)) {
            telemetry::authentication(identity.method.label(), "insufficient_scope");
            let message = format!("{} lacks scope {scope}, which this resource requires", identity.principal);
            return challenge::insufficient_scope(&required, metadata_url().as_deref(), message);
        }
        telemetry::authentication(identity.method.label(), "ok");
        // An API key's identity depends on the credential headers alone (the
        // path and HTTP method keep other answers apart, e.g. the metadata
        // document); a token's also on its lifetime and its audience. (The
        // first request of a route in an instance records its path in the
        // store, for metadata URLs, and a JWKS fetch stores the keys: such
        // writes make mcpd ignore the reuse once.)
        match (identity.method, &identity.lifetime) {
            (Method::ApiKey, _) => reuse::decision(REUSE, Vary::PATH, &["authorization", "x-api-key"]),
            // A later clock than the verifier's can only shorten the reuse.
            (Method::Jwt, Some(lifetime)) => self.token_reuse.ask(lifetime, clock::now_millis()),
            (Method::Jwt, None) => {}
        }
        Decision::modify().principal(identity.principal).scopes(identity.scopes)
    }

    fn required_scopes(&self) -> Vec<&str> {
        self.policy.required_scopes.iter().map(String::as_str).collect()
    }

    /// The metadata URL for a message's route, when the plugin serves one.
    fn metadata_url(&mut self, message: &Message) -> Option<String> {
        self.policy.metadata.as_ref()?;
        let path = self.paths.lookup(&message.route).unwrap_or_default();
        Some(self.policy.origins.resource(&message.headers, &message.client_address, &path).metadata_url())
    }
}

/// `/.well-known/oauth-protected-resource/mcp` → `/mcp` (and the bare
/// well-known path → the root resource).
fn metadata_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(WELL_KNOWN)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

mcpd_plugin_sdk::export_plugin!(Auth);

#[cfg(test)]
pub(crate) mod tests;
