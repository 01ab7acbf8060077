//! `qwen3 score` end to end on tiny checkpoints without tokenizer files,
//! against log-likelihoods computed from the logits `transformers` produced.

mod common;

use common::{assert_clean_failure, qwen3, stdout_of};
use qwen3_tests::{max_abs_diff, model_fixture_dir, model_reference};
use serde_json::Value;

fn ids_arg(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// Mean NLL from reference logits, in f64.
fn reference_mean_nll(logits: &[f32], vocab: usize, ids: &[u32]) -> f64 {
    let mut total = 0.0;
    for position in 1..ids.len() {
        let row = &logits[(position - 1) * vocab..position * vocab];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
        total += max + sum.ln() - row[ids[position] as usize] as f64;
    }
    total / (ids.len() - 1) as f64
}

#[test]
fn score_json_matches_transformers_logits() {
    for name in ["tied-gqa-f32", "untied-mha-f32", "sharded-untied-f32"] {
        let reference = model_reference(name);
        let model = model_fixture_dir(name).display().to_string();
        let ids = ids_arg(&reference.input_ids);
        let stdout = stdout_of(&qwen3(&[
            "score",
            "--model",
            &model,
            "--input-ids",
            &ids,
            "--format",
            "json",
        ]));
        let json: Value = serde_json::from_str(&stdout).expect("one JSON object");

        let expected = reference_mean_nll(
            &reference.logits,
            reference.vocab_size,
            &reference.input_ids,
        );
        let mean_nll = json["mean_nll"].as_f64().expect("mean_nll");
        assert_eq!(
            json["tokens"],
            Value::from(reference.input_ids.len() - 1),
            "{name}"
        );
        assert!(
            (mean_nll - expected).abs() < 1e-5,
            "{name}: mean_nll {mean_nll}, transformers {expected}"
        );
        let perplexity = json["perplexity"].as_f64().expect("perplexity");
        assert!(
            (perplexity - expected.exp()).abs() < 1e-3 * expected.exp(),
            "{name}: perplexity {perplexity}"
        );
    }
}

#[test]
fn score_text_output() {
    let reference = model_reference("tied-gqa-f32");
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let stdout = stdout_of(&qwen3(&[
        "score",
        "--model",
        &model,
        "--input-ids",
        &ids_arg(&reference.input_ids),
    ]));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(
        lines[0],
        format!("tokens: {}", reference.input_ids.len() - 1)
    );
    assert!(lines[1].starts_with("mean_nll: "), "{stdout}");
    assert!(lines[2].starts_with("perplexity: "), "{stdout}");
}

#[test]
fn logits_out_matches_transformers() {
    let reference = model_reference("head-dim-32-f32");
    let model = model_fixture_dir("head-dim-32-f32").display().to_string();
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("logits.safetensors");
    let ids = ids_arg(&reference.input_ids);
    stdout_of(&qwen3(&[
        "score",
        "--model",
        &model,
        "--input-ids",
        &ids,
        "--logits-out",
        &path.display().to_string(),
    ]));

    let bytes = std::fs::read(&path).expect("logits file");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    assert_eq!(file.names(), vec!["logits"]);
    let tensor = file.tensor("logits").expect("logits tensor");
    assert_eq!(tensor.dtype(), safetensors::Dtype::F32);
    assert_eq!(
        tensor.shape(),
        [reference.input_ids.len(), reference.vocab_size]
    );
    let values: Vec<f32> = tensor
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let diff = max_abs_diff(&values, &reference.logits);
    assert!(diff <= 1e-4, "max logit difference {diff:e}");
}

#[test]
fn score_rejects_out_of_range_id() {
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let output = qwen3(&["score", "--model", &model, "--input-ids", "1,2,384"]);
    assert_clean_failure(&output, "token id 384 at index 2 is out of range");
    assert_clean_failure(&output, "the model's ids are 0 to 383");
}

#[test]
fn score_rejects_single_id() {
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let output = qwen3(&["score", "--model", &model, "--input-ids", "1"]);
    assert_clean_failure(&output, "needs at least 2");
}

#[test]
fn score_rejects_non_numeric_id() {
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let output = qwen3(&["score", "--model", &model, "--input-ids", "1,two"]);
    assert_clean_failure(&output, "invalid value 'two'");
}

#[test]
fn score_accepts_spaces_between_ids() {
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let spaced = stdout_of(&qwen3(&[
        "score",
        "--model",
        &model,
        "--input-ids",
        "1, 2 ,3",
    ]));
    let plain = stdout_of(&qwen3(&[
        "score",
        "--model",
        &model,
        "--input-ids",
        "1,2,3",
    ]));
    assert_eq!(spaced, plain);
}

#[test]
fn score_rejects_folder_without_config() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let output = qwen3(&[
        "score",
        "--model",
        &dir.path().display().to_string(),
        "--input-ids",
        "1,2",
    ]);
    assert_clean_failure(&output, "config.json not found");
}

#[test]
fn failed_logits_out_leaves_no_file() {
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("missing-folder").join("logits.safetensors");
    let output = qwen3(&[
        "score",
        "--model",
        &model,
        "--input-ids",
        "1,2",
        "--logits-out",
        &path.display().to_string(),
    ]);
    assert_clean_failure(&output, "missing-folder");
    assert!(!path.exists());
}

#[test]
fn logits_out_folder_is_rejected() {
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let dir = tempfile::tempdir().expect("temporary folder");
    let output = qwen3(&[
        "score",
        "--model",
        &model,
        "--input-ids",
        "1,2",
        "--logits-out",
        &dir.path().display().to_string(),
    ]);
    assert_clean_failure(&output, "is a folder; give a file path");
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[cfg(unix)]
#[test]
fn logits_out_gets_the_umask_permissions() {
    use std::os::unix::fs::PermissionsExt;

    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("logits.safetensors");
    let arguments = |path: &str| {
        qwen3(&[
            "score",
            "--model",
            &model,
            "--input-ids",
            "1,2",
            "--logits-out",
            path,
        ])
    };
    stdout_of(&arguments(&path.display().to_string()));
    // A file the test process creates gets 0o666 less the same umask.
    let touched = dir.path().join("touched");
    std::fs::File::create(&touched).expect("create");
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&path), mode(&touched));

    // A replaced file keeps its permissions.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    stdout_of(&arguments(&path.display().to_string()));
    assert_eq!(mode(&path), 0o600);
}

#[cfg(not(feature = "flex"))]
#[test]
fn device_not_compiled_in_names_feature() {
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let output = qwen3(&[
        "score",
        "--model",
        &model,
        "--input-ids",
        "1,2",
        "--device",
        "flex",
    ]);
    assert_clean_failure(&output, "--features flex");
}

/// The GPU devices exist in every build; without their cargo feature they
/// name it. Default builds have none of them.
#[test]
fn gpu_device_not_compiled_in_names_feature() {
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let devices = [
        ("wgpu", cfg!(feature = "wgpu")),
        ("metal", cfg!(feature = "metal")),
        ("vulkan", cfg!(feature = "vulkan")),
        ("cuda", cfg!(feature = "cuda")),
    ];
    for (device, compiled_in) in devices {
        if compiled_in {
            continue;
        }
        let output = qwen3(&[
            "score",
            "--model",
            &model,
            "--input-ids",
            "1,2",
            "--device",
            device,
        ]);
        assert_clean_failure(&output, &format!("rebuild with `--features {device}`"));
    }
}

#[test]
fn bf16_weights_on_ndarray_score_near_f32() {
    // ndarray has no bf16 tensors, but on the CPU the weight matrices live
    // outside burn, so bf16 weights run there too, with f32 activations.
    let reference = model_reference("tied-gqa-f32");
    let model = model_fixture_dir("tied-gqa-f32").display().to_string();
    let ids = ids_arg(&reference.input_ids);
    let expected = reference_mean_nll(
        &reference.logits,
        reference.vocab_size,
        &reference.input_ids,
    );
    for dtype in ["bf16", "f16"] {
        let stdout = stdout_of(&qwen3(&[
            "score",
            "--model",
            &model,
            "--input-ids",
            &ids,
            "--device",
            "ndarray",
            "--dtype",
            dtype,
            "--format",
            "json",
        ]));
        let json: Value = serde_json::from_str(&stdout).expect("one JSON object");
        let mean_nll = json["mean_nll"].as_f64().expect("mean_nll");
        // Rounding the weights to 16 bits moves the loss a little, not much.
        assert!(
            (mean_nll - expected).abs() < 0.02 * expected,
            "{dtype}: mean_nll {mean_nll}, transformers f32 {expected}"
        );
        assert!(
            (mean_nll - expected).abs() > 0.0,
            "{dtype}: identical to f32, so the weights were not rounded"
        );
    }
}
