//! Reads Hugging Face Qwen3 checkpoint folders into [`qwen3_model`].
//!
//! A folder contains `config.json`, optionally `generation_config.json`, and the
//! weights as `model.safetensors` or as shards listed in
//! `model.safetensors.index.json`, in f32, f16 or bf16. Loading checks every
//! tensor header against the config first and reports all problems at once,
//! then copies tensors out of memory maps one at a time, cast to the dtype the
//! device runs.
//!
//! ```no_run
//! use qwen3_weights::Checkpoint;
//! use qwen3_model::burn::tensor::{DType, Device};
//!
//! let checkpoint = Checkpoint::open("Qwen3-0.6B")?;
//! let (model, report) = checkpoint.load(&Device::default(), DType::F32)?;
//! # Ok::<(), qwen3_weights::WeightsError>(())
//! ```

mod checkpoint;
mod error;
mod generation_config;
mod shards;

pub use checkpoint::{CONFIG_FILE, Checkpoint, LoadReport};
pub use error::WeightsError;
pub use generation_config::{GENERATION_CONFIG_FILE, GenerationConfig};
pub use shards::{INDEX_FILE, SINGLE_FILE};
