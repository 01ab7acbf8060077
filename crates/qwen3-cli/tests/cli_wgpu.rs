//! `qwen3 generate --device wgpu` end to end: the full-vocabulary checkpoint,
//! the real tokenizer and chat template, against what `transformers`
//! generated greedily. Without a GPU it runs on Mesa's software Vulkan.

mod common;

use std::path::Path;

use common::{qwen3, stdout_of};
use qwen3_tests::{model_fixture_dir, tokenizer_dir};
use serde_json::Value;

const FIXTURE: &str = "e2e-full-vocab-bf16";

fn copy_folder(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("folder") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("file name"))).expect("copy");
    }
}

#[test]
fn generate_on_wgpu_matches_transformers() {
    let dir = tempfile::tempdir().expect("temporary folder");
    copy_folder(&model_fixture_dir(FIXTURE), dir.path());
    copy_folder(&tokenizer_dir(), dir.path());
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(model_fixture_dir(FIXTURE).join("reference.json"))
            .expect("reference.json"),
    )
    .expect("JSON");
    let case = reference["cases"]
        .as_array()
        .and_then(|cases| cases.iter().find(|c| c["name"] == "thinking_unspecified"))
        .expect("reference case")
        .clone();

    let model = dir.path().display().to_string();
    let output = qwen3(&[
        "generate",
        "--model",
        &model,
        "--device",
        "wgpu",
        "--dtype",
        "f32",
        "--greedy",
        "--format",
        "json",
        "--prompt",
        "你会说中文吗？",
        "--max-new-tokens",
        "24",
    ]);
    let json: Value = serde_json::from_str(&stdout_of(&output)).expect("one JSON object");
    assert_eq!(json["token_ids"], case["token_ids"]);
    assert_eq!(json["text"], case["text"]);
}
