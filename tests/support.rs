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

/// The cases of `cases.json` joined with their expected outputs, by name.
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
