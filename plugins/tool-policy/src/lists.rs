//! Filtering `tools/list`, `prompts/list`, `resources/list` and
//! `resources/templates/list` results, so a client sees only what it may
//! use (under the names it must use). An entry the plugin cannot read (no
//! name, not an object) is dropped: when unsure, show less.

use serde_json::Value;

use crate::names::Names;
use crate::policy::{Caller, Kind, Policy};

/// One kind of list result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct List {
    /// The result's array member.
    pub field: &'static str,
    /// Each entry's name member.
    pub key: &'static str,
    pub kind: Kind,
}

pub(crate) const LISTS: [(&str, List); 4] = [
    ("tools/list", List { field: "tools", key: "name", kind: Kind::Tool }),
    ("prompts/list", List { field: "prompts", key: "name", kind: Kind::Prompt }),
    ("resources/list", List { field: "resources", key: "uri", kind: Kind::Resource }),
    // A template is matched as written (`file:///docs/{path}` against
    // `file:///docs/*`): rules that cover a prefix show the template.
    ("resources/templates/list", List { field: "resourceTemplates", key: "uriTemplate", kind: Kind::Resource }),
];

/// The list a response answers: by the method mcpd says it answers or,
/// when mcpd does not say, by the result's shape (only list results have a
/// top-level `tools`, `prompts`, `resources` or `resourceTemplates` array).
pub fn of(method: Option<&str>, result: &Value) -> Option<List> {
    match method {
        Some(method) => LISTS.iter().find(|(m, _)| *m == method).map(|(_, l)| *l),
        None => LISTS.iter().find(|(_, l)| result.get(l.field).is_some_and(Value::is_array)).map(|(_, l)| *l),
    }
}

/// Whether `method` returns a list this plugin filters.
pub fn is_list_method(method: &str) -> bool {
    LISTS.iter().any(|(m, _)| *m == method)
}

/// Removes from `result` what `caller` may not use and renames tools;
/// returns how many entries were removed, or `None` when nothing changed.
pub fn filter(list: List, result: &mut Value, policy: &Policy, names: &Names, caller: &Caller) -> Option<u64> {
    let entries = result.get_mut(list.field)?.as_array_mut()?;
    let before = entries.len();
    let mut renamed = false;
    entries.retain_mut(|entry| {
        let Some(name) = entry.get(list.key).and_then(Value::as_str) else {
            return false;
        };
        if !policy.allows(caller, list.kind, name) {
            return false;
        }
        if list.kind != Kind::Tool || names.is_identity() {
            return true;
        }
        match names.shown(name) {
            Some(shown) => {
                renamed |= shown != name;
                entry[list.key] = Value::String(shown);
                true
            }
            None => false,
        }
    });
    let removed = (before - entries.len()) as u64;
    (removed > 0 || renamed).then_some(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Action, Rule};
    use mcpd_plugin_sdk::glob::Glob;
    use serde_json::json;

    fn policy() -> Policy {
        let allow = |tools: &[&str]| Rule {
            action: Action::Allow,
            principals: None,
            scopes: vec![],
            tools: Some(tools.iter().map(|t| Glob::new(t)).collect()),
            resources: Some(vec![Glob::new("test://public/*")]),
            prompts: None,
        };
        Policy { rules: vec![allow(&["echo", "sleep"])], default: Action::Deny }
    }

    const NOBODY: Caller = Caller { principal: None, scopes: &[] };

    #[test]
    fn list_kind_by_method_or_shape() {
        assert_eq!(of(Some("tools/list"), &json!({})).map(|l| l.kind), Some(Kind::Tool));
        assert_eq!(of(Some("tools/call"), &json!({"tools": []})), None);
        assert_eq!(of(None, &json!({"resourceTemplates": []})).map(|l| l.key), Some("uriTemplate"));
        assert_eq!(of(None, &json!({"content": []})), None);
        assert!(is_list_method("resources/templates/list"));
        assert!(!is_list_method("tools/call"));
    }

    #[test]
    fn hides_and_renames_tools() {
        let names = Names::new(Some("fx_".into()), [("sleep".to_string(), "nap".to_string())].into()).unwrap();
        let mut result = json!({"tools": [{"name": "echo", "description": "d"}, {"name": "crash"}, {"name": "sleep"},
                                          {"nameless": true}, 7], "nextCursor": "c"});
        let list = of(Some("tools/list"), &result).unwrap();
        assert_eq!(filter(list, &mut result, &policy(), &names, &NOBODY), Some(3));
        assert_eq!(
            result,
            json!({"tools": [{"name": "fx_echo", "description": "d"}, {"name": "nap"}], "nextCursor": "c"})
        );
    }

    #[test]
    fn unchanged_lists_say_so() {
        let mut result = json!({"tools": [{"name": "echo"}]});
        let list = of(Some("tools/list"), &result).unwrap();
        assert_eq!(filter(list, &mut result, &policy(), &Names::default(), &NOBODY), None);
        let mut resources = json!({"resources": [{"uri": "test://public/a"}, {"uri": "test://secret"}]});
        let list = of(Some("resources/list"), &resources).unwrap();
        assert_eq!(filter(list, &mut resources, &policy(), &Names::default(), &NOBODY), Some(1));
        assert_eq!(resources, json!({"resources": [{"uri": "test://public/a"}]}));
        let mut malformed = json!({"tools": "not a list"});
        let list = of(Some("tools/list"), &malformed).unwrap();
        assert_eq!(filter(list, &mut malformed, &policy(), &Names::default(), &NOBODY), None);
    }
}
