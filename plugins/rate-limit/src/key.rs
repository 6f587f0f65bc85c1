//! Who or what a request is counted against: the bucket key for a limit,
//! and the identity metrics report. A key part that a message lacks (no
//! principal, no session) falls back to the client address, so an
//! anonymous client is still limited, by where it connects from.

use mcpd_plugin_sdk::Message;
use mcpd_plugin_sdk::reuse::Vary;

use crate::config::{KeyKind, Limit};

/// Separates key parts; a control character no principal, address or tool
/// name is expected to hold, and the one mcpd itself uses for store keys.
const SEP: char = '\u{1f}';

/// The caller's identity: the principal when an earlier plugin named one,
/// else the client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Who<'a> {
    /// `principal` or `client`: which of the two `id` is.
    pub via: &'static str,
    pub id: &'a str,
}

pub fn who(message: &Message) -> Who<'_> {
    match principal(message) {
        Some(principal) => Who { via: "principal", id: principal },
        None => Who { via: "client", id: &message.client_address },
    }
}

fn principal(message: &Message) -> Option<&str> {
    message.principal.as_deref().filter(|p| !p.is_empty())
}

/// What the buckets `limits` take from for `message`, the limits that
/// apply, and the metrics' `who` depend on: a reused verdict must agree on
/// these. The client address counts only where it may stand in for a
/// missing principal or session, or is a key itself.
pub fn vary(limits: &[Limit], message: &Message) -> Vary {
    let keys = || limits.iter().flat_map(|l| l.keys.iter());
    let mut vary = Vary::NAME | Vary::PRINCIPAL;
    let has_session = message.session.as_deref().is_some_and(|s| !s.is_empty());
    if keys().any(|k| *k == KeyKind::Session) {
        vary |= Vary::SESSION;
    }
    let by_address = principal(message).is_none()
        || keys().any(|k| *k == KeyKind::Client || (*k == KeyKind::Session && !has_session));
    if by_address {
        vary |= Vary::CLIENT_ADDRESS;
    }
    vary
}

/// The store key of `limit`'s bucket for `message`. Buckets are per route,
/// so two routes using this plugin never share one; each part is tagged
/// (`p:`, `c:`, …) so that a principal spelled like an address does not
/// share that address's bucket.
pub fn bucket(limit: &Limit, message: &Message) -> String {
    let mut key = format!("{}{SEP}{}", message.route, limit.name);
    let client = || format!("c:{}", message.client_address);
    for kind in &limit.keys {
        let part = match kind {
            KeyKind::Principal => principal(message).map_or_else(client, |p| format!("p:{p}")),
            KeyKind::Client => client(),
            KeyKind::Session => {
                message.session.as_deref().filter(|s| !s.is_empty()).map_or_else(client, |s| format!("s:{s}"))
            }
            KeyKind::Tool => match message.tool_name() {
                Some(tool) => format!("t:{tool}"),
                // Limits keyed by tool that count other methods give each
                // method its own bucket.
                None => format!("m:{}", message.method().unwrap_or("")),
            },
            KeyKind::Route => continue,
        };
        key.push(SEP);
        key.push_str(&part);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Applies;
    use mcpd_plugin_sdk::testing;
    use serde_json::json;
    use std::time::Duration;

    fn limit(keys: &[KeyKind]) -> Limit {
        let applies = Applies::Methods(vec![]);
        Limit { name: "l".into(), keys: keys.to_vec(), capacity: 1, period: Duration::from_secs(1), applies }
    }

    fn parts(key: &str) -> Vec<&str> {
        key.split(SEP).collect()
    }

    #[test]
    fn principal_falls_back_to_client_address() {
        let mut m = testing::tool_call("echo", json!({}));
        let l = limit(&[KeyKind::Principal]);
        assert_eq!(parts(&bucket(&l, &m)), ["test", "l", "c:127.0.0.1"]);
        assert_eq!(who(&m), Who { via: "client", id: "127.0.0.1" });
        m.principal = Some("ada".into());
        assert_eq!(parts(&bucket(&l, &m)), ["test", "l", "p:ada"]);
        assert_eq!(who(&m), Who { via: "principal", id: "ada" });
        m.principal = Some(String::new());
        assert_eq!(parts(&bucket(&l, &m)), ["test", "l", "c:127.0.0.1"], "an empty principal is no principal");
    }

    #[test]
    fn a_verdict_varies_with_what_picks_its_buckets() {
        let mut m = testing::tool_call("echo", json!({}));
        let by_principal = [limit(&[KeyKind::Principal])];
        assert_eq!(vary(&by_principal, &m), Vary::NAME | Vary::PRINCIPAL | Vary::CLIENT_ADDRESS, "anonymous");
        m.principal = Some("ada".into());
        assert_eq!(vary(&by_principal, &m), Vary::NAME | Vary::PRINCIPAL, "the address does not count");
        let by_client = [limit(&[KeyKind::Client])];
        assert!(vary(&by_client, &m).contains(Vary::CLIENT_ADDRESS));
        let by_session = [limit(&[KeyKind::Session])];
        m.session = None;
        let all = Vary::NAME | Vary::PRINCIPAL | Vary::SESSION | Vary::CLIENT_ADDRESS;
        assert_eq!(vary(&by_session, &m), all, "no session: the address stands in");
        m.session = Some("abc".into());
        assert!(!vary(&by_session, &m).contains(Vary::CLIENT_ADDRESS));
    }

    #[test]
    fn compound_session_tool_and_route_keys() {
        let mut m = testing::tool_call("echo", json!({}));
        m.session = Some("abc".into());
        let l = limit(&[KeyKind::Session, KeyKind::Tool, KeyKind::Route]);
        assert_eq!(parts(&bucket(&l, &m)), ["test", "l", "s:abc", "t:echo"]);
        let mut list = testing::request("tools/list", json!({}));
        list.session = None;
        assert_eq!(parts(&bucket(&l, &list)), ["test", "l", "c:127.0.0.1", "m:tools/list"]);
        assert_eq!(parts(&bucket(&limit(&[KeyKind::Route]), &m)), ["test", "l"]);
    }
}
