//! The access rules and how they decide. Rules are tried in the order the
//! config lists them; the first rule that covers the kind of thing asked
//! for (tool, resource, prompt), matches its name, and matches the caller
//! decides. When none does, the policy's default decides. First match
//! rather than "deny wins" so that exceptions can be written: allow
//! `delete_*` for admins, then deny `delete_*` for everyone else.

use mcpd_plugin_sdk::glob::{self, Glob};

/// What a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Tool,
    Resource,
    Prompt,
}

impl Kind {
    /// As in messages, metric labels and the config's field names (plural there).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Resource => "resource",
            Kind::Prompt => "prompt",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
}

/// Who is asking, as earlier plugins (auth) described them.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub principal: Option<&'a str>,
    pub scopes: &'a [String],
}

/// One checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub action: Action,
    /// Globs over principals; `None`: any caller, with or without one.
    pub principals: Option<Vec<Glob>>,
    /// Scopes the caller must all hold.
    pub scopes: Vec<String>,
    pub tools: Option<Vec<Glob>>,
    pub resources: Option<Vec<Glob>>,
    pub prompts: Option<Vec<Glob>>,
}

impl Rule {
    fn names(&self, kind: Kind) -> Option<&[Glob]> {
        match kind {
            Kind::Tool => self.tools.as_deref(),
            Kind::Resource => self.resources.as_deref(),
            Kind::Prompt => self.prompts.as_deref(),
        }
    }

    fn covers(&self, caller: &Caller) -> bool {
        // A caller without a principal matches no `principals` list, not
        // even `["*"]`: that is how a rule says "any authenticated caller".
        let principal_ok = match &self.principals {
            None => true,
            Some(globs) => caller.principal.is_some_and(|p| glob::any(globs, p)),
        };
        principal_ok && self.scopes.iter().all(|s| caller.scopes.contains(s))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub default: Action,
}

impl Policy {
    /// Whether `caller` may use the `kind` named `name` (server-side name).
    pub fn allows(&self, caller: &Caller, kind: Kind, name: &str) -> bool {
        let rule = self.rules.iter().find(|r| r.names(kind).is_some_and(|g| glob::any(g, name)) && r.covers(caller));
        rule.map_or(self.default, |r| r.action) == Action::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(patterns: &[&str]) -> Option<Vec<Glob>> {
        Some(patterns.iter().map(|p| Glob::new(p)).collect())
    }

    fn rule(action: Action, tools: &[&str]) -> Rule {
        Rule { action, principals: None, scopes: vec![], tools: globs(tools), resources: None, prompts: None }
    }

    fn caller<'a>(principal: Option<&'a str>, scopes: &'a [String]) -> Caller<'a> {
        Caller { principal, scopes }
    }

    #[test]
    fn first_match_decides_so_exceptions_go_first() {
        let admins = Rule { principals: globs(&["admin-*"]), ..rule(Action::Allow, &["delete_*"]) };
        let policy = Policy {
            rules: vec![admins, rule(Action::Deny, &["delete_*"]), rule(Action::Allow, &["*"])],
            default: Action::Deny,
        };
        let none: [String; 0] = [];
        assert!(policy.allows(&caller(Some("admin-ada"), &none), Kind::Tool, "delete_repo"));
        assert!(!policy.allows(&caller(Some("grace"), &none), Kind::Tool, "delete_repo"));
        assert!(policy.allows(&caller(Some("grace"), &none), Kind::Tool, "search"));
        assert!(!policy.allows(&caller(None, &none), Kind::Tool, "delete_repo"));
        // No rule lists prompts: the default decides.
        assert!(!policy.allows(&caller(Some("admin-ada"), &none), Kind::Prompt, "greet"));
    }

    #[test]
    fn star_principal_means_someone_and_scopes_are_all_required() {
        let authenticated = Rule { principals: globs(&["*"]), ..rule(Action::Allow, &["echo"]) };
        let writers = Rule { scopes: vec!["repo".into(), "write".into()], ..rule(Action::Allow, &["push"]) };
        let policy = Policy { rules: vec![authenticated, writers], default: Action::Deny };
        let none: [String; 0] = [];
        assert!(policy.allows(&caller(Some("ada"), &none), Kind::Tool, "echo"));
        assert!(!policy.allows(&caller(None, &none), Kind::Tool, "echo"));
        let both = ["repo".to_string(), "write".to_string(), "x".to_string()];
        assert!(policy.allows(&caller(None, &both), Kind::Tool, "push"));
        assert!(!policy.allows(&caller(None, &both[..1]), Kind::Tool, "push"));
    }

    #[test]
    fn default_allow_makes_a_deny_list() {
        let policy = Policy { rules: vec![rule(Action::Deny, &["crash"])], default: Action::Allow };
        let none: [String; 0] = [];
        assert!(!policy.allows(&caller(None, &none), Kind::Tool, "crash"));
        assert!(policy.allows(&caller(None, &none), Kind::Tool, "echo"));
        assert!(policy.allows(&caller(None, &none), Kind::Resource, "test://hello"));
    }
}
