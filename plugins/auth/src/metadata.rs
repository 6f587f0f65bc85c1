//! The OAuth 2.0 Protected Resource Metadata document (RFC 9728) that
//! MCP clients fetch to find the authorization server for this route.

use serde_json::json;

use crate::origin::Resource;

/// What the document says besides the resource's own URL.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub resource_name: Option<String>,
    pub resource_documentation: Option<String>,
}

impl Metadata {
    /// The JSON document for `resource`.
    pub fn document(&self, resource: &Resource) -> String {
        let mut doc = json!({
            "resource": resource.uri(),
            "authorization_servers": self.authorization_servers,
            "scopes_supported": self.scopes_supported,
            // Tokens in query strings or form bodies end up in logs; MCP
            // only allows the Authorization header.
            "bearer_methods_supported": ["header"],
        });
        if let Some(name) = &self.resource_name {
            doc["resource_name"] = json!(name);
        }
        if let Some(docs) = &self.resource_documentation {
            doc["resource_documentation"] = json!(docs);
        }
        doc.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn document_fields() {
        let m = Metadata {
            authorization_servers: vec!["https://auth.example.com".into()],
            scopes_supported: vec!["mcp:read".into(), "mcp:deploy".into()],
            resource_name: Some("Deploy tools".into()),
            resource_documentation: None,
        };
        let r = Resource { origin: "https://mcp.example.com".into(), path: "/mcp".into() };
        let doc: Value = serde_json::from_str(&m.document(&r)).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "resource": "https://mcp.example.com/mcp",
                "authorization_servers": ["https://auth.example.com"],
                "scopes_supported": ["mcp:read", "mcp:deploy"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Deploy tools",
            })
        );
    }
}
