//! Helpers shared by the CLI test binaries.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use qwen3_tests::{model_fixture_dir, tokenizer_dir};
use serde_json::Value;

/// Runs the built `qwen3` binary with `args`, with logging left at its default.
pub fn qwen3(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qwen3"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("failed to start qwen3")
}

/// Checks that a run failed without a panic and that stderr contains `expected_fragment`.
pub fn assert_clean_failure(output: &Output, expected_fragment: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "qwen3 should fail");
    assert!(!stderr.contains("panicked"), "qwen3 panicked: {stderr}");
    assert!(
        stderr.contains(expected_fragment),
        "stderr lacks {expected_fragment:?}: {stderr}"
    );
}

/// Returns stdout of a run that must have succeeded.
pub fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "qwen3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

/// The checkpoint with the full Qwen3 vocabulary and `reference.json`.
pub const FIXTURE: &str = "e2e-full-vocab-bf16";

/// Copies the end-to-end checkpoint and the real tokenizer files into a temporary folder.
pub fn model_with_tokenizer() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    copy_folder(&model_fixture_dir(FIXTURE), dir.path());
    copy_folder(&tokenizer_dir(), dir.path());
    dir
}

/// Copies every file of `from` into `to`.
pub fn copy_folder(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("folder") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("file name"))).expect("copy");
    }
}

/// Returns the case `name` of the end-to-end fixture's `reference.json`.
pub fn reference_case(name: &str) -> Value {
    let path = model_fixture_dir(FIXTURE).join("reference.json");
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("reference.json"))
            .expect("JSON");
    reference["cases"]
        .as_array()
        .and_then(|cases| cases.iter().find(|case| case["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no reference case {name}"))
}
