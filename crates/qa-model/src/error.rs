//! Errors of the model layer; each names the file, key or value at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path}: tensor {key:?}: {message}")]
    Weights {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Data(#[from] qa_data::DataError),
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
}

impl From<spec::atomic::FileError> for ModelError {
    fn from(e: spec::atomic::FileError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
