//! The plugin's config as operators write it in mcpd.toml, checked into a
//! [`Policy`] and [`Names`]. Mistakes are refused at load with the field at
//! fault (`rules[1].tools: ...`): a policy that silently matches nothing is
//! worse than one that does not start.

use std::collections::HashMap;

use mcpd_plugin_sdk::{Config, Error};
use serde::Deserialize;

use crate::names::Names;
use crate::policy::{Action, Policy, Rule};
use mcpd_plugin_sdk::glob::Glob;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    default: Option<ActionSetting>,
    #[serde(default)]
    rules: Vec<RuleSettings>,
    prefix: Option<String>,
    #[serde(default)]
    rename: HashMap<String, String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ActionSetting {
    Allow,
    Deny,
}

impl From<ActionSetting> for Action {
    fn from(a: ActionSetting) -> Action {
        match a {
            ActionSetting::Allow => Action::Allow,
            ActionSetting::Deny => Action::Deny,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSettings {
    action: ActionSetting,
    principals: Option<Vec<String>>,
    #[serde(default)]
    scopes: Vec<String>,
    tools: Option<Vec<String>>,
    resources: Option<Vec<String>>,
    prompts: Option<Vec<String>>,
}

/// The checked config.
pub struct Checked {
    pub policy: Policy,
    pub names: Names,
}

pub fn load(config: &Config) -> Result<Checked, Error> {
    let settings: Settings = config.parse()?;
    check(settings).map_err(|e| Error::msg(format!("invalid plugin config at {e}")))
}

/// Errors start with the field, in backquotes.
fn check(settings: Settings) -> Result<Checked, String> {
    let default = match (settings.default, settings.rules.is_empty()) {
        (Some(default), _) => default.into(),
        // Rules with no stated default: whatever they do not allow is denied.
        (None, false) => Action::Deny,
        // A config that only renames would deny everything: surely not meant.
        (None, true) => {
            return Err("`default`: with no `rules`, set `default = \"allow\"` (only rename) or \
                        `default = \"deny\"` (refuse everything)"
                .into());
        }
    };
    let rules =
        settings.rules.into_iter().enumerate().map(|(i, r)| check_rule(r).map_err(|e| format!("`rules[{i}]{e}")));
    let rules = rules.collect::<Result<Vec<Rule>, String>>()?;
    let names = Names::new(settings.prefix, settings.rename)?;
    Ok(Checked { policy: Policy { rules, default }, names })
}

fn check_rule(rule: RuleSettings) -> Result<Rule, String> {
    if rule.tools.is_none() && rule.resources.is_none() && rule.prompts.is_none() {
        return Err("`: a rule needs `tools`, `resources` or `prompts` (use [\"*\"] for all of a kind)".into());
    }
    if rule.scopes.iter().any(String::is_empty) {
        return Err(".scopes`: an empty scope".into());
    }
    let list = |field: &str, patterns: Option<Vec<String>>| match patterns {
        None => Ok(None),
        Some(p) if p.is_empty() => Err(format!(".{field}`: empty, so the rule would match nothing")),
        Some(p) if p.iter().any(String::is_empty) => Err(format!(".{field}`: an empty pattern matches nothing")),
        Some(p) => Ok(Some(p.iter().map(|p| Glob::new(p)).collect())),
    };
    Ok(Rule {
        action: rule.action.into(),
        principals: list("principals", rule.principals)?,
        scopes: rule.scopes,
        tools: list("tools", rule.tools)?,
        resources: list("resources", rule.resources)?,
        prompts: list("prompts", rule.prompts)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_json(json: &str) -> Result<Checked, String> {
        load(&Config::from_json(json)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        let c = load_json(r#"{"rules": [{"action": "allow", "tools": ["echo"]}]}"#).unwrap();
        assert_eq!(c.policy.default, Action::Deny);
        assert!(c.names.is_identity());
        let c = load_json(r#"{"default": "allow", "prefix": "gh_"}"#).unwrap();
        assert_eq!(c.policy.default, Action::Allow);
        assert!(!c.names.is_identity());
    }

    #[test]
    fn mistakes_name_their_field() {
        let cases = [
            (r#"{}"#, "`default`: with no `rules`"),
            (r#"{"rules": [{"action": "allow"}]}"#, "`rules[0]`: a rule needs `tools`"),
            (r#"{"rules": [{"action": "permit", "tools": ["*"]}]}"#, "rules[0].action"),
            (r#"{"rules": [{"tools": ["*"]}]}"#, "missing field `action`"),
            (
                r#"{"rules": [{"action": "deny", "tools": ["*"]}, {"action": "deny", "tools": []}]}"#,
                "`rules[1].tools`: empty",
            ),
            (r#"{"rules": [{"action": "deny", "prompts": [""]}]}"#, "`rules[0].prompts`: an empty pattern"),
            (r#"{"rules": [{"action": "deny", "tools": ["*"], "principals": []}]}"#, "`rules[0].principals`: empty"),
            (r#"{"rules": [{"action": "deny", "tools": ["*"], "scopes": [""]}]}"#, "`rules[0].scopes`"),
            (r#"{"rules": [{"action": "deny", "tool": ["*"]}]}"#, "unknown field `tool`"),
            (r#"{"default": "allow", "prefix": ""}"#, "`prefix`"),
            (r#"{"default": "allow", "rename": {"a": "c", "b": "c"}}"#, "`rename`"),
        ];
        for (json, want) in cases {
            let e = load_json(json).err().unwrap_or_default();
            assert!(e.contains(want), "{json}\n  gave: {e}\n  want: {want}");
        }
    }
}
