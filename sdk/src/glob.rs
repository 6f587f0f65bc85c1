//! Glob patterns for names in a plugin's config (`expensive_*`, `tools/*`): `*`
//! matches any run of characters (including none), `?` exactly one, and
//! everything else itself. No escapes and no character classes: tool names
//! and methods never need them, and a few lines beat a regex engine in a
//! plugin that runs on every request.
//!
//! Shared by the first-party plugins (rate-limit, tool-policy, auth) and
//! open to any plugin.

/// One pattern, kept as characters so `?` means one character, not one byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<char>,
}

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob { pattern: pattern.chars().collect() }
    }

    /// The pattern as text when it has no wildcard (it matches only itself).
    pub fn literal(&self) -> Option<String> {
        (!self.pattern.iter().any(|c| matches!(c, '*' | '?'))).then(|| self.pattern.iter().collect())
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        // The common patterns, without collecting `text` into characters.
        if self.pattern == ['*'] {
            return true;
        }
        if !self.pattern.iter().any(|c| matches!(c, '*' | '?')) {
            return self.pattern.iter().copied().eq(text.chars());
        }
        let text: Vec<char> = text.chars().collect();
        let pattern = &self.pattern;
        // Greedy scan with one backtrack point (the last `*`): linear in
        // practice and never exponential, whatever a client sends.
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match pattern.get(p) {
                Some('*') => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(&c) if c == '?' || c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    // Let the last `*` swallow one more character.
                    Some((sp, st)) => {
                        star = Some((sp, st + 1));
                        p = sp + 1;
                        t = st + 1;
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(|&c| c == '*')
    }
}

/// Whether any of `globs` matches `text`.
pub fn any(globs: &[Glob], text: &str) -> bool {
    globs.iter().any(|g| g.matches(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Glob::new(pattern).matches(text)
    }

    #[test]
    fn literals_stars_and_questions() {
        assert!(m("echo", "echo"));
        assert!(!m("echo", "echo2"));
        assert!(!m("echo", "ech"));
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("expensive_*", "expensive_"));
        assert!(m("expensive_*", "expensive_search"));
        assert!(!m("expensive_*", "cheap_search"));
        assert!(m("*_admin", "delete_admin"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("a*b", "abab"));
        assert!(m("?cho", "echo"));
        assert!(!m("?cho", "cho"));
        assert!(m("ü?", "üß"), "? is one character, not one byte");
        assert!(m("**", "x"));
    }

    #[test]
    fn no_blow_up_on_many_stars() {
        let text = "a".repeat(10_000);
        assert!(!m("*a*a*a*a*a*a*a*a*b", &text));
    }
}
