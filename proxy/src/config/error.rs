//! The one error type of configuration loading.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the configuration file: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{location}: {key}: {message}")]
    Invalid { location: Location, key: String, message: String },
}

/// `file:line:column`, 1-based, the way editors and compilers print it.
#[derive(Debug, Clone)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// Turns a byte span of `text` into a line and column.
    pub fn of(path: &std::path::Path, text: &str, span: Option<Range<usize>>) -> Location {
        let offset = span.map(|s| s.start).unwrap_or(0).min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        Location { path: path.to_path_buf(), line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}
