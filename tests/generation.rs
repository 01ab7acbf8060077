//! The generation loop on tiny checkpoints: greedy and penalized greedy tokens
//! against `transformers` `generate`, and every way the loop can end.

use qwen3_model::burn::tensor::{DType, Device};
use qwen3_model::{
    FinishReason, GenerateOptions, Logits, Qwen3ForCausalLM, Sampler, SamplingParams, Step, argmax,
    generate,
};
use qwen3_tests::{model_fixture_dir, model_fixture_names, model_reference, test_devices};
use qwen3_weights::Checkpoint;

/// The repetition penalty the fixtures were generated with (`manifest.json`).
const REPETITION_PENALTY: f32 = 1.3;

fn load(name: &str, device: &Device) -> Qwen3ForCausalLM {
    let checkpoint =
        Checkpoint::open(model_fixture_dir(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    checkpoint
        .load(device, DType::F32)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .0
}

fn greedy(repetition_penalty: f32) -> Sampler {
    Sampler::new(SamplingParams {
        greedy: true,
        repetition_penalty,
        ..SamplingParams::default()
    })
}

fn options(max_new_tokens: usize) -> GenerateOptions {
    GenerateOptions { max_new_tokens }
}

#[test]
fn greedy_generation_matches_transformers() {
    for name in model_fixture_names() {
        for device in test_devices() {
            let model = load(&name, &device);
            let reference = model_reference(&name);
            let mut cache = model.new_cache(64).expect("cache");
            let output = generate(
                &model,
                &mut cache,
                &reference.input_ids,
                &mut greedy(1.0),
                options(20),
                |_| Step::Continue,
            )
            .expect("generate");
            assert_eq!(
                output.token_ids, reference.greedy_ids,
                "{name} on {device:?}"
            );
            assert_eq!(output.finish_reason, FinishReason::MaxNewTokens);
        }
    }
}

#[test]
fn repetition_penalty_matches_transformers() {
    for name in model_fixture_names() {
        for device in test_devices() {
            let model = load(&name, &device);
            let reference = model_reference(&name);
            let mut cache = model.new_cache(64).expect("cache");
            let mut sampler = greedy(REPETITION_PENALTY);
            let output = generate(
                &model,
                &mut cache,
                &reference.input_ids,
                &mut sampler,
                options(20),
                |_| Step::Continue,
            )
            .expect("generate");
            assert_eq!(
                output.token_ids, reference.greedy_ids_repetition_penalty,
                "{name} on {device:?}"
            );
        }
    }
}

#[test]
fn callback_stop_ends_generation() {
    let device = test_devices().remove(0);
    let model = load("tied-gqa-f32", &device);
    let reference = model_reference("tied-gqa-f32");
    let stop_at = reference.greedy_ids[3];
    let mut cache = model.new_cache(64).expect("cache");
    let output = generate(
        &model,
        &mut cache,
        &reference.input_ids,
        &mut greedy(1.0),
        options(20),
        |token| {
            if token == stop_at {
                Step::Stop
            } else {
                Step::Continue
            }
        },
    )
    .expect("generate");
    let expected_len = reference
        .greedy_ids
        .iter()
        .position(|&t| t == stop_at)
        .expect("present")
        + 1;
    assert_eq!(output.token_ids, reference.greedy_ids[..expected_len]);
    assert_eq!(output.finish_reason, FinishReason::Stopped);
}

#[test]
fn max_new_tokens_ends_generation() {
    let device = test_devices().remove(0);
    let model = load("tied-gqa-f32", &device);
    let reference = model_reference("tied-gqa-f32");
    let mut cache = model.new_cache(64).expect("cache");
    let output = generate(
        &model,
        &mut cache,
        &reference.input_ids,
        &mut greedy(1.0),
        options(7),
        |_| Step::Continue,
    )
    .expect("generate");
    assert_eq!(output.token_ids, reference.greedy_ids[..7]);
    assert_eq!(output.finish_reason, FinishReason::MaxNewTokens);
}

#[test]
fn full_context_ends_generation() {
    let device = test_devices().remove(0);
    let model = load("tied-gqa-f32", &device);
    let reference = model_reference("tied-gqa-f32");
    let prompt = reference.input_ids.len();
    let mut cache = model.new_cache(prompt + 5).expect("cache");
    let output = generate(
        &model,
        &mut cache,
        &reference.input_ids,
        &mut greedy(1.0),
        options(20),
        |_| Step::Continue,
    )
    .expect("generate");
    // Five tokens fill the cache; the sixth is sampled from the full cache and cannot be fed.
    assert_eq!(output.token_ids, reference.greedy_ids[..6]);
    assert_eq!(output.finish_reason, FinishReason::ContextFull);
    assert_eq!(cache.len(), prompt + 5);
}

#[test]
fn prompt_longer_than_cache_is_error() {
    let device = test_devices().remove(0);
    let model = load("tied-gqa-f32", &device);
    let reference = model_reference("tied-gqa-f32");
    let mut cache = model.new_cache(4).expect("cache");
    let result = generate(
        &model,
        &mut cache,
        &reference.input_ids,
        &mut greedy(1.0),
        options(5),
        |_| Step::Continue,
    );
    assert!(result.is_err());
}

#[test]
fn fed_ids_continue_generation() {
    let device = test_devices().remove(0);
    let model = load("tied-gqa-f32", &device);
    let reference = model_reference("tied-gqa-f32");
    let forced = [5u32, 6, 7];
    let mut calls = 0;
    let mut cache = model.new_cache(64).expect("cache");
    let output = generate(
        &model,
        &mut cache,
        &reference.input_ids,
        &mut greedy(1.0),
        options(8),
        |_| {
            calls += 1;
            if calls == 2 {
                Step::Feed(forced.to_vec())
            } else {
                Step::Continue
            }
        },
    )
    .expect("generate");

    // Two sampled tokens, the three fed ids, then tokens sampled after them.
    assert_eq!(output.token_ids.len(), 8);
    assert_eq!(output.token_ids[..2], reference.greedy_ids[..2]);
    assert_eq!(output.token_ids[2..5], forced);

    // The token after the fed ids is the argmax of an uncached pass over everything before it.
    let mut sequence = reference.input_ids.clone();
    sequence.extend_from_slice(&output.token_ids[..5]);
    let mut fresh = model.new_cache(64).expect("cache");
    let logits = model
        .forward(&sequence, &mut fresh, Logits::Last)
        .expect("forward");
    let row = logits.into_data().try_to_vec::<f32>().expect("f32");
    assert_eq!(output.token_ids[5], argmax(&row));
}

#[test]
fn seeded_sampling_repeats() {
    let device = test_devices().remove(0);
    let model = load("tied-gqa-f32", &device);
    let reference = model_reference("tied-gqa-f32");
    let params = SamplingParams {
        temperature: 1.5,
        top_k: 0,
        top_p: 1.0,
        seed: 1234,
        ..SamplingParams::default()
    };
    let run = |params: SamplingParams| {
        let mut cache = model.new_cache(64).expect("cache");
        let mut sampler = Sampler::new(params);
        generate(
            &model,
            &mut cache,
            &reference.input_ids,
            &mut sampler,
            options(20),
            |_| Step::Continue,
        )
        .expect("generate")
        .token_ids
    };
    let first = run(params.clone());
    assert_eq!(first, run(params.clone()));
    assert_ne!(first, run(SamplingParams { seed: 99, ..params }));
}
