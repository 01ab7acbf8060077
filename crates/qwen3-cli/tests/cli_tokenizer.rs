//! `qwen3 tokenize` and `qwen3 template` end to end on the real Qwen3
//! tokenizer, against outputs of Hugging Face `tokenizers` and `transformers`.

mod common;

use std::path::Path;
use std::process::Output;

use common::{qwen3, stdout_of};
use qwen3_tests::{joined_cases, tokenizer_dir};
use serde_json::Value;

fn model_arg() -> String {
    tokenizer_dir().display().to_string()
}

fn string_case(name: &str) -> (String, Value) {
    joined_cases("strings")
        .into_iter()
        .find(|(case, _)| case["name"] == name)
        .map(|(case, expected)| {
            (
                case["text"].as_str().unwrap_or_default().to_string(),
                expected,
            )
        })
        .unwrap_or_else(|| panic!("no string case {name}"))
}

const TOKENIZE_CASES: [&str; 5] = [
    "chinese_question",
    "emoji_zwj_family",
    "special_im_start_literal",
    "code_mixed_indent",
    "nfc_decomposed_e",
];

#[test]
fn tokenize_text_lines_match_reference() {
    for name in TOKENIZE_CASES {
        let (text, expected) = string_case(name);
        let stdout = stdout_of(&qwen3(&[
            "tokenize",
            "--model",
            &model_arg(),
            "--text",
            &text,
        ]));

        let mut ids = Vec::new();
        let mut tokens = Vec::new();
        for line in stdout.lines() {
            let (id, token) = line
                .split_once('\t')
                .unwrap_or_else(|| panic!("no tab in line {line:?}"));
            ids.push(Value::from(id.parse::<u64>().expect("numeric id")));
            tokens.push(Value::from(token));
        }
        assert_eq!(Value::Array(ids), expected["ids"], "ids of {name}");
        assert_eq!(Value::Array(tokens), expected["tokens"], "tokens of {name}");
    }
}

#[test]
fn tokenize_json_matches_reference() {
    for name in TOKENIZE_CASES {
        let (text, expected) = string_case(name);
        let stdout = stdout_of(&qwen3(&[
            "tokenize",
            "--model",
            &model_arg(),
            "--text",
            &text,
            "--format",
            "json",
        ]));
        let json: Value = serde_json::from_str(&stdout).expect("one JSON object");
        assert_eq!(json["ids"], expected["ids"], "ids of {name}");
        assert_eq!(json["tokens"], expected["tokens"], "tokens of {name}");
    }
}

#[test]
fn tokenize_empty_text_prints_nothing() {
    let stdout = stdout_of(&qwen3(&["tokenize", "--model", &model_arg(), "--text", ""]));
    assert_eq!(stdout, "");
}

fn write_json(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).expect("write JSON file");
    path.display().to_string()
}

#[test]
fn template_prints_reference_prompt_exactly() {
    let dir = tempfile::tempdir().expect("temporary folder");
    for (case, expected) in joined_cases("chats") {
        let name = case["name"].as_str().unwrap_or_default();
        let messages = write_json(
            dir.path(),
            &format!("{name}.messages.json"),
            &case["messages"],
        );

        let mut args = vec![
            "template".to_string(),
            "--model".into(),
            model_arg(),
            "--messages".into(),
            messages,
        ];
        if let Some(tools) = case.get("tools") {
            args.push("--tools".into());
            args.push(write_json(dir.path(), &format!("{name}.tools.json"), tools));
        }
        match case.get("enable_thinking").and_then(Value::as_bool) {
            Some(false) => args.push("--no-think".into()),
            Some(true) => args.push("--think".into()),
            None => {}
        }
        if case["add_generation_prompt"] == Value::Bool(false) {
            args.push("--no-generation-prompt".into());
        }

        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stdout = stdout_of(&qwen3(&args));
        assert_eq!(
            stdout,
            expected["prompt"].as_str().unwrap_or_default(),
            "chat {name}"
        );
    }
}

fn assert_clean_failure(output: &Output, expected_fragment: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "exit code, stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "qwen3 panicked: {stderr}");
    assert!(
        stderr.contains(expected_fragment),
        "stderr lacks {expected_fragment:?}: {stderr}"
    );
}

#[test]
fn template_rejects_messages_object() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let messages = write_json(
        dir.path(),
        "m.json",
        &serde_json::json!({"role": "user", "content": "hi"}),
    );
    let output = qwen3(&["template", "--model", &model_arg(), "--messages", &messages]);
    assert_clean_failure(&output, "expected a JSON list of message objects");
}

#[test]
fn template_rejects_missing_messages_file() {
    let output = qwen3(&[
        "template",
        "--model",
        &model_arg(),
        "--messages",
        "/nonexistent/m.json",
    ]);
    assert_clean_failure(
        &output,
        "failed to read the messages file /nonexistent/m.json",
    );
}

#[test]
fn tokenize_rejects_missing_model_folder() {
    let output = qwen3(&[
        "tokenize",
        "--model",
        "/nonexistent/Qwen3-4B",
        "--text",
        "hi",
    ]);
    assert_clean_failure(&output, "model folder /nonexistent/Qwen3-4B not found");
}

#[test]
fn tokenize_rejects_corrupt_tokenizer() {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::write(dir.path().join("tokenizer.json"), "{\"model\": 3}").expect("write");
    std::fs::copy(
        tokenizer_dir().join("tokenizer_config.json"),
        dir.path().join("tokenizer_config.json"),
    )
    .expect("copy");
    let output = qwen3(&[
        "tokenize",
        "--model",
        &dir.path().display().to_string(),
        "--text",
        "hi",
    ]);
    assert_clean_failure(&output, "invalid tokenizer file");
}
