//! The error type of this crate.

use std::path::PathBuf;

use qwen3_model::ConfigError;

/// Everything that can be wrong with a checkpoint folder.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A required file is absent.
    #[error("{path} not found: {hint}")]
    MissingFile {
        /// The path looked up.
        path: PathBuf,
        /// Expected contents of the folder.
        hint: &'static str,
    },

    /// A file exists but could not be read or mapped.
    #[error("failed to read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system error.
        source: std::io::Error,
    },

    /// `config.json` is invalid or requests something not supported.
    #[error("invalid {path}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// The problem.
        source: ConfigError,
    },

    /// `generation_config.json` is not valid JSON of the expected shape.
    #[error("invalid {path}: {message}")]
    GenerationConfig {
        /// The file.
        path: PathBuf,
        /// The problem.
        message: String,
    },

    /// A safetensors file is truncated or its header is corrupt.
    #[error(
        "invalid safetensors file {path}: {message}; the file is damaged or incomplete, download it again"
    )]
    InvalidSafetensors {
        /// The file.
        path: PathBuf,
        /// The reason from the safetensors parser.
        message: String,
    },

    /// `model.safetensors.index.json` is invalid or inconsistent with the shards.
    #[error("invalid index {path}: {message}")]
    InvalidIndex {
        /// The index file.
        path: PathBuf,
        /// The problem.
        message: String,
    },

    /// The tensors in the files do not match what the config describes.
    #[error(
        "checkpoint {dir} does not match its config.json:\n{}",
        first_problems(problems)
    )]
    TensorMismatch {
        /// The checkpoint folder.
        dir: PathBuf,
        /// One line per missing, unexpected, duplicated, misshaped or
        /// unsupported tensor.
        problems: Vec<String>,
    },

    /// The device cannot hold the requested dtype.
    #[error(
        "the device {device} does not support {dtype:?}; choose f32 (supported on every device)"
    )]
    UnsupportedDtype {
        /// The device, as burn prints it.
        device: String,
        /// The requested dtype.
        dtype: burn::tensor::DType,
    },
}

/// Number of problems a [`WeightsError::TensorMismatch`] message lists. A
/// config of another model size can give one per tensor, hundreds in all.
const LISTED_PROBLEMS: usize = 20;

/// Returns the first [`LISTED_PROBLEMS`] lines of `problems`, and how many
/// more there are.
fn first_problems(problems: &[String]) -> String {
    let mut text = problems[..problems.len().min(LISTED_PROBLEMS)].join("\n");
    if problems.len() > LISTED_PROBLEMS {
        text.push_str(&format!(
            "\n... and {} more",
            problems.len() - LISTED_PROBLEMS
        ));
    }
    text
}
