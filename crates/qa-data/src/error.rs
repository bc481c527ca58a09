//! Errors of the data layer. Every variant names the file (and, where there is one, the
//! JSON path, line or key) and says what was expected, so a user can fix the input without
//! reading our code.

use std::path::PathBuf;

/// Everything that can go wrong while reading datasets, vocabularies and predictions.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: cannot read file: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not the JSON we expected; `json_path` is where (e.g. `data[3].paragraphs[0].qas[2].answers[0].answer_start`).
    #[error("{path}: at {json_path} (line {line}, column {column}): {message}")]
    Json {
        path: PathBuf,
        json_path: String,
        line: usize,
        column: usize,
        message: String,
    },

    /// The JSON parses but a value is not acceptable (e.g. a negative answer_start).
    #[error("{path}: at {json_path}: {message}")]
    Invalid {
        path: PathBuf,
        json_path: String,
        message: String,
    },

    #[error("{path}: line {line}: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("{0}")]
    Config(String),
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(
        path: impl Into<PathBuf>,
        json_path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            path: path.into(),
            json_path: json_path.into(),
            message: message.into(),
        }
    }

    /// Wraps a serde_json error that went through `serde_path_to_error`, keeping both the
    /// JSON path and serde_json's line/column.
    pub(crate) fn from_json(
        path: impl Into<PathBuf>,
        err: serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let json_path = err.path().to_string();
        let inner = err.inner();
        let message = strip_position(&inner.to_string());
        Self::Json {
            path: path.into(),
            json_path: if json_path.is_empty() || json_path == "." {
                "the top level".to_string()
            } else {
                json_path
            },
            line: inner.line(),
            column: inner.column(),
            message,
        }
    }
}

/// serde_json appends " at line L column C" to its messages; we print the position ourselves.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
