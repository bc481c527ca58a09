//! The one error type of spec's loaders: it names the file, the key and what was expected.

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    /// A HF config.json (or a preset's config with overrides) that cannot describe a model.
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    #[error("{path}: key {key}: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
}
