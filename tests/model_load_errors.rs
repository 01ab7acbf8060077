//! Damaged checkpoints give one clear error naming the file or tensor, never a panic.

use std::path::Path;

use qwen3_model::burn::tensor::{DType, Device};
use qwen3_tests::{model_fixture_dir, test_devices};
use qwen3_weights::{Checkpoint, WeightsError};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// A copy of a fixture checkpoint that a test may damage.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    for entry in std::fs::read_dir(model_fixture_dir(name)).expect("fixture folder") {
        let path = entry.expect("entry").path();
        let file_name = path.file_name().expect("file name");
        std::fs::copy(&path, dir.path().join(file_name)).expect("copy fixture file");
    }
    dir
}

/// Joins the error and its sources, as the CLI prints them.
fn chain(error: &WeightsError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn device() -> Device {
    test_devices().remove(0)
}

fn load_error(dir: &Path) -> WeightsError {
    let result =
        Checkpoint::open(dir).and_then(|checkpoint| checkpoint.load(&device(), DType::F32));
    match result {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(error) => error,
    }
}

/// Rewrites `model.safetensors` after `edit` changes the list of (name, dtype, shape, bytes).
fn rewrite_tensors(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).expect("read");
    let file = SafeTensors::deserialize(&bytes).expect("valid fixture");
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                view.dtype(),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    edit(&mut tensors);

    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), data).expect("consistent view"),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &path).expect("write");
}

fn assert_mismatch_mentions(error: &WeightsError, fragments: &[&str]) {
    assert!(
        matches!(error, WeightsError::TensorMismatch { .. }),
        "{error:?}"
    );
    for fragment in fragments {
        assert!(
            chain(error).contains(fragment),
            "error lacks {fragment:?}: {error}"
        );
    }
}

#[test]
fn missing_tensor() {
    let dir = copy_fixture("tied-gqa-f32");
    rewrite_tensors(dir.path(), |tensors| {
        tensors.retain(|t| t.0 != "model.layers.1.self_attn.k_norm.weight")
    });
    let error = load_error(dir.path());
    assert_mismatch_mentions(
        &error,
        &["missing tensor model.layers.1.self_attn.k_norm.weight"],
    );
}

#[test]
fn unexpected_tensor() {
    let dir = copy_fixture("tied-gqa-f32");
    rewrite_tensors(dir.path(), |tensors| {
        tensors.push((
            "model.layers.0.self_attn.q_proj.bias".into(),
            Dtype::F32,
            vec![32],
            vec![0; 128],
        ));
    });
    let error = load_error(dir.path());
    assert_mismatch_mentions(
        &error,
        &["unexpected tensor model.layers.0.self_attn.q_proj.bias"],
    );
}

#[test]
fn lm_head_in_tied_checkpoint() {
    let dir = copy_fixture("tied-gqa-f32");
    rewrite_tensors(dir.path(), |tensors| {
        tensors.push((
            "lm_head.weight".into(),
            Dtype::F32,
            vec![384, 32],
            vec![0; 384 * 32 * 4],
        ));
    });
    let error = load_error(dir.path());
    assert_mismatch_mentions(
        &error,
        &["unexpected tensor lm_head.weight", "tie_word_embeddings"],
    );
}

#[test]
fn wrong_shape() {
    let dir = copy_fixture("tied-gqa-f32");
    rewrite_tensors(dir.path(), |tensors| {
        let tensor = tensors
            .iter_mut()
            .find(|t| t.0 == "model.layers.2.mlp.up_proj.weight")
            .expect("tensor");
        tensor.2 = vec![32, 96];
    });
    let error = load_error(dir.path());
    assert_mismatch_mentions(
        &error,
        &["model.layers.2.mlp.up_proj.weight has shape [32, 96], expected [96, 32]"],
    );
}

#[test]
fn all_problems_in_one_error() {
    let dir = copy_fixture("tied-gqa-f32");
    rewrite_tensors(dir.path(), |tensors| {
        tensors.retain(|t| t.0 != "model.norm.weight");
        tensors.push(("extra.weight".into(), Dtype::F32, vec![1], vec![0; 4]));
        let tensor = tensors
            .iter_mut()
            .find(|t| t.0 == "model.layers.0.self_attn.q_norm.weight")
            .expect("tensor");
        tensor.2 = vec![2, 4];
    });
    let error = load_error(dir.path());
    assert_mismatch_mentions(
        &error,
        &[
            "model.norm.weight",
            "extra.weight",
            "q_norm.weight has shape [2, 4]",
        ],
    );
}

#[test]
fn integer_dtype_tensor() {
    let dir = copy_fixture("tied-gqa-f32");
    rewrite_tensors(dir.path(), |tensors| {
        let tensor = tensors
            .iter_mut()
            .find(|t| t.0 == "model.norm.weight")
            .expect("tensor");
        tensor.1 = Dtype::I32;
    });
    let error = load_error(dir.path());
    assert_mismatch_mentions(&error, &["model.norm.weight has dtype I32"]);
}

#[test]
fn truncated_safetensors() {
    let dir = copy_fixture("tied-gqa-f32");
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).expect("truncate");
    let error = load_error(dir.path());
    assert!(
        matches!(error, WeightsError::InvalidSafetensors { .. }),
        "{error:?}"
    );
    assert!(
        chain(&error).contains(&path.display().to_string()),
        "{error}"
    );
}

#[test]
fn corrupt_header() {
    let dir = copy_fixture("tied-gqa-f32");
    let path = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[8..20].copy_from_slice(b"not json!!!!");
    std::fs::write(&path, &bytes).expect("write");
    let error = load_error(dir.path());
    assert!(
        matches!(error, WeightsError::InvalidSafetensors { .. }),
        "{error:?}"
    );
    assert!(chain(&error).contains("model.safetensors"), "{error}");
}

#[test]
fn header_length_beyond_file() {
    let dir = copy_fixture("tied-gqa-f32");
    let path = dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let error = load_error(dir.path());
    assert!(
        matches!(error, WeightsError::InvalidSafetensors { .. }),
        "{error:?}"
    );
}

#[test]
fn index_names_missing_shard() {
    let dir = copy_fixture("sharded-untied-f32");
    let shard = dir.path().join("model-00003-of-00006.safetensors");
    std::fs::remove_file(&shard).expect("remove shard");
    let error = load_error(dir.path());
    assert!(
        matches!(error, WeightsError::InvalidIndex { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("model-00003-of-00006.safetensors"),
        "{error}"
    );
}

#[test]
fn index_disagrees_with_shards() {
    let dir = copy_fixture("sharded-untied-f32");
    let index_path = dir.path().join("model.safetensors.index.json");
    let mut index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index_path).expect("read")).expect("parse");
    index["weight_map"]["model.norm.weight"] = "model-00001-of-00006.safetensors".into();
    std::fs::write(&index_path, index.to_string()).expect("write");
    let error = load_error(dir.path());
    assert!(
        matches!(error, WeightsError::InvalidIndex { .. }),
        "{error:?}"
    );
    assert!(chain(&error).contains("model.norm.weight"), "{error}");
}

#[test]
fn index_with_path_outside_folder() {
    let dir = copy_fixture("sharded-untied-f32");
    let index_path = dir.path().join("model.safetensors.index.json");
    let mut index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index_path).expect("read")).expect("parse");
    index["weight_map"]["model.norm.weight"] = "../../etc/passwd".into();
    std::fs::write(&index_path, index.to_string()).expect("write");
    let error = load_error(dir.path());
    assert!(
        error
            .to_string()
            .contains("not a file name in the checkpoint folder"),
        "{error}"
    );
}

#[test]
fn unsupported_config_value() {
    let dir = copy_fixture("tied-gqa-f32");
    let config_path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("read")).expect("parse");
    config["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0});
    std::fs::write(&config_path, config.to_string()).expect("write");
    let error = load_error(dir.path());
    assert!(matches!(error, WeightsError::Config { .. }), "{error:?}");
    assert!(chain(&error).contains("rope_scaling"), "{error}");
    assert!(chain(&error).contains("config.json"), "{error}");
}

#[test]
fn config_of_another_size_is_summarized() {
    let dir = copy_fixture("tied-gqa-f32");
    let config_path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("read")).expect("parse");
    let hidden_size = config["hidden_size"].as_u64().expect("hidden_size") + 16;
    config["hidden_size"] = hidden_size.into();
    std::fs::write(&config_path, config.to_string()).expect("write");

    let error = load_error(dir.path());
    let WeightsError::TensorMismatch { problems, .. } = &error else {
        panic!("{error:?}")
    };
    assert!(
        problems[0].contains(&format!("hidden_size {hidden_size}"))
            && problems[0].contains("is config.json from another model?"),
        "{}",
        problems[0]
    );
    // Every misshaped tensor is in the error, but the message lists 20.
    let message = error.to_string();
    assert!(problems.len() > 21, "{} problems", problems.len());
    assert_eq!(message.lines().count(), 1 + 20 + 1, "{message}");
    assert!(
        message.ends_with(&format!("... and {} more", problems.len() - 20)),
        "{message}"
    );
}

#[test]
fn config_with_moe_model_type() {
    let dir = copy_fixture("tied-gqa-f32");
    let config_path = dir.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path).expect("read")).expect("parse");
    config["model_type"] = "qwen3_moe".into();
    std::fs::write(&config_path, config.to_string()).expect("write");
    let error = load_error(dir.path());
    assert!(chain(&error).contains("qwen3_moe"), "{error}");
}

#[test]
fn missing_config() {
    let dir = copy_fixture("tied-gqa-f32");
    std::fs::remove_file(dir.path().join("config.json")).expect("remove");
    let error = load_error(dir.path());
    assert!(
        matches!(error, WeightsError::MissingFile { .. }),
        "{error:?}"
    );
}

#[test]
fn missing_weights() {
    let dir = copy_fixture("tied-gqa-f32");
    std::fs::remove_file(dir.path().join("model.safetensors")).expect("remove");
    let error = load_error(dir.path());
    assert!(
        chain(&error).contains("model.safetensors not found"),
        "{error}"
    );
}

#[test]
fn invalid_generation_config() {
    let dir = copy_fixture("tied-gqa-f32");
    std::fs::write(
        dir.path().join("generation_config.json"),
        "{\"eos_token_id\": \"x\"}",
    )
    .expect("write");
    let error = load_error(dir.path());
    assert!(chain(&error).contains("generation_config.json"), "{error}");
}
