//! Tool renaming: what clients call a tool (`prefix` + server name, or a
//! `rename` entry) and back. Only tools are renamed; rules always use the
//! server's names, so renaming is presentation and cannot open a hole.

use std::collections::HashMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    prefix: String,
    /// Server name → client name.
    to_client: HashMap<String, String>,
    /// Client name → server name.
    to_server: HashMap<String, String>,
}

impl Names {
    /// `rename` entries win over `prefix` (the new name is used as written).
    /// Errors name the field at fault.
    pub fn new(prefix: Option<String>, rename: HashMap<String, String>) -> Result<Names, String> {
        if prefix.as_deref() == Some("") {
            return Err("`prefix`: must not be empty (leave it out for none)".into());
        }
        let mut to_server = HashMap::new();
        for (old, new) in &rename {
            if old.is_empty() || new.is_empty() {
                return Err(format!("`rename`: `{old}` = `{new}`: names must not be empty"));
            }
            if let Some(other) = to_server.insert(new.clone(), old.clone()) {
                return Err(format!("`rename`: `{other}` and `{old}` are both renamed to `{new}`"));
            }
        }
        Ok(Names { prefix: prefix.unwrap_or_default(), to_client: rename, to_server })
    }

    /// Whether every tool keeps its name.
    pub fn is_identity(&self) -> bool {
        self.prefix.is_empty() && self.to_client.is_empty()
    }

    fn client_name(&self, server: &str) -> String {
        match self.to_client.get(server) {
            Some(new) => new.clone(),
            None => format!("{}{server}", self.prefix),
        }
    }

    /// The server's name for the tool a client calls `client`; `None` for a
    /// name the client cannot have been shown.
    pub fn server_name<'a>(&'a self, client: &'a str) -> Option<&'a str> {
        if let Some(old) = self.to_server.get(client) {
            return Some(old);
        }
        let server = client.strip_prefix(self.prefix.as_str())?;
        // A renamed tool answers to its new name only.
        (!self.to_client.contains_key(server)).then_some(server)
    }

    /// The name a client sees for the server's tool `server`, or `None`
    /// when that name means another tool (`rename = { a = "b" }` next to a
    /// server tool `b`): the client could not call it, so it is not shown.
    pub fn shown(&self, server: &str) -> Option<String> {
        let client = self.client_name(server);
        (self.server_name(&client) == Some(server)).then_some(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: Option<&str>, rename: &[(&str, &str)]) -> Names {
        let rename = rename.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        Names::new(prefix.map(Into::into), rename).unwrap()
    }

    #[test]
    fn prefix_round_trips() {
        let n = names(Some("gh_"), &[]);
        assert_eq!(n.shown("search").as_deref(), Some("gh_search"));
        assert_eq!(n.server_name("gh_search"), Some("search"));
        assert_eq!(n.server_name("search"), None, "unprefixed names were never shown");
    }

    #[test]
    fn rename_wins_over_prefix_and_hides_the_old_name() {
        let n = names(Some("gh_"), &[("echo", "say")]);
        assert_eq!(n.shown("echo").as_deref(), Some("say"));
        assert_eq!(n.server_name("say"), Some("echo"));
        assert_eq!(n.server_name("gh_echo"), None);
        assert_eq!(n.server_name("echo"), None);
        assert_eq!(n.shown("sleep").as_deref(), Some("gh_sleep"));
    }

    #[test]
    fn a_shadowed_tool_is_not_shown_and_swaps_work() {
        let n = names(None, &[("a", "b")]);
        assert_eq!(n.shown("a").as_deref(), Some("b"));
        assert_eq!(n.shown("b"), None, "`b` now means `a`");
        let swap = names(None, &[("a", "b"), ("b", "a")]);
        assert_eq!((swap.shown("a").as_deref(), swap.shown("b").as_deref()), (Some("b"), Some("a")));
        assert_eq!((swap.server_name("a"), swap.server_name("b")), (Some("b"), Some("a")));
    }

    #[test]
    fn identity_and_bad_configs() {
        assert!(names(None, &[]).is_identity());
        assert_eq!(names(None, &[]).server_name("x"), Some("x"));
        let twice = [("a".to_string(), "c".to_string()), ("b".to_string(), "c".to_string())].into();
        assert!(Names::new(None, twice).unwrap_err().contains("both renamed to `c`"));
        assert!(Names::new(Some(String::new()), HashMap::new()).is_err());
        assert!(Names::new(None, [("a".to_string(), String::new())].into()).is_err());
    }
}
