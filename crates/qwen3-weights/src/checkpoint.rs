//! A Hugging Face checkpoint folder and loading it into a model.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{DType, Device, TensorData};
use qwen3_model::{
    HostMatrix, Qwen3Config, Qwen3ForCausalLM, TensorSource, build_model, expected_tensors,
    supports_weight_dtype,
};

use crate::error::WeightsError;
use crate::generation_config::GenerationConfig;
use crate::shards::{Shards, burn_dtype};

/// File name of the model configuration.
pub const CONFIG_FILE: &str = "config.json";

/// A checkpoint folder with its configuration read and checked.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// The folder.
    pub dir: PathBuf,
    /// `config.json`.
    pub config: Qwen3Config,
    /// `generation_config.json` (empty when the folder has none).
    pub generation_config: GenerationConfig,
}

/// Summary of a load, for logs and statistics.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Dtype of the tensors on disk (the first tensor's; mixed files are allowed).
    pub file_dtype: DType,
    /// Dtype the model runs in.
    pub dtype: DType,
    /// Number of parameters.
    pub parameters: usize,
    /// Wall time of the load, in seconds.
    pub seconds: f64,
}

impl Checkpoint {
    /// Reads `config.json` and `generation_config.json` of a folder.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, WeightsError> {
        let dir = dir.as_ref().to_path_buf();
        let config_path = dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&config_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(WeightsError::MissingFile {
                    path: config_path,
                    hint: "the model folder must be a Hugging Face checkpoint with config.json and safetensors files",
                });
            }
            Err(source) => {
                return Err(WeightsError::Io {
                    path: config_path,
                    source,
                });
            }
        };
        let config = Qwen3Config::from_json_str(&text).map_err(|source| WeightsError::Config {
            path: config_path,
            source,
        })?;
        let generation_config = GenerationConfig::from_dir(&dir)?;
        Ok(Checkpoint {
            dir,
            config,
            generation_config,
        })
    }

    /// Returns the dtype config.json gives for the stored weights
    /// (`torch_dtype` or `dtype`), when it is f32, bf16 or f16.
    pub fn stored_dtype(&self) -> Option<DType> {
        match self.config.torch_dtype.as_deref()? {
            "float32" => Some(DType::F32),
            "bfloat16" => Some(DType::BF16),
            "float16" => Some(DType::F16),
            _ => None,
        }
    }

    /// Returns the stop token ids from `config.json` and `generation_config.json`, in that
    /// order and without repeats. The tokenizer's `eos_token` is added by the
    /// caller that owns the tokenizer.
    pub fn eos_token_ids(&self) -> Vec<u32> {
        let mut ids = self.config.eos_token_ids.clone();
        for &id in &self.generation_config.eos_token_ids {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// Loads the weights into a model on `device`, cast to `dtype`.
    ///
    /// Every tensor header is checked before any data is read: each tensor the
    /// config implies must be present once, with its shape and a float dtype,
    /// and nothing else may be there. All problems are reported in one error.
    /// Tensors are read from memory maps one at a time, and the mapped pages
    /// of each are released once it is copied or converted.
    pub fn load(
        &self,
        device: &Device,
        dtype: DType,
    ) -> Result<(Qwen3ForCausalLM, LoadReport), WeightsError> {
        self.load_with_progress(device, dtype, &mut |_, _| {})
    }

    /// As [`load`](Self::load), calling `progress(tensors_loaded, tensors_total)` after each tensor.
    pub fn load_with_progress(
        &self,
        device: &Device,
        dtype: DType,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Qwen3ForCausalLM, LoadReport), WeightsError> {
        let start = Instant::now();
        if !supports_weight_dtype(device, dtype) {
            return Err(WeightsError::UnsupportedDtype {
                device: format!("{device:?}"),
                dtype,
            });
        }

        let shards = Shards::open(&self.dir)?;
        let file_dtype = self.check_tensors(&shards)?;

        let mut source = ShardSource {
            dir: &self.dir,
            shards: &shards,
            loaded: 0,
            total: expected_tensors(&self.config).len(),
            progress,
        };
        let model = build_model(&self.config, &mut source, device, dtype)?;

        let report = LoadReport {
            file_dtype,
            dtype,
            parameters: self.config.num_parameters(),
            seconds: start.elapsed().as_secs_f64(),
        };
        tracing::info!(
            path = %self.dir.display(),
            ?dtype,
            device = ?device,
            parameters = report.parameters,
            seconds = report.seconds,
            "model loaded"
        );
        Ok((model, report))
    }

    /// Compares the headers with the tensors the config implies; returns the dtype on disk.
    fn check_tensors(&self, shards: &Shards) -> Result<DType, WeightsError> {
        let expected = expected_tensors(&self.config);
        let mut problems = Vec::new();

        for spec in &expected {
            match shards.tensors.get(&spec.name) {
                None => problems.push(format!(
                    "missing tensor {} (expected shape {:?})",
                    spec.name, spec.shape
                )),
                Some(entry) if entry.shape != spec.shape => problems.push(format!(
                    "tensor {} has shape {:?}, expected {:?} from config.json",
                    spec.name, entry.shape, spec.shape
                )),
                Some(entry) if burn_dtype(entry.dtype).is_none() => problems.push(format!(
                    "tensor {} has dtype {:?}; only F32, F16 and BF16 are supported",
                    spec.name, entry.dtype
                )),
                Some(_) => {}
            }
        }
        for name in shards.tensors.keys() {
            if !expected.iter().any(|spec| &spec.name == name) {
                let hint = if name == "lm_head.weight" && self.config.tie_word_embeddings {
                    " (config.json says tie_word_embeddings: true, so the checkpoint should not have it)"
                } else {
                    ""
                };
                problems.push(format!("unexpected tensor {name}{hint}"));
            }
        }
        for (name, paths) in &shards.duplicates {
            let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            problems.push(format!(
                "tensor {name} is stored more than once: {}",
                files.join(", ")
            ));
        }

        // A config.json of another model size misshapes nearly every tensor,
        // so the first line compares the sizes with the embedding's shape.
        let embedding = shards.tensors.get("model.embed_tokens.weight");
        if let Some(entry) = embedding
            && entry.shape != [self.config.vocab_size, self.config.hidden_size]
        {
            problems.insert(
                0,
                format!(
                    "config.json gives vocab_size {} and hidden_size {}, but \
                     model.embed_tokens.weight has shape {:?}; is config.json from another model?",
                    self.config.vocab_size, self.config.hidden_size, entry.shape
                ),
            );
        }
        if !problems.is_empty() {
            return Err(WeightsError::TensorMismatch {
                dir: self.dir.clone(),
                problems,
            });
        }
        let first = shards
            .tensors
            .get(&expected[0].name)
            .and_then(|entry| burn_dtype(entry.dtype));
        Ok(first.unwrap_or(DType::F32))
    }
}

struct ShardSource<'a> {
    /// The checkpoint folder, for errors.
    dir: &'a Path,
    shards: &'a Shards,
    loaded: usize,
    total: usize,
    progress: &'a mut dyn FnMut(usize, usize),
}

impl TensorSource for ShardSource<'_> {
    type Error = WeightsError;

    fn tensor_data(&mut self, name: &str) -> Result<TensorData, WeightsError> {
        // Presence, shape and dtype were checked before loading started.
        let data = self
            .shards
            .tensor_data(name)
            .ok_or_else(|| WeightsError::TensorMismatch {
                dir: self.dir.to_path_buf(),
                problems: vec![format!("tensor {name} could not be read")],
            })?;
        self.loaded += 1;
        (self.progress)(self.loaded, self.total);
        Ok(data)
    }

    fn host_matrix(&mut self, name: &str, dtype: DType) -> Result<HostMatrix, WeightsError> {
        let matrix = self.shards.host_matrix(name, dtype).map_err(|problem| {
            WeightsError::TensorMismatch {
                dir: self.dir.to_path_buf(),
                problems: vec![format!("tensor {name} could not be read: {problem}")],
            }
        })?;
        self.loaded += 1;
        (self.progress)(self.loaded, self.total);
        Ok(matrix)
    }
}
