//! One error type for the whole binary. Every error knows its exit code and can carry a hint that says how to
//! fix it, so `main` can print one clear message (or one JSON object) and exit with a documented code.

use std::fmt;

/// Exit codes, documented in README.md ("Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A step failed or a check did not pass (exit 1).
    Failed,
    /// Bad flags, bad config values or a malformed config file (exit 2).
    Usage,
    /// Something we need is missing: Docker, a tool, an image, a free port (exit 3).
    Prerequisite,
    /// A bounded wait ran out (exit 4).
    Timeout,
    /// Ctrl-C (exit 130, as shells report SIGINT).
    Interrupted,
    /// SIGTERM (exit 143, as shells report it).
    Terminated,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Failed => 1,
            Kind::Usage => 2,
            Kind::Prerequisite => 3,
            Kind::Timeout => 4,
            Kind::Interrupted => 130,
            Kind::Terminated => 143,
        }
    }
}

#[derive(Debug)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
    /// Extra lines printed after the message: a diagnosis, the tail of a log.
    pub details: Vec<String>,
    pub source: Option<anyhow::Error>,
    /// The command already put this error into its own JSON result (smoke's report), so `main` must not print a
    /// second JSON document.
    pub in_report: bool,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
            details: Vec::new(),
            source: None,
            in_report: false,
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(Kind::Failed, message)
    }
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Kind::Usage, message)
    }
    pub fn prerequisite(message: impl Into<String>) -> Self {
        Self::new(Kind::Prerequisite, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(Kind::Timeout, message)
    }
    /// The error for a signal that stopped the command: SIGINT or SIGTERM.
    pub fn interrupted(kind: Kind) -> Self {
        let message = match kind {
            Kind::Terminated => "terminated (SIGTERM)",
            _ => "interrupted (SIGINT)",
        };
        Self::new(kind, message)
            .hint("run `restate-dev up` again to resume, or `restate-dev down` to remove what was made")
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn detail(mut self, line: impl Into<String>) -> Self {
        self.details.push(line.into());
        self
    }
    pub fn source(mut self, source: impl Into<anyhow::Error>) -> Self {
        self.source = Some(source.into());
        self
    }
    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }
    pub fn in_report(mut self) -> Self {
        self.in_report = true;
        self
    }

    /// The error as the document `--output json` prints: `{"error": {…}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.fields() })
    }

    /// The error's own fields, for a document that has an `error` key of its own (smoke's report).
    pub fn fields(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind,
            "message": self.message,
            "cause": self.source.as_ref().map(|s| format!("{s:#}")),
            "hint": self.hint,
            "details": self.details,
            "exit_code": self.exit_code(),
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(source) = &self.source {
            write!(f, "\n  caused by: {source:#}")?;
        }
        for line in &self.details {
            write!(f, "\n  {line}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Adds a message to a lower-level error, keeping it as the cause.
pub trait Context<T> {
    fn context(self, kind: Kind, message: impl FnOnce() -> String) -> Result<T>;
    fn failed(self, message: impl FnOnce() -> String) -> Result<T>
    where
        Self: Sized,
    {
        self.context(Kind::Failed, message)
    }
}

impl<T, E: Into<anyhow::Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, kind: Kind, message: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::new(kind, message()).source(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_message_cause_and_hint() {
        let e = Error::prerequisite("Docker is not reachable at unix:///nope")
            .source(anyhow::anyhow!("connection refused"))
            .hint("start Docker");
        let text = e.to_string();
        assert_eq!(
            text,
            "error: Docker is not reachable at unix:///nope\n  caused by: connection refused\n  hint: start Docker"
        );
        assert_eq!(e.exit_code(), 3);
        assert_eq!(e.to_json()["error"]["kind"], "prerequisite");
    }

    #[test]
    fn exit_codes_are_distinct() {
        let codes: std::collections::BTreeSet<i32> = [
            Kind::Failed,
            Kind::Usage,
            Kind::Prerequisite,
            Kind::Timeout,
            Kind::Interrupted,
            Kind::Terminated,
        ]
        .iter()
        .map(|k| k.exit_code())
        .collect();
        assert_eq!(codes.len(), 6);
    }
}
