//! Durations in the plugin's config, written the way mcpd.toml writes its
//! own (`"500ms"`, `"30s"`, `"10m"`, `"1h"`), or a bare number of seconds.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A duration from the config; deserializes from `"30s"` or `30`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = ConfigDuration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as \"30s\", \"500ms\", \"10m\" or \"1h\", or a number of seconds")
    }

    fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<ConfigDuration, E> {
        Ok(ConfigDuration(Duration::from_secs(seconds)))
    }

    fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<ConfigDuration, E> {
        u64::try_from(seconds)
            .map(|s| ConfigDuration(Duration::from_secs(s)))
            .map_err(|_| E::custom("a duration cannot be negative"))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<ConfigDuration, E> {
        parse(text).map(ConfigDuration).ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
    }
}

/// `"30s"` → 30 seconds; `None` for anything else.
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let millis_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    Some(Duration::from_millis(n.checked_mul(millis_per_unit)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_numbers() {
        assert_eq!(parse("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("0s"), Some(Duration::ZERO));
        assert_eq!(parse("10"), None, "a string needs a unit");
        assert_eq!(parse("s"), None);
        assert_eq!(parse("1d"), None);
        let d: ConfigDuration = serde_json::from_str("45").unwrap();
        assert_eq!(d.0, Duration::from_secs(45));
        let e = serde_json::from_str::<ConfigDuration>("\"soon\"").unwrap_err();
        assert!(e.to_string().contains("a duration such as"), "{e}");
    }
}
