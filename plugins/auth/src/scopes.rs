//! `tool_scopes`: which scopes a `tools/call` needs, by tool-name glob
//! (`"deploy_*" = "mcp:deploy"`). A tool matching several patterns needs
//! the scopes of all of them; a tool matching none needs none.

use serde::Deserialize;

/// A scope or a list of scopes, as the config may write either.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// The compiled `tool_scopes` table.
#[derive(Debug, Clone, Default)]
pub struct ToolScopes {
    rules: Vec<(String, Vec<String>)>,
}

impl ToolScopes {
    pub fn add(&mut self, pattern: String, scopes: Vec<String>) {
        self.rules.push((pattern, scopes));
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every scope any rule names (for `scopes_supported`).
    pub fn all_scopes(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().flat_map(|(_, scopes)| scopes.iter().map(String::as_str))
    }

    /// The scopes a call of `tool` needs, each once, in config order.
    pub fn required(&self, tool: &str) -> Vec<&str> {
        let mut needed: Vec<&str> = Vec::new();
        for (pattern, scopes) in &self.rules {
            if glob_match(pattern, tool) {
                for scope in scopes {
                    if !needed.contains(&scope.as_str()) {
                        needed.push(scope);
                    }
                }
            }
        }
        needed
    }
}

/// Whether a scope value can go into `WWW-Authenticate` and a `scope`
/// string as is (RFC 6749 §3.3 scope-token: printable ASCII except space,
/// `"` and `\`).
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// `*` matches any run of characters, `?` one character; all else is literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    mcpd_plugin_sdk::glob::Glob::new(pattern).matches(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("deploy_*", "deploy_prod"));
        assert!(glob_match("deploy_*", "deploy_"));
        assert!(!glob_match("deploy_*", "redeploy_prod"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*_admin", "db_admin"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("get_?", "get_x"));
        assert!(!glob_match("get_?", "get_xy"));
        assert!(glob_match("echo", "echo"));
        assert!(!glob_match("echo", "echo2"));
        assert!(glob_match("*.*", "a.b"));
    }

    #[test]
    fn required_scopes_union_of_matching_rules() {
        let mut t = ToolScopes::default();
        t.add("deploy_*".into(), vec!["mcp:deploy".into()]);
        t.add("*_prod".into(), vec!["mcp:prod".into(), "mcp:deploy".into()]);
        assert_eq!(t.required("deploy_prod"), ["mcp:deploy", "mcp:prod"]);
        assert_eq!(t.required("deploy_dev"), ["mcp:deploy"]);
        assert!(t.required("echo").is_empty());
    }

    #[test]
    fn scope_tokens() {
        assert!(is_scope_token("mcp:deploy"));
        assert!(is_scope_token("https://api.example.com/read"));
        assert!(!is_scope_token("two words"));
        assert!(!is_scope_token("quo\"te"));
        assert!(!is_scope_token(""));
    }
}
