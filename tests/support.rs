//! Helpers shared by the parity suites and the CLI tests: where the fixtures
//! and the real tokenizer files are.

use std::path::PathBuf;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Root of the workspace.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .unwrap_or(manifest_dir)
}

/// Folder with the real Qwen3 `tokenizer.json` and `tokenizer_config.json`:
/// `QWEN3_TOKENIZER_DIR`, or `models/qwen3-tokenizer` in the workspace.
///
/// Panics with the command that fetches the files when they are missing, so a
/// parity suite fails instead of passing without having compared anything.
pub fn tokenizer_dir() -> PathBuf {
    let dir = std::env::var_os("QWEN3_TOKENIZER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models").join("qwen3-tokenizer"));
    assert!(
        dir.join("tokenizer.json").is_file() && dir.join("tokenizer_config.json").is_file(),
        "the real Qwen3 tokenizer files are not in {}; run `cargo xtask fetch-tokenizer`",
        dir.display()
    );
    dir
}

/// `tests/fixtures/tokenizer/<name>` parsed as JSON.
pub fn tokenizer_fixture(name: &str) -> Value {
    let path = workspace_root()
        .join("tests")
        .join("fixtures")
        .join("tokenizer")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("invalid JSON in {}: {e}", path.display()))
}

/// Hex SHA-256 digest of a file.
pub fn sha256_file(path: &std::path::Path) -> String {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    Sha256::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Joins the cases of `cases.json` with their expected outputs, by name.
pub fn joined_cases(section: &str) -> Vec<(Value, Value)> {
    let cases = tokenizer_fixture("cases.json");
    let expected = tokenizer_fixture("expected.json");
    let inputs = cases[section].as_array().cloned().unwrap_or_default();
    let outputs = expected[section].as_array().cloned().unwrap_or_default();
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "cases.json and expected.json list different {section}; regenerate expected.json"
    );
    inputs
        .into_iter()
        .zip(outputs)
        .inspect(|(input, output)| {
            assert_eq!(
                input["name"], output["name"],
                "{section} out of order in expected.json"
            )
        })
        .collect()
}

/// `tests/fixtures/models/<name>`: a tiny checkpoint written by `cargo xtask model-fixtures`.
pub fn model_fixture_dir(name: &str) -> PathBuf {
    workspace_root()
        .join("tests")
        .join("fixtures")
        .join("models")
        .join(name)
}

/// Names of every tiny checkpoint fixture, from `manifest.json`.
pub fn model_fixture_names() -> Vec<String> {
    let path = workspace_root()
        .join("tests")
        .join("fixtures")
        .join("models")
        .join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    let manifest: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("invalid JSON in {}: {e}", path.display()));
    manifest["fixtures"]
        .as_array()
        .map(|fixtures| {
            fixtures
                .iter()
                .filter_map(|f| f["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The outputs `transformers` computed on a fixture (`reference.safetensors`).
pub struct ModelReference {
    /// The input ids.
    pub input_ids: Vec<u32>,
    /// Logits of every position, `[seq, vocab]` row-major.
    pub logits: Vec<f32>,
    /// Hidden state after every layer, `[layers, seq, hidden]` row-major.
    pub hidden_states: Vec<f32>,
    /// The 20 greedy tokens generated after the input.
    pub greedy_ids: Vec<u32>,
    /// Logits of each greedy step, `[20, vocab]` row-major: row `i` comes
    /// from the input and `greedy_ids[..i]`.
    pub greedy_logits: Vec<f32>,
    /// The 20 greedy tokens under the repetition penalty in `manifest.json`.
    pub greedy_ids_repetition_penalty: Vec<u32>,
    /// Vocabulary size (columns of `logits`).
    pub vocab_size: usize,
    /// Hidden size (last dimension of `hidden_states`).
    pub hidden_size: usize,
}

/// Reads `reference.safetensors` of a fixture.
pub fn model_reference(name: &str) -> ModelReference {
    let path = model_fixture_dir(name).join("reference.safetensors");
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("failed to read {}: {e}", path.display()));
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("invalid {}: {e}", path.display()));
    let tensor = |key: &str| {
        file.tensor(key)
            .unwrap_or_else(|e| panic!("{} lacks {key}: {e}", path.display()))
    };

    let floats = |key: &str| -> Vec<f32> {
        tensor(key)
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let ids = |key: &str| -> Vec<u32> {
        tensor(key)
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as u32)
            .collect()
    };

    ModelReference {
        input_ids: ids("input_ids"),
        logits: floats("logits"),
        hidden_states: floats("hidden_states"),
        greedy_ids: ids("greedy_ids"),
        greedy_logits: floats("greedy_logits"),
        greedy_ids_repetition_penalty: ids("greedy_ids_repetition_penalty"),
        vocab_size: tensor("logits").shape()[1],
        hidden_size: tensor("hidden_states").shape()[2],
    }
}

/// Every CPU device compiled into this build of the tests.
#[allow(clippy::vec_init_then_push)] // The pushes depend on the enabled features.
pub fn test_devices() -> Vec<qwen3_model::burn::tensor::Device> {
    use qwen3_model::burn::tensor::Device;
    let mut devices = Vec::new();
    // burn 0.22 marks ndarray deprecated in favour of flex; it stays the default
    // backend here until the speed work picks one by measurement.
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    devices.push(Device::ndarray());
    #[cfg(feature = "flex")]
    devices.push(Device::flex());
    devices
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "compared slices differ in length");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
