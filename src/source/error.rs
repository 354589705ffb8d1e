//! The one error type of the source layer: a path that could not be used, with what was being
//! done and, for content, the line. Everything a user can meet names the file.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{path}: no such file or directory")]
    NotFound { path: String },
    /// The I/O error is part of the message (not a chained source, which would print twice).
    #[error("{path}: cannot {action}: {cause}")]
    Io {
        path: String,
        action: &'static str,
        cause: std::io::Error,
    },
    /// The file reads, but its content is not what it must be (a header, a column).
    #[error("{path}{}: {message}", at_line(*line))]
    Content {
        path: String,
        line: Option<u64>,
        message: String,
    },
}

fn at_line(line: Option<u64>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

impl InputError {
    /// `map_err(InputError::io(path, "open"))`.
    pub fn io(
        path: impl AsRef<Path>,
        action: &'static str,
    ) -> impl FnOnce(std::io::Error) -> InputError {
        let path = path.as_ref().display().to_string();
        move |cause| InputError::Io {
            path,
            action,
            cause,
        }
    }

    /// As `io`, for a source known by its display name (`<stdin>` included).
    pub fn io_named(
        name: String,
        action: &'static str,
    ) -> impl FnOnce(std::io::Error) -> InputError {
        move |cause| InputError::Io {
            path: name,
            action,
            cause,
        }
    }

    pub fn content(
        path: impl Into<String>,
        line: Option<u64>,
        message: impl Into<String>,
    ) -> InputError {
        InputError::Content {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}
