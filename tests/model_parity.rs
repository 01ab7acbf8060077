//! The model against `transformers`: logits, hidden states and greedy tokens
//! on tiny random checkpoints whose reference outputs `Qwen3ForCausalLM`
//! computed (`cargo xtask model-fixtures`).

use qwen3_model::burn::tensor::{DType, Device, Tensor};
use qwen3_model::{Logits, ModelError, Qwen3ForCausalLM};
use qwen3_tests::{
    max_abs_diff, model_fixture_dir, model_fixture_names, model_reference, test_devices,
};
use qwen3_weights::Checkpoint;

const REFERENCE_TOLERANCE: f32 = 1e-4;
const SELF_TOLERANCE: f32 = 1e-5;

fn load(name: &str, device: &Device) -> Qwen3ForCausalLM {
    let checkpoint =
        Checkpoint::open(model_fixture_dir(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (model, _) = checkpoint
        .load(device, DType::F32)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    model
}

fn values(tensor: Tensor<2>) -> Vec<f32> {
    tensor
        .cast(DType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 data")
}

fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (index, &value) in row.iter().enumerate() {
        if value > row[best] {
            best = index;
        }
    }
    best as u32
}

/// Every fixture on every compiled-in device.
fn cases() -> Vec<(String, Device)> {
    let names = model_fixture_names();
    assert!(
        names.len() >= 5,
        "expected at least 5 model fixtures, found {names:?}"
    );
    names
        .into_iter()
        .flat_map(|name| {
            test_devices()
                .into_iter()
                .map(move |device| (name.clone(), device))
        })
        .collect()
}

#[test]
fn logits_match_transformers() {
    for (name, device) in cases() {
        let model = load(&name, &device);
        let reference = model_reference(&name);
        let mut cache = model.new_cache(reference.input_ids.len()).expect("cache");

        let logits = model
            .forward(&reference.input_ids, &mut cache, Logits::All)
            .expect("forward");
        assert_eq!(
            logits.dims(),
            [reference.input_ids.len(), reference.vocab_size],
            "{name}"
        );
        let diff = max_abs_diff(&values(logits), &reference.logits);
        eprintln!("{name} on {device:?}: max logit difference {diff:e}");
        assert!(
            diff <= REFERENCE_TOLERANCE,
            "{name} on {device:?}: max logit difference {diff:e}"
        );
    }
}

#[test]
fn hidden_states_match_transformers() {
    for (name, device) in cases() {
        let model = load(&name, &device);
        let reference = model_reference(&name);
        let seq = reference.input_ids.len();
        let mut cache = model.new_cache(seq).expect("cache");

        let output = model
            .forward_detailed(&reference.input_ids, &mut cache, Logits::Last, true)
            .expect("forward");
        let states = output.hidden_states.expect("hidden states were requested");
        assert_eq!(states.len(), model.config().num_hidden_layers, "{name}");

        let layer_len = seq * reference.hidden_size;
        for (layer, state) in states.into_iter().enumerate() {
            let expected = &reference.hidden_states[layer * layer_len..(layer + 1) * layer_len];
            // Relative to the largest value: the large-activations fixture has
            // residual values above 1e4, where f32 steps are about 1e-3.
            let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let diff = max_abs_diff(&values(state), expected) / scale;
            assert!(
                diff <= REFERENCE_TOLERANCE,
                "{name} on {device:?}, layer {layer}: max difference {diff:e}"
            );
        }
    }
}

#[test]
fn greedy_tokens_match_transformers() {
    for (name, device) in cases() {
        let model = load(&name, &device);
        let reference = model_reference(&name);
        let steps = reference.greedy_ids.len();
        let mut cache = model
            .new_cache(reference.input_ids.len() + steps)
            .expect("cache");

        let mut logits = model
            .forward(&reference.input_ids, &mut cache, Logits::Last)
            .expect("prefill");
        let mut generated = Vec::with_capacity(steps);
        for _ in 0..steps {
            let next = argmax(&values(logits));
            generated.push(next);
            logits = model
                .forward(&[next], &mut cache, Logits::Last)
                .expect("decode step");
        }
        assert_eq!(generated, reference.greedy_ids, "{name} on {device:?}");
    }
}

#[test]
fn cached_logits_match_uncached() {
    for (name, device) in cases() {
        let model = load(&name, &device);
        let reference = model_reference(&name);
        let mut sequence = reference.input_ids.clone();
        sequence.extend(&reference.greedy_ids);
        let vocab = reference.vocab_size;
        let prompt = reference.input_ids.len();

        let mut full_cache = model.new_cache(sequence.len()).expect("cache");
        let uncached = values(
            model
                .forward(&sequence, &mut full_cache, Logits::All)
                .expect("forward"),
        );

        let mut cache = model.new_cache(sequence.len()).expect("cache");
        model
            .forward(&sequence[..prompt], &mut cache, Logits::Last)
            .expect("prefill");
        for position in prompt..sequence.len() {
            let step = values(
                model
                    .forward(&sequence[position..=position], &mut cache, Logits::Last)
                    .expect("step"),
            );
            let expected = &uncached[position * vocab..(position + 1) * vocab];
            let diff = max_abs_diff(&step, expected);
            assert!(
                diff <= SELF_TOLERANCE,
                "{name} on {device:?}, position {position}: difference {diff:e}"
            );
        }
    }
}

#[test]
fn chunked_prefill_matches_single() {
    for (name, device) in cases() {
        let model = load(&name, &device);
        let reference = model_reference(&name);
        let ids = &reference.input_ids;

        let mut cache = model.new_cache(ids.len()).expect("cache");
        let single = values(
            model
                .forward(ids, &mut cache, Logits::All)
                .expect("forward"),
        );

        let mut cache = model.new_cache(ids.len()).expect("cache");
        let mut chunked = Vec::new();
        for chunk in [&ids[..5], &ids[5..6], &ids[6..11], &ids[11..]] {
            chunked.extend(values(
                model
                    .forward(chunk, &mut cache, Logits::All)
                    .expect("chunk"),
            ));
        }
        let diff = max_abs_diff(&chunked, &single);
        assert!(
            diff <= SELF_TOLERANCE,
            "{name} on {device:?}: difference {diff:e}"
        );
    }
}

#[test]
fn exceeding_cache_is_error() {
    let device = test_devices().remove(0);
    let model = load("tied-gqa-f32", &device);
    let mut cache = model.new_cache(6).expect("cache");
    model
        .forward(&[1, 2, 3, 4], &mut cache, Logits::Last)
        .expect("fits");

    let error = model
        .forward(&[5, 6, 7], &mut cache, Logits::Last)
        .expect_err("does not fit");
    assert!(
        matches!(
            error,
            ModelError::ContextFull {
                position: 4,
                requested: 3,
                capacity: 6,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(cache.len(), 4, "a rejected pass leaves the cache as it was");
}

#[test]
fn cache_beyond_max_positions_is_error() {
    let device = test_devices().remove(0);
    let model = load("tied-gqa-f32", &device);
    let max = model.config().max_position_embeddings;
    let error = model.new_cache(max + 1).expect_err("too large");
    assert!(
        matches!(error, ModelError::CacheTooLarge { .. }),
        "{error:?}"
    );
}

#[test]
fn token_out_of_range_is_error() {
    let device = test_devices().remove(0);
    let model = load("tied-gqa-f32", &device);
    let mut cache = model.new_cache(8).expect("cache");
    let vocab = model.config().vocab_size as u32;
    let error = model
        .forward(&[1, vocab], &mut cache, Logits::Last)
        .expect_err("out of range");
    assert!(error.to_string().contains(&vocab.to_string()), "{error}");
}
