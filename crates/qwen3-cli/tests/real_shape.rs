//! `qwen3 score` on a checkpoint with the real Qwen3-0.6B shapes (random
//! weights, made by `cargo xtask real-shape-checkpoint --preset 0.6b`).
//! Ignored by default because the checkpoint is 1.2 GB and needs Python to
//! make; `.ci/run` makes it and runs these with `--ignored`.

use std::path::PathBuf;
use std::process::Command;

use qwen3_tests::workspace_root;
use qwen3_weights::Checkpoint;
use serde_json::Value;

/// `QWEN3_REAL_SHAPE_0_6B`, or `models/qwen3-0.6b-random` in the workspace.
fn checkpoint_dir() -> PathBuf {
    let dir = std::env::var_os("QWEN3_REAL_SHAPE_0_6B")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("models").join("qwen3-0.6b-random"));
    assert!(
        dir.join("config.json").is_file(),
        "no real-shape checkpoint in {}; run `cargo xtask real-shape-checkpoint --preset 0.6b`",
        dir.display()
    );
    dir
}

/// "<|im_start|>user\n你会说中文吗？<|im_end|>\n<|im_start|>assistant\n" in Qwen3 ids.
const PROMPT_IDS: &str =
    "151644,872,198,105043,100134,104811,101037,11319,151645,198,151644,77091,198";

#[test]
#[ignore = "needs the 1.2 GB real-shape checkpoint"]
fn score_on_real_shape_within_memory_bound() {
    let dir = checkpoint_dir();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_qwen3"))
        .args([
            "score",
            "--model",
            &dir.display().to_string(),
            "--input-ids",
            PROMPT_IDS,
            "--format",
            "json",
        ])
        .output()
        .expect("failed to start /usr/bin/time (Debian package `time`)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "qwen3 score failed: {stderr}");

    let json: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(
        json["tokens"],
        Value::from(PROMPT_IDS.split(',').count() - 1)
    );
    let mean_nll = json["mean_nll"].as_f64().expect("mean_nll");
    assert!(
        mean_nll.is_finite() && mean_nll > 0.0,
        "mean_nll {mean_nll}"
    );

    // Peak RSS as /usr/bin/time reports it, mapped file pages included.
    let peak_kib: u64 = stderr
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|value| value.parse().ok())
        .expect("/usr/bin/time -v output has the maximum resident set size");
    let peak = peak_kib * 1024;

    let checkpoint = Checkpoint::open(&dir).expect("config");
    let model_bytes = checkpoint.config.num_parameters() as u64 * 4;
    let ratio = peak as f64 / model_bytes as f64;
    eprintln!("peak RSS {peak} bytes, f32 model {model_bytes} bytes, ratio {ratio:.3}");
    assert!(
        ratio <= 1.5,
        "peak RSS {peak} bytes is {ratio:.3} x the f32 model ({model_bytes} bytes)"
    );
}

#[test]
#[ignore = "needs the 1.2 GB real-shape checkpoint"]
fn generate_on_real_shape_prints_statistics() {
    let dir = checkpoint_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_qwen3"))
        .args([
            "generate",
            "--model",
            &dir.display().to_string(),
            "--prompt",
            "你会说中文吗？",
        ])
        .args(["--max-new-tokens", "32", "--seed", "1"])
        .output()
        .expect("start qwen3");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "qwen3 generate failed: {stderr}");
    eprintln!("{stderr}");
    assert!(stderr.contains("prompt tokens: 13"), "{stderr}");
    assert!(stderr.contains("decode:"), "{stderr}");
}
