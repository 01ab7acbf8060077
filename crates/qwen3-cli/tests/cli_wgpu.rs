//! `qwen3 generate --device wgpu` end to end: the full-vocabulary checkpoint,
//! the real tokenizer and chat template, against what `transformers`
//! generated greedily. Without a GPU it runs on Mesa's software Vulkan.

mod common;

use common::{model_with_tokenizer, qwen3, reference_case, stdout_of};
use serde_json::Value;

#[test]
fn generate_on_wgpu_matches_transformers() {
    let dir = model_with_tokenizer();
    let case = reference_case("thinking_unspecified");

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
