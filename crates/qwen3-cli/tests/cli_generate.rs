//! `qwen3 generate` and `qwen3 chat` end to end: a checkpoint with the full
//! Qwen3 vocabulary, the real tokenizer and chat template, against the tokens
//! and text `transformers` generated greedily (`cargo xtask model-fixtures`).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{FIXTURE, model_with_tokenizer, reference_case};
use qwen3_tests::{model_fixture_dir, tokenizer_dir};
use qwen3_tokenizer::{ChatMessage, Qwen3Tokenizer, TemplateOptions};
use serde_json::Value;

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_u64().expect("id") as u32)
        .collect()
}

fn qwen3(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qwen3"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("failed to start qwen3")
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "qwen3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object on stdout")
}

fn generate_json(model: &Path, extra: &[&str]) -> Value {
    let model = model.display().to_string();
    let mut args = vec![
        "generate", "--model", &model, "--greedy", "--format", "json",
    ];
    args.extend_from_slice(extra);
    json_of(&qwen3(&args))
}

#[test]
fn generate_matches_transformers_thinking_on() {
    let dir = model_with_tokenizer();
    let reference = reference_case("thinking_unspecified");
    let json = generate_json(
        dir.path(),
        &["--prompt", "你会说中文吗？", "--max-new-tokens", "24"],
    );
    assert_eq!(ids(&json["token_ids"]), ids(&reference["token_ids"]));
    assert_eq!(json["text"], reference["text"]);
    assert_eq!(
        json["stats"]["prompt_tokens"],
        Value::from(ids(&reference["prompt_ids"]).len())
    );
}

#[test]
fn generate_matches_transformers_thinking_off() {
    let dir = model_with_tokenizer();
    let reference = reference_case("thinking_off");
    let json = generate_json(
        dir.path(),
        &[
            "--prompt",
            "你会说中文吗？",
            "--no-think",
            "--max-new-tokens",
            "24",
        ],
    );
    assert_eq!(ids(&json["token_ids"]), ids(&reference["token_ids"]));
    assert_eq!(json["text"], reference["text"]);
    assert_eq!(json["answer"], reference["text"]);
    assert_eq!(json["reasoning"], "");
}

#[test]
fn repetition_penalty_matches_transformers() {
    let dir = model_with_tokenizer();
    let reference = reference_case("thinking_off_repetition_penalty");
    let json = generate_json(
        dir.path(),
        &[
            "--prompt",
            "你会说中文吗？",
            "--no-think",
            "--repetition-penalty",
            "1.3",
            "--max-new-tokens",
            "24",
        ],
    );
    assert_eq!(ids(&json["token_ids"]), ids(&reference["token_ids"]));
    assert_eq!(json["text"], reference["text"]);
}

#[test]
fn text_output_streams_the_answer() {
    let dir = model_with_tokenizer();
    let reference = reference_case("thinking_off");
    let model = dir.path().display().to_string();
    let output = qwen3(&[
        "generate",
        "--model",
        &model,
        "--prompt",
        "你会说中文吗？",
        "--no-think",
        "--greedy",
        "--max-new-tokens",
        "24",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    assert_eq!(
        stdout,
        format!("{}\n", reference["text"].as_str().expect("text"))
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("prompt tokens: 17, generated tokens: 24"),
        "{stderr}"
    );
    assert!(stderr.contains("stop: max_new_tokens"), "{stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "piped output gets no progress bar: {stderr}"
    );
}

#[test]
fn stop_string_ends_generation() {
    let dir = model_with_tokenizer();
    let reference = reference_case("thinking_off");
    let text = reference["text"].as_str().expect("text");
    // "(Path" first appears after the run of repeated tokens.
    let stop = "(Path";
    let cut = text.find(stop).expect("stop string in the reference text");
    let json = generate_json(
        dir.path(),
        &["--prompt", "你会说中文吗？", "--no-think", "--stop", stop],
    );
    assert_eq!(json["stop_reason"], "stop_string");
    assert_eq!(json["text"], &text[..cut]);
    assert_eq!(json["answer"], &text[..cut]);
    let generated = ids(&json["token_ids"]);
    assert_eq!(generated, ids(&reference["token_ids"])[..generated.len()]);
}

#[test]
fn max_new_tokens_ends_generation() {
    let dir = model_with_tokenizer();
    let reference = reference_case("thinking_off");
    let json = generate_json(
        dir.path(),
        &[
            "--prompt",
            "你会说中文吗？",
            "--no-think",
            "--max-new-tokens",
            "5",
        ],
    );
    assert_eq!(json["stop_reason"], "max_new_tokens");
    assert_eq!(ids(&json["token_ids"]), ids(&reference["token_ids"])[..5]);
}

#[test]
fn full_context_ends_generation() {
    let dir = model_with_tokenizer();
    let reference = reference_case("thinking_off");
    let prompt_len = ids(&reference["prompt_ids"]).len();
    let context = (prompt_len + 3).to_string();
    let json = generate_json(
        dir.path(),
        &[
            "--prompt",
            "你会说中文吗？",
            "--no-think",
            "--max-context",
            &context,
        ],
    );
    assert_eq!(json["stop_reason"], "context_full");
    assert_eq!(ids(&json["token_ids"]), ids(&reference["token_ids"])[..4]);
}

#[test]
fn stop_token_from_generation_config_ends_generation() {
    let dir = model_with_tokenizer();
    let reference = reference_case("thinking_off");
    let expected = ids(&reference["token_ids"]);
    // Declare the first token that differs from the first generated one a stop
    // token, in generation_config.json only.
    let position = expected
        .iter()
        .position(|&id| id != expected[0])
        .expect("two distinct tokens");
    let path = dir.path().join("generation_config.json");
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    config["eos_token_id"] = serde_json::json!([151645, 151643, expected[position]]);
    std::fs::write(&path, config.to_string()).expect("write");

    let json = generate_json(dir.path(), &["--prompt", "你会说中文吗？", "--no-think"]);
    assert_eq!(json["stop_reason"], "eos");
    assert_eq!(
        ids(&json["token_ids"]),
        expected[..=position],
        "the stop token is included, as transformers returns it"
    );
}

#[test]
fn thinking_budget_closes_reasoning() {
    let dir = model_with_tokenizer();
    let tokenizer = Qwen3Tokenizer::from_dir(dir.path()).expect("tokenizer");
    let reference = reference_case("thinking_unspecified");
    // The prompt opens reasoning itself, so everything generated is reasoning until </think>.
    let mut prompt = ids(&reference["prompt_ids"]);
    prompt.extend(tokenizer.encode("<think>\n").expect("encode").ids);
    let prompt_arg: Vec<String> = prompt.iter().map(u32::to_string).collect();

    let json = generate_json(
        dir.path(),
        &[
            "--input-ids",
            &prompt_arg.join(","),
            "--thinking-budget",
            "3",
            "--max-new-tokens",
            "10",
        ],
    );
    let generated = ids(&json["token_ids"]);
    let close = tokenizer.encode("\n</think>\n\n").expect("encode").ids;
    assert_eq!(json["stats"]["thinking_budget_reached"], true);
    assert_eq!(
        generated[3..3 + close.len()],
        close[..],
        "the closing ids follow three reasoning tokens"
    );
    assert_eq!(generated.len(), 10);
    let reasoning_text = tokenizer.decode(&generated[..3], true).expect("decode");
    assert_eq!(json["reasoning"], reasoning_text.trim_matches('\n'));
    let answer_text = tokenizer
        .decode(&generated[3 + close.len()..], true)
        .expect("decode");
    assert_eq!(json["answer"], answer_text);
}

#[test]
fn same_seed_same_output() {
    let dir = model_with_tokenizer();
    let model = dir.path().display().to_string();
    let run = |seed: &str| {
        json_of(&qwen3(&[
            "generate",
            "--model",
            &model,
            "--prompt",
            "你好",
            "--seed",
            seed,
            "--temperature",
            "1.5",
            "--top-k",
            "0",
            "--top-p",
            "1",
            "--max-new-tokens",
            "16",
            "--format",
            "json",
        ]))["token_ids"]
            .clone()
    };
    assert_eq!(run("42"), run("42"));
    assert_ne!(run("42"), run("43"));
}

#[test]
fn input_ids_without_tokenizer_files() {
    let reference = reference_case("thinking_off");
    let model = model_fixture_dir(FIXTURE).display().to_string();
    let prompt: Vec<String> = ids(&reference["prompt_ids"])
        .iter()
        .map(u32::to_string)
        .collect();
    let output = qwen3(&[
        "generate",
        "--model",
        &model,
        "--input-ids",
        &prompt.join(","),
        "--greedy",
        "--max-new-tokens",
        "6",
        "--format",
        "json",
    ]);
    let json = json_of(&output);
    assert_eq!(ids(&json["token_ids"]), ids(&reference["token_ids"])[..6]);
    assert_eq!(json["text"], "");
    assert_eq!(json["reasoning"], "");
    assert_eq!(json["answer"], "");
}

#[test]
fn prompt_without_tokenizer_files_is_error() {
    let model = model_fixture_dir(FIXTURE).display().to_string();
    let output = qwen3(&["generate", "--model", &model, "--prompt", "hi"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tokenizer.json not found"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Builds a Hugging Face cache in `home` (used as `HF_HOME`) that contains `files` for `id`.
fn build_hf_cache(home: &Path, id: &str, files: &[PathBuf]) {
    let revision = "0123456789abcdef0123456789abcdef01234567";
    let repo = home
        .join("hub")
        .join(format!("models--{}", id.replace('/', "--")));
    let snapshot = repo.join("snapshots").join(revision);
    std::fs::create_dir_all(&snapshot).expect("snapshot folder");
    std::fs::create_dir_all(repo.join("refs")).expect("refs folder");
    std::fs::write(repo.join("refs").join("main"), revision).expect("ref");
    for file in files {
        std::fs::copy(file, snapshot.join(file.file_name().expect("name"))).expect("copy");
    }
}

#[test]
fn model_id_from_offline_cache() {
    let home = tempfile::tempdir().expect("temporary folder");
    let model = model_with_tokenizer();
    let files: Vec<PathBuf> = std::fs::read_dir(model.path())
        .expect("folder")
        .map(|e| e.expect("entry").path())
        .collect();
    build_hf_cache(home.path(), "qwen3-burn/e2e-tiny", &files);

    let output = Command::new(env!("CARGO_BIN_EXE_qwen3"))
        .args([
            "generate",
            "--model",
            "qwen3-burn/e2e-tiny",
            "--prompt",
            "你会说中文吗？",
            "--no-think",
            "--greedy",
        ])
        .args(["--max-new-tokens", "24", "--format", "json"])
        .env("HF_HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .current_dir(home.path())
        .output()
        .expect("start qwen3");
    let json = json_of(&output);
    assert_eq!(
        ids(&json["token_ids"]),
        ids(&reference_case("thinking_off")["token_ids"])
    );
}

#[test]
fn model_id_missing_from_offline_cache() {
    let home = tempfile::tempdir().expect("temporary folder");
    let output = Command::new(env!("CARGO_BIN_EXE_qwen3"))
        .args(["generate", "--model", "Qwen/Qwen3-4B", "--prompt", "hi"])
        .env("HF_HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .current_dir(home.path())
        .output()
        .expect("start qwen3");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Qwen/Qwen3-4B is not in the Hugging Face cache"),
        "{stderr}"
    );
    assert!(stderr.contains("HF_HUB_OFFLINE=1"), "{stderr}");
}

#[test]
fn chat_keeps_history_through_template() {
    let dir = model_with_tokenizer();
    let model = dir.path().display().to_string();
    let tokenizer = Qwen3Tokenizer::from_dir(dir.path()).expect("tokenizer");

    // The first answer, from generate with the same prompt and settings.
    let first = generate_json(
        dir.path(),
        &["--prompt", "你会说中文吗？", "--max-new-tokens", "4"],
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_qwen3"))
        .args([
            "chat",
            "--model",
            &model,
            "--greedy",
            "--max-new-tokens",
            "4",
            "--show-prompt",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qwen3 chat");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all("你会说中文吗？\n/no_think\n再见\n/clear\n你好\n/stats\n".as_bytes())
        .expect("write input");
    let output = child.wait_with_output().expect("chat ends at end of input");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let prompts: Vec<&str> = stderr
        .split("--- prompt ---\n")
        .skip(1)
        .map(|rest| {
            rest.split("\n--- end of prompt ---")
                .next()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(prompts.len(), 3, "{stderr}");

    let thinking_off = TemplateOptions {
        add_generation_prompt: true,
        enable_thinking: Some(false),
    };
    let history = [
        ChatMessage::user("你会说中文吗？"),
        ChatMessage::assistant(first["answer"].as_str().expect("answer")),
        ChatMessage::user("再见"),
    ];
    let second = tokenizer
        .apply_chat_template(&history, None, &thinking_off)
        .expect("render");
    assert_eq!(
        prompts[1], second,
        "the second turn carries the first exchange"
    );

    let third = tokenizer
        .apply_chat_template(&[ChatMessage::user("你好")], None, &thinking_off)
        .expect("render");
    assert_eq!(
        prompts[2], third,
        "/clear drops the history and /no_think stays on"
    );
    assert!(
        stderr.contains("stop: max_new_tokens"),
        "/stats prints the last answer's statistics: {stderr}"
    );
}

#[test]
fn interrupt_stops_the_answer() {
    use std::io::Read;

    let dir = model_with_tokenizer();
    let model = dir.path().display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qwen3"))
        .args([
            "generate",
            "--model",
            &model,
            "--prompt",
            "你会说中文吗？",
            "--no-think",
            "--greedy",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qwen3");

    // Wait for the first streamed bytes, then press Ctrl-C.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    stdout
        .read_exact(&mut first)
        .expect("the answer starts streaming");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());

    let output = child.wait_with_output().expect("qwen3 ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("stop: interrupted"), "{stderr}");
}

#[test]
fn huge_max_new_tokens_is_capped() {
    let dir = model_with_tokenizer();
    let json = generate_json(
        dir.path(),
        &[
            "--input-ids",
            "1,2",
            "--max-new-tokens",
            "18446744073709551615",
            "--max-context",
            "8",
        ],
    );
    assert_eq!(json["stop_reason"], "context_full");
    let model = dir.path().display().to_string();
    let output = qwen3(&[
        "generate",
        "--model",
        &model,
        "--input-ids",
        "1,2",
        "--max-new-tokens",
        "18446744073709551615",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn zero_max_new_tokens_is_rejected() {
    let dir = model_with_tokenizer();
    let model = dir.path().display().to_string();
    let output = qwen3(&[
        "generate",
        "--model",
        &model,
        "--input-ids",
        "1,2",
        "--max-new-tokens",
        "0",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--max-new-tokens"));
}

#[test]
fn thinking_budget_cut_by_max_new_tokens() {
    let dir = model_with_tokenizer();
    let tokenizer = Qwen3Tokenizer::from_dir(dir.path()).expect("tokenizer");
    let mut prompt = ids(&reference_case("thinking_unspecified")["prompt_ids"]);
    prompt.extend(tokenizer.encode("<think>\n").expect("encode").ids);
    let prompt_arg: Vec<String> = prompt.iter().map(u32::to_string).collect();

    let json = generate_json(
        dir.path(),
        &[
            "--input-ids",
            &prompt_arg.join(","),
            "--thinking-budget",
            "3",
            "--max-new-tokens",
            "4",
        ],
    );
    let generated = ids(&json["token_ids"]);
    assert_eq!(generated.len(), 4);
    assert_eq!(
        json["text"],
        tokenizer.decode(&generated, true).expect("decode"),
        "text matches token_ids"
    );
}

#[test]
fn piped_reasoning_keeps_tags() {
    let dir = model_with_tokenizer();
    let tokenizer = Qwen3Tokenizer::from_dir(dir.path()).expect("tokenizer");
    let mut prompt = ids(&reference_case("thinking_unspecified")["prompt_ids"]);
    prompt.extend(tokenizer.encode("<think>\n").expect("encode").ids);
    let prompt_arg: Vec<String> = prompt.iter().map(u32::to_string).collect();
    let model = dir.path().display().to_string();

    let output = qwen3(&[
        "generate",
        "--model",
        &model,
        "--input-ids",
        &prompt_arg.join(","),
        "--greedy",
        "--thinking-budget",
        "3",
        "--max-new-tokens",
        "8",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("<think>"), "{stdout:?}");
    assert!(stdout.contains("</think>"), "{stdout:?}");

    let hidden = qwen3(&[
        "generate",
        "--model",
        &model,
        "--input-ids",
        &prompt_arg.join(","),
        "--greedy",
        "--thinking-budget",
        "3",
        "--max-new-tokens",
        "8",
        "--hide-thinking",
    ]);
    let stdout = String::from_utf8_lossy(&hidden.stdout);
    assert!(!stdout.contains("think>"), "{stdout:?}");
    assert!(!stdout.starts_with('\n'), "{stdout:?}");
}

#[test]
fn missing_local_folder_is_not_a_model_id() {
    let output = qwen3(&[
        "generate",
        "--model",
        "tests/no-such-model",
        "--prompt",
        "hi",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("model folder tests/no-such-model not found"),
        "{stderr}"
    );
}

#[test]
fn tokenize_resolves_model_id() {
    let home = tempfile::tempdir().expect("temporary folder");
    let files = vec![
        tokenizer_dir().join("tokenizer.json"),
        tokenizer_dir().join("tokenizer_config.json"),
        model_fixture_dir(FIXTURE).join("config.json"),
        model_fixture_dir(FIXTURE).join("model.safetensors"),
    ];
    build_hf_cache(home.path(), "qwen3-burn/tok", &files);
    let output = Command::new(env!("CARGO_BIN_EXE_qwen3"))
        .args(["tokenize", "--model", "qwen3-burn/tok", "--text", "你好"])
        .env("HF_HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .current_dir(home.path())
        .output()
        .expect("start qwen3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "108386\tä½łå¥½\n");
}
