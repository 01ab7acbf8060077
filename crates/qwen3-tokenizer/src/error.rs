//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can fail while loading tokenizer files, encoding, decoding or
/// rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A required file is not in the model folder.
    #[error(
        "{path} not found: the model folder must contain tokenizer.json and tokenizer_config.json from the Hugging Face checkpoint"
    )]
    MissingFile {
        /// The path that was looked up.
        path: PathBuf,
    },

    /// A file exists but could not be read.
    #[error("failed to read {path}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The operating system error.
        source: std::io::Error,
    },

    /// `tokenizer.json` exists but the `tokenizers` crate rejected it.
    #[error(
        "invalid tokenizer file {path}: {message}; replace it with the tokenizer.json of the checkpoint"
    )]
    InvalidTokenizer {
        /// The rejected file.
        path: PathBuf,
        /// The reason given by the `tokenizers` crate.
        message: String,
    },

    /// `tokenizer_config.json` (or another JSON file) is not valid JSON of the expected shape.
    #[error("invalid JSON in {path}: {message}")]
    InvalidJson {
        /// The rejected file.
        path: PathBuf,
        /// The problem and its location.
        message: String,
    },

    /// A token named in `tokenizer_config.json` is not in the vocabulary.
    #[error(
        "{field} {token:?} in {path} is not a token of tokenizer.json; the two files come from different checkpoints"
    )]
    UnknownToken {
        /// The config key, such as `eos_token`.
        field: String,
        /// The token text.
        token: String,
        /// The config file.
        path: PathBuf,
    },

    /// No chat template in `chat_template.jinja` or `tokenizer_config.json`.
    #[error(
        "no chat template in {path}: expected a \"chat_template\" entry or a chat_template.jinja file beside it"
    )]
    MissingTemplate {
        /// The config file that was searched.
        path: PathBuf,
    },

    /// The chat template failed to parse or to render.
    #[error("chat template from {source_name}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Template {
        /// Source of the template (a file path).
        source_name: String,
        /// The 1-based template line of the failure, when known.
        line: Option<usize>,
        /// The cause reported by the template engine.
        message: String,
    },

    /// A chat message list or a tool list does not have the expected shape.
    #[error("invalid {what}: {message}")]
    InvalidMessages {
        /// `messages` or `tools`, with the file name when there is one.
        what: String,
        /// The problem, with the index of the offending entry.
        message: String,
    },

    /// `apply_chat_template` was given no messages.
    #[error("no messages to render: a conversation needs at least one message")]
    EmptyConversation,

    /// Encoding or decoding failed inside the `tokenizers` crate.
    #[error("{operation} failed: {message}")]
    Tokenizers {
        /// `encode` or `decode`.
        operation: &'static str,
        /// The reason given by the `tokenizers` crate.
        message: String,
    },
}
