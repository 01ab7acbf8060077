//! Error types of this crate.

/// A `config.json` value that is missing, malformed or not supported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The text is not JSON of the expected shape.
    #[error("invalid config.json: {0}")]
    Json(String),
    /// A required key is absent.
    #[error("config.json has no \"{key}\"; it is required for Qwen3 models")]
    Missing {
        /// The missing key.
        key: &'static str,
    },
    /// A key has a value this implementation does not run.
    #[error("config.json: {key} = {value} is not supported: {reason}")]
    Unsupported {
        /// The key, dotted for nested values (`rope_parameters.rope_type`).
        key: String,
        /// The value as written.
        value: String,
        /// Why, and what is supported instead.
        reason: String,
    },
}

/// Errors of the forward pass and the KV cache.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The tokens to process do not fit in the KV cache.
    #[error(
        "context full: {requested} tokens at position {position} exceed the KV cache of {capacity} tokens; start a new sequence or allocate a larger cache (at most max_position_embeddings = {max_positions})"
    )]
    ContextFull {
        /// Tokens already in the cache.
        position: usize,
        /// Tokens passed to the forward pass.
        requested: usize,
        /// Tokens the cache holds.
        capacity: usize,
        /// The model's `max_position_embeddings`.
        max_positions: usize,
    },
    /// A cache larger than the model's context was requested.
    #[error("a KV cache of {requested} tokens exceeds max_position_embeddings = {max_positions}")]
    CacheTooLarge {
        /// Requested capacity.
        requested: usize,
        /// The model's `max_position_embeddings`.
        max_positions: usize,
    },
    /// A token id is outside the embedding matrix.
    #[error("token id {id} at index {index} is out of range: the vocabulary has {vocab_size} ids")]
    TokenOutOfRange {
        /// The offending id.
        id: u32,
        /// Its index in the input.
        index: usize,
        /// The model's `vocab_size`.
        vocab_size: usize,
    },
    /// The forward pass was given no tokens.
    #[error("no input tokens: pass at least one token id")]
    EmptyInput,
    /// Logits could not be copied from the device to the host.
    #[error("failed to read logits from the device: {0}")]
    DeviceRead(String),
    /// A cache built for another model shape was passed.
    #[error("the KV cache was built for {cache_layers} layers, the model has {model_layers}")]
    CacheMismatch {
        /// Layers of the cache.
        cache_layers: usize,
        /// Layers of the model.
        model_layers: usize,
    },
}
