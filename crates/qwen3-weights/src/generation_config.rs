//! `generation_config.json`: sampling defaults and stop tokens published with a checkpoint.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::WeightsError;

/// File name of the generation defaults in a checkpoint folder.
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";

/// Sampling defaults of a checkpoint, named as in `transformers`' `GenerationConfig`.
/// Fields absent from the file are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationConfig {
    /// Whether the model card expects sampling rather than greedy decoding.
    pub do_sample: Option<bool>,
    /// Softmax temperature.
    pub temperature: Option<f64>,
    /// Keep only the `top_k` most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens whose probabilities sum to `top_p`.
    pub top_p: Option<f64>,
    /// Drop tokens less likely than `min_p` times the most likely one.
    pub min_p: Option<f64>,
    /// Penalty on tokens already present, as `transformers` applies it.
    pub repetition_penalty: Option<f64>,
    /// Stop token ids (one or a list in the file).
    pub eos_token_ids: Vec<u32>,
    /// Padding token id.
    pub pad_token_id: Option<u32>,
    /// BOS token id.
    pub bos_token_id: Option<u32>,
}

#[derive(Deserialize)]
struct RawGenerationConfig {
    do_sample: Option<bool>,
    temperature: Option<f64>,
    top_k: Option<usize>,
    top_p: Option<f64>,
    min_p: Option<f64>,
    repetition_penalty: Option<f64>,
    eos_token_id: Option<Value>,
    pad_token_id: Option<Value>,
    bos_token_id: Option<Value>,
}

impl GenerationConfig {
    /// Reads `generation_config.json` from `dir`; a folder without one gives the empty default.
    pub fn from_dir(dir: &Path) -> Result<Self, WeightsError> {
        let path = dir.join(GENERATION_CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => return Err(WeightsError::Io { path, source }),
        };
        let invalid = |message: String| WeightsError::GenerationConfig {
            path: path.clone(),
            message,
        };
        let raw: RawGenerationConfig =
            serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;

        Ok(GenerationConfig {
            do_sample: raw.do_sample,
            temperature: raw.temperature,
            top_k: raw.top_k,
            top_p: raw.top_p,
            min_p: raw.min_p,
            repetition_penalty: raw.repetition_penalty,
            eos_token_ids: token_ids(raw.eos_token_id, "eos_token_id").map_err(invalid)?,
            pad_token_id: token_ids(raw.pad_token_id, "pad_token_id")
                .map_err(invalid)?
                .first()
                .copied(),
            bos_token_id: token_ids(raw.bos_token_id, "bos_token_id")
                .map_err(invalid)?
                .first()
                .copied(),
        })
    }
}

fn token_ids(value: Option<Value>, key: &str) -> Result<Vec<u32>, String> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(single) => vec![single],
    };
    items
        .iter()
        .map(|item| {
            item.as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| {
                    format!("{key} must be a token id or a list of token ids, found {item}")
                })
        })
        .collect()
}
