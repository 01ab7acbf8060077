//! `--model`: a local checkpoint folder or a Hugging Face model id.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hf_hub::{Cache, Repo};

/// Files fetched for a model id besides the weights.
const METADATA_FILES: [&str; 4] = [
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
];

/// Resolves `--model` to a local folder: an existing folder as it is, or a
/// model id (`Qwen/Qwen3-4B`) from the Hugging Face cache (`HF_HOME`),
/// downloading what is missing unless `HF_HUB_OFFLINE=1`.
pub fn resolve(model: &Path) -> Result<PathBuf> {
    if model.is_dir() {
        return Ok(model.to_path_buf());
    }
    if model.exists() {
        bail!(
            "--model {} is a file; pass the checkpoint folder that contains it",
            model.display()
        );
    }
    let text = model.to_string_lossy();
    // `models/qwen3-0.6b-random` is a folder that does not exist yet, not a model id.
    let first_component_exists = model
        .components()
        .next()
        .is_some_and(|first| Path::new(first.as_os_str()).exists());
    if first_component_exists || !looks_like_model_id(&text) {
        bail!(
            "model folder {} not found; pass a checkpoint folder or a Hugging Face model id such as Qwen/Qwen3-4B",
            model.display()
        );
    }

    let cache = hub_cache();
    if let Some(folder) = cached_snapshot(&cache, &text) {
        tracing::info!(model = %text, folder = %folder.display(), "model found in the Hugging Face cache");
        return Ok(folder);
    }
    if offline() {
        bail!(
            "model {text} is not in the Hugging Face cache at {} and HF_HUB_OFFLINE=1 forbids downloading; \
             download it on a machine with access (`hf download {text}`) or pass a local folder",
            cache.path().display()
        );
    }
    download(&cache, &text).with_context(|| {
        format!(
            "model {text} is not in the Hugging Face cache at {} and could not be downloaded; \
             check the model id and the network, or pass a local folder",
            cache.path().display()
        )
    })
}

/// `owner/name` with one slash, both parts made of letters, digits, `-`, `_`
/// and `.`, not starting with `.`, as the Hugging Face hub names repositories.
fn looks_like_model_id(text: &str) -> bool {
    let parts: Vec<&str> = text.split('/').collect();
    let valid_part = |part: &&str| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    parts.len() == 2 && parts.iter().all(valid_part)
}

/// `HF_HUB_OFFLINE` set to a true value, spelled as `huggingface_hub` accepts.
fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|value| {
            matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

/// Returns the hub cache: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
fn hub_cache() -> Cache {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(path) => Cache::new(PathBuf::from(path)),
        None => Cache::from_env(),
    }
}

/// Returns the snapshot folder of `id` when the cache has its config and weights.
fn cached_snapshot(cache: &Cache, id: &str) -> Option<PathBuf> {
    let repo = cache.repo(Repo::model(id.to_string()));
    let config = repo.get("config.json")?;
    let folder = config.parent()?.to_path_buf();
    let has_weights = repo.get("model.safetensors").is_some()
        || repo.get("model.safetensors.index.json").is_some();
    has_weights.then_some(folder)
}

// NOTE: this path has not run against the real hub: the development and CI
// machines reach no model host, so only the offline cache lookup is tested.
fn download(cache: &Cache, id: &str) -> Result<PathBuf> {
    let api = hf_hub::api::sync::ApiBuilder::from_cache(cache.clone())
        .with_progress(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .build()?;
    let repo = api.model(id.to_string());

    let config = repo.get("config.json")?;
    for file in METADATA_FILES.iter().skip(1) {
        // generation_config.json and the tokenizer files are optional for scoring raw ids.
        if let Err(error) = repo.get(file) {
            tracing::warn!(model = id, file, %error, "file not downloaded");
        }
    }
    match repo.get("model.safetensors.index.json") {
        Ok(index_path) => {
            let index: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&index_path)?)?;
            let mut shards: Vec<String> = index["weight_map"]
                .as_object()
                .map(|map| {
                    map.values()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            shards.sort();
            shards.dedup();
            for shard in shards {
                repo.get(&shard)?;
            }
        }
        Err(_) => {
            repo.get("model.safetensors")?;
        }
    }
    config
        .parent()
        .map(Path::to_path_buf)
        .context("downloaded config.json has no parent folder")
}
