//! The Qwen3 dense language model on burn.
//!
//! Modules mirror `Qwen3ForCausalLM` in `transformers`, field for field and
//! name for name (`model.layers.3.self_attn.q_norm`), and name no burn
//! backend: the device passed at construction decides where and in which
//! dtype the model runs. This crate works on token ids and tensors. Reading
//! checkpoint files is the job of `qwen3-weights`, and text that of `qwen3-tokenizer`.
//!
//! ```no_run
//! # fn run(model: &qwen3_model::Qwen3ForCausalLM) -> Result<(), qwen3_model::ModelError> {
//! use qwen3_model::Logits;
//!
//! let mut cache = model.new_cache(4096)?;
//! let logits = model.forward(&[151644, 872, 198], &mut cache, Logits::Last)?; // [1, vocab_size]
//! # Ok(()) }
//! ```

mod attention;
mod cache;
mod config;
mod error;
mod generate;
mod host;
mod mlp;
mod model;
mod norm;
mod projection;
mod rope;
mod sampler;
mod weights;

pub use attention::Attention;
pub use cache::KvCache;
pub use config::Qwen3Config;
pub use error::{ConfigError, ModelError};
pub use generate::{FinishReason, GenerateOptions, Generation, Step, argmax_last, generate};
pub use host::{HostMatrix, HostMatrixError, SharedBytes};
pub use mlp::Mlp;
pub use model::{DecoderLayer, ForwardOutput, Logits, Qwen3ForCausalLM, Qwen3Model};
pub use norm::RmsNorm;
pub use projection::{Projection, TokenEmbedding};
pub use rope::RotaryEmbedding;
pub use sampler::{Sampler, SamplingParams, argmax};
pub use weights::{TensorSource, WeightSpec, build_model, expected_tensors, supports_weight_dtype};

/// Re-export of burn, so that callers name the same version.
pub use burn;
