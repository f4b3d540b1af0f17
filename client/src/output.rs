//! How commands print: one JSON document with `--json`, plain lines otherwise; and the one error
//! type every command returns, printed on stderr.

use serde::Serialize;

/// Whether to print JSON.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as JSON, or `human()` as text.
    pub fn emit<T: Serialize>(
        &self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        if self.json {
            let text = serde_json::to_string_pretty(value)
                .map_err(|e| CliError::Invalid(e.to_string()))?;
            println!("{text}");
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
        Ok(())
    }
}

/// A command that failed; the message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    #[error("{}", describe(.0))]
    Refused(#[from] tonic::Status),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// A check found a problem (the report was printed on stdout).
    #[error("{0}")]
    Finding(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

fn describe(status: &tonic::Status) -> String {
    use tonic::Code;
    let what = match status.code() {
        Code::PermissionDenied => "refused",
        Code::InvalidArgument => "invalid request",
        Code::NotFound => "not found",
        Code::FailedPrecondition => "refused by the rules",
        Code::AlreadyExists => "already exists",
        Code::Unauthenticated => "not authenticated",
        Code::Unavailable => "the server cannot be reached",
        _ => "failed",
    };
    format!("{what}: {}", status.message())
}

impl CliError {
    /// The process exit code: 2 for what the user sent, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Refused(s)
                if matches!(
                    s.code(),
                    tonic::Code::InvalidArgument
                        | tonic::Code::FailedPrecondition
                        | tonic::Code::NotFound
                ) =>
            {
                2
            }
            CliError::Invalid(_) => 2,
            CliError::Finding(_) => 3,
            _ => 1,
        }
    }
}
