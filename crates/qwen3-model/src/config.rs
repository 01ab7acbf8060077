//! `Qwen3Config`: the model shape and settings from a checkpoint's `config.json`.

use serde::Deserialize;
use serde_json::Value;

use crate::error::ConfigError;

/// Hyperparameters of a dense Qwen3 model, named as in `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Qwen3Config {
    /// Rows of the embedding and of the LM head (151,936 for every released size).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads per layer.
    pub num_attention_heads: usize,
    /// Key and value heads per layer; query heads are grouped over them.
    pub num_key_value_heads: usize,
    /// Width of one attention head, read from the config and not derived
    /// from `hidden_size / num_attention_heads` (Qwen3-0.6B: 128, not 64).
    pub head_dim: usize,
    /// Epsilon of every RMSNorm.
    pub rms_norm_eps: f64,
    /// Base of the rotary position embedding frequencies.
    pub rope_theta: f64,
    /// Maximum context length the model was trained for, in tokens.
    pub max_position_embeddings: usize,
    /// Whether the LM head reuses the embedding matrix (no `lm_head.weight` in the checkpoint).
    pub tie_word_embeddings: bool,
    /// `bos_token_id`, when set.
    pub bos_token_id: Option<u32>,
    /// `eos_token_id`: one id or a list.
    pub eos_token_ids: Vec<u32>,
    /// Data type of the published weights (`torch_dtype`, or `dtype` in transformers 5 files).
    pub torch_dtype: Option<String>,
}

/// `config.json` as written: fields of both layouts (hub files and transformers 5).
#[derive(Deserialize)]
struct RawConfig {
    architectures: Option<Vec<String>>,
    model_type: Option<String>,
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    hidden_act: Option<String>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_scaling: Option<Value>,
    rope_parameters: Option<Value>,
    max_position_embeddings: Option<usize>,
    tie_word_embeddings: Option<bool>,
    attention_bias: Option<bool>,
    use_sliding_window: Option<bool>,
    layer_types: Option<Vec<String>>,
    bos_token_id: Option<Value>,
    eos_token_id: Option<Value>,
    torch_dtype: Option<String>,
    dtype: Option<String>,
    num_experts: Option<usize>,
}

impl Qwen3Config {
    /// Parses and checks the text of a `config.json`.
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig =
            serde_json::from_str(text).map_err(|e| ConfigError::Json(e.to_string()))?;
        raw.into_config()
    }

    /// Number of query heads that share one key/value head.
    pub fn num_key_value_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    /// Number of parameters, counting a tied embedding once.
    pub fn num_parameters(&self) -> usize {
        let attention = self.hidden_size
            * self.head_dim
            * (2 * self.num_attention_heads + 2 * self.num_key_value_heads)
            + 2 * self.head_dim;
        let mlp = 3 * self.hidden_size * self.intermediate_size;
        let layer = attention + mlp + 2 * self.hidden_size;
        let embedding = self.vocab_size * self.hidden_size;
        let lm_head = if self.tie_word_embeddings {
            0
        } else {
            embedding
        };
        embedding + lm_head + self.num_hidden_layers * layer + self.hidden_size
    }
}

fn required<T>(value: Option<T>, key: &'static str) -> Result<T, ConfigError> {
    value.ok_or(ConfigError::Missing { key })
}

fn unsupported(key: &str, value: impl std::fmt::Display, reason: &str) -> ConfigError {
    ConfigError::Unsupported {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Reads a token id field that may be a number or a list of numbers.
fn token_ids(value: Option<Value>, key: &str) -> Result<Vec<u32>, ConfigError> {
    let ids = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Number(n)) => vec![n],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::Number(n) => Ok(n),
                other => Err(unsupported(key, other, "expected token ids (numbers)")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(unsupported(
                key,
                other,
                "expected a token id or a list of token ids",
            ));
        }
    };
    ids.into_iter()
        .map(|n| {
            n.as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| unsupported(key, &n, "token ids are non-negative integers"))
        })
        .collect()
}

impl RawConfig {
    fn into_config(self) -> Result<Qwen3Config, ConfigError> {
        self.check_architecture()?;

        let hidden_size = required(self.hidden_size, "hidden_size")?;
        let num_attention_heads = required(self.num_attention_heads, "num_attention_heads")?;
        let num_key_value_heads = self.num_key_value_heads.unwrap_or(num_attention_heads);
        let head_dim = match self.head_dim {
            Some(head_dim) => head_dim,
            None if num_attention_heads > 0 => hidden_size / num_attention_heads,
            None => 0,
        };
        let rope_theta = self.rope_theta()?;

        let config = Qwen3Config {
            vocab_size: required(self.vocab_size, "vocab_size")?,
            hidden_size,
            intermediate_size: required(self.intermediate_size, "intermediate_size")?,
            num_hidden_layers: required(self.num_hidden_layers, "num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: self.rms_norm_eps.unwrap_or(1e-6),
            rope_theta,
            max_position_embeddings: required(
                self.max_position_embeddings,
                "max_position_embeddings",
            )?,
            tie_word_embeddings: self.tie_word_embeddings.unwrap_or(false),
            bos_token_id: token_ids(self.bos_token_id, "bos_token_id")?
                .first()
                .copied(),
            eos_token_ids: token_ids(self.eos_token_id, "eos_token_id")?,
            torch_dtype: self.torch_dtype.or(self.dtype),
        };

        check_sizes(&config)?;
        if let Some(act) = &self.hidden_act
            && act != "silu"
        {
            return Err(unsupported(
                "hidden_act",
                format!("{act:?}"),
                "Qwen3 uses \"silu\"",
            ));
        }
        if self.attention_bias == Some(true) {
            return Err(unsupported(
                "attention_bias",
                true,
                "Qwen3 attention has no biases",
            ));
        }
        if self.use_sliding_window == Some(true) {
            return Err(unsupported(
                "use_sliding_window",
                true,
                "sliding-window attention is not implemented",
            ));
        }
        if let Some(layer_types) = &self.layer_types
            && let Some(other) = layer_types.iter().find(|t| *t != "full_attention")
        {
            return Err(unsupported(
                "layer_types",
                format!("{other:?}"),
                "only \"full_attention\" layers are implemented",
            ));
        }
        Ok(config)
    }

    fn check_architecture(&self) -> Result<(), ConfigError> {
        if let Some(model_type) = &self.model_type
            && model_type != "qwen3"
        {
            let reason = if model_type.contains("moe") {
                "mixture-of-experts models are not supported; this crate runs the dense Qwen3 models"
            } else {
                "expected \"qwen3\""
            };
            return Err(unsupported("model_type", format!("{model_type:?}"), reason));
        }
        if let Some(architectures) = &self.architectures
            && !architectures.iter().any(|a| a == "Qwen3ForCausalLM")
        {
            return Err(unsupported(
                "architectures",
                format!("{architectures:?}"),
                "expected [\"Qwen3ForCausalLM\"]",
            ));
        }
        if let Some(experts) = self.num_experts
            && experts > 0
        {
            return Err(unsupported(
                "num_experts",
                experts,
                "mixture-of-experts models are not supported",
            ));
        }
        Ok(())
    }

    /// Reads `rope_theta` from either layout and rejects RoPE scaling, which is not implemented.
    fn rope_theta(&self) -> Result<f64, ConfigError> {
        let mut theta = self.rope_theta;

        if let Some(params) = &self.rope_parameters {
            if let Some(value) = params.get("rope_theta") {
                theta = Some(value.as_f64().ok_or_else(|| {
                    unsupported("rope_parameters.rope_theta", value, "expected a number")
                })?);
            }
            if let Some(kind) = params.get("rope_type").or_else(|| params.get("type"))
                && kind.as_str() != Some("default")
            {
                return Err(unsupported(
                    "rope_parameters.rope_type",
                    kind,
                    "only \"default\" RoPE is implemented (no YaRN or other scaling)",
                ));
            }
        }
        if let Some(scaling) = &self.rope_scaling
            && !scaling.is_null()
        {
            let kind = scaling
                .get("rope_type")
                .or_else(|| scaling.get("type"))
                .cloned()
                .unwrap_or(Value::Null);
            if kind.as_str() != Some("default") {
                return Err(unsupported(
                    "rope_scaling",
                    scaling,
                    "RoPE scaling (YaRN and others) is not implemented; remove rope_scaling for contexts up to max_position_embeddings",
                ));
            }
        }
        required(theta, "rope_theta")
    }
}

fn check_sizes(config: &Qwen3Config) -> Result<(), ConfigError> {
    let positive = [
        ("vocab_size", config.vocab_size),
        ("hidden_size", config.hidden_size),
        ("intermediate_size", config.intermediate_size),
        ("num_hidden_layers", config.num_hidden_layers),
        ("num_attention_heads", config.num_attention_heads),
        ("num_key_value_heads", config.num_key_value_heads),
        ("head_dim", config.head_dim),
        ("max_position_embeddings", config.max_position_embeddings),
    ];
    for (key, value) in positive {
        if value == 0 {
            return Err(unsupported(key, 0, "must be positive"));
        }
    }
    if !config
        .num_attention_heads
        .is_multiple_of(config.num_key_value_heads)
    {
        return Err(unsupported(
            "num_key_value_heads",
            config.num_key_value_heads,
            &format!(
                "must divide num_attention_heads ({})",
                config.num_attention_heads
            ),
        ));
    }
    if !config.head_dim.is_multiple_of(2) {
        return Err(unsupported(
            "head_dim",
            config.head_dim,
            "rotary embeddings need an even head_dim",
        ));
    }
    if config.rope_theta.is_nan() || config.rope_theta <= 0.0 {
        return Err(unsupported(
            "rope_theta",
            config.rope_theta,
            "must be positive",
        ));
    }
    if config.rms_norm_eps.is_nan() || config.rms_norm_eps < 0.0 {
        return Err(unsupported(
            "rms_norm_eps",
            config.rms_norm_eps,
            "must not be negative",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUB_4B: &str = r#"{
        "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151645, "head_dim": 128, "hidden_act": "silu",
        "hidden_size": 2560, "initializer_range": 0.02, "intermediate_size": 9728,
        "max_position_embeddings": 40960, "max_window_layers": 36, "model_type": "qwen3",
        "num_attention_heads": 32, "num_hidden_layers": 36, "num_key_value_heads": 8,
        "rms_norm_eps": 1e-06, "rope_scaling": null, "rope_theta": 1000000,
        "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
        "transformers_version": "4.51.0", "use_cache": true, "use_sliding_window": false,
        "vocab_size": 151936
    }"#;

    fn with(key: &str, value: Value) -> String {
        let mut config: Value = serde_json::from_str(HUB_4B).expect("valid JSON");
        config[key] = value;
        config.to_string()
    }

    #[test]
    fn hub_config_of_4b() {
        let config = Qwen3Config::from_json_str(HUB_4B).expect("valid config");
        assert_eq!(config.head_dim, 128);
        assert_eq!(config.num_key_value_groups(), 4);
        assert_eq!(config.rope_theta, 1e6);
        assert_eq!(config.eos_token_ids, vec![151645]);
        assert_eq!(config.torch_dtype.as_deref(), Some("bfloat16"));
        // Embedding 151936 x 2560, 36 layers of 100,930,816, and the final norm.
        assert_eq!(config.num_parameters(), 4_022_468_096);
    }

    #[test]
    fn transformers5_layout() {
        let mut config: Value = serde_json::from_str(HUB_4B).expect("valid JSON");
        let object = config.as_object_mut().expect("object");
        object.remove("rope_theta");
        object.remove("rope_scaling");
        object.remove("torch_dtype");
        object.insert("dtype".into(), "bfloat16".into());
        object.insert(
            "rope_parameters".into(),
            serde_json::json!({"rope_theta": 5e5, "rope_type": "default"}),
        );
        object.insert(
            "layer_types".into(),
            serde_json::Value::from(vec!["full_attention"; 36]),
        );
        let parsed = Qwen3Config::from_json_str(&config.to_string()).expect("valid config");
        assert_eq!(parsed.rope_theta, 5e5);
        assert_eq!(parsed.torch_dtype.as_deref(), Some("bfloat16"));
    }

    #[test]
    fn rejects_moe_model_type() {
        let error =
            Qwen3Config::from_json_str(&with("model_type", "qwen3_moe".into())).expect_err("MoE");
        assert!(error.to_string().contains("model_type"), "{error}");
        assert!(error.to_string().contains("qwen3_moe"), "{error}");
    }

    #[test]
    fn rejects_sliding_window() {
        let error = Qwen3Config::from_json_str(&with("use_sliding_window", true.into()))
            .expect_err("sliding");
        assert!(error.to_string().contains("use_sliding_window"), "{error}");
    }

    #[test]
    fn rejects_sliding_layer_type() {
        let layers = serde_json::json!(["full_attention", "sliding_attention"]);
        let error =
            Qwen3Config::from_json_str(&with("layer_types", layers)).expect_err("sliding layer");
        assert!(error.to_string().contains("sliding_attention"), "{error}");
    }

    #[test]
    fn rejects_yarn_scaling() {
        let yarn = serde_json::json!({"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768});
        let error = Qwen3Config::from_json_str(&with("rope_scaling", yarn)).expect_err("yarn");
        assert!(error.to_string().contains("rope_scaling"), "{error}");
        assert!(error.to_string().contains("yarn"), "{error}");
    }

    #[test]
    fn rejects_unknown_rope_type() {
        let params = serde_json::json!({"rope_theta": 1e6, "rope_type": "llama3"});
        let error =
            Qwen3Config::from_json_str(&with("rope_parameters", params)).expect_err("rope type");
        assert!(error.to_string().contains("rope_type"), "{error}");
        assert!(error.to_string().contains("llama3"), "{error}");
    }

    #[test]
    fn rejects_indivisible_heads() {
        let error =
            Qwen3Config::from_json_str(&with("num_key_value_heads", 5.into())).expect_err("heads");
        assert!(error.to_string().contains("num_key_value_heads"), "{error}");
    }

    #[test]
    fn rejects_missing_hidden_size() {
        let mut config: Value = serde_json::from_str(HUB_4B).expect("valid JSON");
        config
            .as_object_mut()
            .expect("object")
            .remove("hidden_size");
        let error = Qwen3Config::from_json_str(&config.to_string()).expect_err("missing");
        assert!(error.to_string().contains("hidden_size"), "{error}");
    }

    #[test]
    fn eos_token_id_list() {
        let config =
            Qwen3Config::from_json_str(&with("eos_token_id", serde_json::json!([151645, 151643])))
                .expect("valid config");
        assert_eq!(config.eos_token_ids, vec![151645, 151643]);
    }
}
