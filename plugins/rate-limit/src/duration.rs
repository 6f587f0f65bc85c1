//! Periods as operators write them in mcpd.toml: a whole number and a unit,
//! `500ms`, `1s`, `1m`, `1h`, `1d`. No bare numbers: `per = 60` could mean
//! seconds or milliseconds, and guessing wrong is a limit 1000 times off.

use std::time::Duration;

/// Parses `text`; the error says what is accepted.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("`{text}` is not a period: write a whole number and a unit (ms, s, m, h, d), e.g. `1m`");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(unit_ms).ok_or_else(|| format!("`{text}` is too long a period"))?;
    if ms == 0 {
        return Err(format!("`{text}`: the period must be longer than zero"));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse(" 1 d "), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn refusals_say_why() {
        for bad in ["", "60", "m", "1.5s", "1 min", "-1s"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("whole number and a unit"), "{bad}: {e}");
        }
        assert!(parse("0s").unwrap_err().contains("longer than zero"));
        assert!(parse("99999999999999999999d").is_err());
    }
}
