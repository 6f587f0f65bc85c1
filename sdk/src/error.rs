//! `Error`: what `Plugin::new` fails with. Any `std::error::Error` converts
//! into it, so `?` works on config parsing, JSON and store calls alike.

use std::fmt;

/// An error with a message for mcpd's log.
pub struct Error(String);

impl Error {
    /// An error from any message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Error(message.to_string())
    }

    pub fn message(&self) -> &str {
        &self.0
    }
}

// `Error` deliberately does not implement `std::error::Error`: that is what
// lets this blanket conversion exist (the same trick as `anyhow`).
impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        Error(error.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
