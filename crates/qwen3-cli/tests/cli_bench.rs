//! `qwen3 bench` end to end on a tiny checkpoint: its text report and its
//! checks of the workload before the model loads.

mod common;

use common::{assert_clean_failure, qwen3, stdout_of};
use qwen3_tests::model_fixture_dir;

#[test]
fn bench_text_reports_one_run() {
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let stdout = stdout_of(&qwen3(&[
        "bench",
        "--model",
        &model,
        "--prompt-tokens",
        "5",
        "--new-tokens",
        "3",
        "--runs",
        "1",
    ]));
    assert!(
        stdout.contains("workload: 5 prompt tokens, 3 new tokens, 1 run (median, min-max)"),
        "{stdout}"
    );
}

#[test]
fn bench_rejects_out_of_range_id() {
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let output = qwen3(&["bench", "--model", &model, "--input-ids", "1,384"]);
    assert_clean_failure(
        &output,
        "token id 384 at index 1 is out of range: the model's ids are 0 to 383",
    );
    // The check is the command's own, not the model's error from a run.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("prefill failed"), "{stderr}");
}
