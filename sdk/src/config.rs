//! `Config`: the plugin's `config` table from mcpd.toml, which the host
//! hands over as JSON text, and its parsing into the plugin's own type.

use std::fmt;

use serde::de::DeserializeOwned;

/// The plugin's config as mcpd passed it (JSON text; `{}` when the route
/// gives none). `Plugin::new` receives it once per instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    json: String,
}

impl Config {
    /// The config the host holds for this plugin.
    pub fn from_host() -> Self {
        Config::from_json(crate::host::get_config())
    }

    /// A config from JSON text; for tests, and what `from_host` uses.
    pub fn from_json(json: impl Into<String>) -> Self {
        Config { json: json.into() }
    }

    /// The JSON text as given.
    pub fn as_str(&self) -> &str {
        &self.json
    }

    /// Parses the config into the plugin's own type. The error names the
    /// field at fault (`deny_tools[1]: invalid type: ...`), which is what an
    /// operator needs to fix mcpd.toml.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        // A host that sends nothing means "no config", not a syntax error.
        let text = if self.json.trim().is_empty() { "{}" } else { &self.json };
        let mut de = serde_json::Deserializer::from_str(text);
        let value = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| ConfigError { path: e.path().to_string(), message: e.inner().to_string() })?;
        de.end().map_err(|e| ConfigError { path: ".".into(), message: e.to_string() })?;
        Ok(value)
    }
}

/// Why the config did not parse: where, and what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// `.` for the whole config, else e.g. `deny_tools[1]`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path == "." {
            write!(f, "invalid plugin config: {}", self.message)
        } else {
            write!(f, "invalid plugin config at `{}`: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        deny_tools: Vec<String>,
    }

    #[test]
    fn parses_and_defaults() {
        let s: Settings = Config::from_json(r#"{"deny_tools":["crash"]}"#).parse().unwrap();
        assert_eq!(s.deny_tools, ["crash"]);
        let s: Settings = Config::from_json("").parse().unwrap();
        assert!(s.deny_tools.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::from_json(r#"{"deny_tools":["a", 3]}"#).parse::<Settings>().unwrap_err();
        assert_eq!(e.path, "deny_tools[1]");
        assert!(e.to_string().starts_with("invalid plugin config at `deny_tools[1]`: invalid type"));
        let e = Config::from_json(r#"{"deny":1}"#).parse::<Settings>().unwrap_err();
        assert!(e.message.contains("unknown field `deny`"), "{e}");
        let e = Config::from_json("{} x").parse::<Settings>().unwrap_err();
        assert!(e.to_string().starts_with("invalid plugin config: trailing"), "{e}");
    }
}
