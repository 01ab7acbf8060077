//! The model on burn's wgpu backend against `transformers`, on the tiny
//! fixtures of `cargo xtask model-fixtures`. Without a GPU, Mesa's software
//! Vulkan (lavapipe) runs it. Every new kernel then takes seconds to compile,
//! so all fixtures share one device and one process.

use std::sync::OnceLock;

use qwen3_model::burn::tensor::{DType, Device, Tensor};
use qwen3_model::{
    GenerateOptions, Logits, Qwen3ForCausalLM, Sampler, SamplingParams, Step, generate,
};
use qwen3_tests::{max_abs_diff, model_fixture_dir, model_fixture_names, model_reference};
use qwen3_weights::Checkpoint;

/// Largest allowed difference from the `transformers` logits in f32.
const F32_TOLERANCE: f32 = 1e-3;
/// In f16, the argmax must match the reference where its top-1/top-2 margin
/// is above this.
const F16_MARGIN: f32 = 0.05;

fn device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            Device::wgpu_options().init().unwrap_or_else(|e| {
                panic!("no wgpu adapter ({e}); without a GPU install mesa-vulkan-drivers")
            })
        })
        .clone()
}

fn load(name: &str, dtype: DType) -> Qwen3ForCausalLM {
    let checkpoint =
        Checkpoint::open(model_fixture_dir(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    checkpoint
        .load(&device(), dtype)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .0
}

fn values(tensor: Tensor<2>) -> Vec<f32> {
    tensor
        .cast(DType::F32)
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 data")
}

/// Index of the largest value and its lead over the runner-up.
fn top1_and_margin(row: &[f32]) -> (u32, f32) {
    let mut best = 0;
    for (index, &value) in row.iter().enumerate() {
        if value > row[best] {
            best = index;
        }
    }
    let second = row
        .iter()
        .enumerate()
        .filter(|&(index, _)| index != best)
        .map(|(_, &value)| value)
        .fold(f32::NEG_INFINITY, f32::max);
    (best as u32, row[best] - second)
}

fn greedy(model: &Qwen3ForCausalLM, prompt: &[u32], steps: usize) -> Vec<u32> {
    let mut cache = model.new_cache(prompt.len() + steps).expect("cache");
    let params = SamplingParams {
        greedy: true,
        ..SamplingParams::default()
    };
    let mut sampler = Sampler::new(params);
    assert!(
        !sampler.needs_logits(),
        "greedy picks the token on the device"
    );
    generate(
        model,
        &mut cache,
        prompt,
        &mut sampler,
        GenerateOptions {
            max_new_tokens: steps,
        },
        |_| Step::Continue,
    )
    .expect("generate")
    .token_ids
}

#[test]
fn f32_matches_transformers_on_every_fixture() {
    let names = model_fixture_names();
    assert!(
        names.len() >= 6,
        "expected the model fixtures, found {names:?}"
    );
    for name in names {
        let model = load(&name, DType::F32);
        let reference = model_reference(&name);

        let mut cache = model.new_cache(reference.input_ids.len()).expect("cache");
        let logits = model
            .forward(&reference.input_ids, &mut cache, Logits::All)
            .expect("forward");
        let diff = max_abs_diff(&values(logits), &reference.logits);
        eprintln!("{name} f32: max logit difference {diff:e}");
        assert!(
            diff <= F32_TOLERANCE,
            "{name}: max logit difference {diff:e}"
        );

        let tokens = greedy(&model, &reference.input_ids, reference.greedy_ids.len());
        assert_eq!(tokens, reference.greedy_ids, "{name}: greedy tokens");
    }
}

#[test]
fn f32_chunked_prefill_matches_single() {
    // A chunk after cached tokens takes the explicit-mask path of the fused
    // attention; a chunk on an empty cache takes the causal flag.
    let name = "tied-gqa-f32";
    let model = load(name, DType::F32);
    let ids = model_reference(name).input_ids;

    let mut cache = model.new_cache(ids.len()).expect("cache");
    let single = values(
        model
            .forward(&ids, &mut cache, Logits::All)
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
    assert!(diff <= 1e-4, "chunked against single prefill: {diff:e}");
}

/// Feeds the reference greedy tokens back one at a time (teacher forcing) in
/// f16 and compares each step's argmax where the reference is decisive.
#[test]
fn f16_follows_reference_under_teacher_forcing() {
    for name in ["tied-gqa-f32", "untied-mha-f16", "large-activations-f32"] {
        let model = load(name, DType::F16);
        assert_eq!(model.dtype(), DType::F16);
        let reference = model_reference(name);
        let vocab = reference.vocab_size;
        let steps = reference.greedy_ids.len();
        let mut cache = model
            .new_cache(reference.input_ids.len() + steps)
            .expect("cache");

        let prefill = values(
            model
                .forward(&reference.input_ids, &mut cache, Logits::All)
                .expect("prefill"),
        );
        assert!(
            prefill.iter().all(|v| v.is_finite()),
            "{name}: non-finite prefill logits in f16"
        );
        let mut row = prefill[prefill.len() - vocab..].to_vec();
        let mut compared = 0;
        for step in 0..steps {
            assert!(
                row.iter().all(|v| v.is_finite()),
                "{name}: non-finite logits at step {step}"
            );
            let expected_row = &reference.greedy_logits[step * vocab..(step + 1) * vocab];
            let (expected, margin) = top1_and_margin(expected_row);
            assert_eq!(expected, reference.greedy_ids[step], "{name}: reference");
            if margin > F16_MARGIN {
                let (actual, _) = top1_and_margin(&row);
                assert_eq!(
                    actual, expected,
                    "{name}, step {step}: f16 argmax {actual}, reference {expected} (margin {margin})"
                );
                compared += 1;
            }
            row = values(
                model
                    .forward(&[reference.greedy_ids[step]], &mut cache, Logits::Last)
                    .expect("step"),
            );
        }
        eprintln!("{name} f16: {compared} of {steps} steps decisive and equal");
        assert!(
            compared * 2 >= steps,
            "{name}: only {compared} decisive steps"
        );
    }
}

#[test]
fn f16_stays_finite_with_large_activations() {
    let name = "large-activations-f32";
    let model = load(name, DType::F16);
    let reference = model_reference(name);
    let mut cache = model.new_cache(reference.input_ids.len()).expect("cache");
    let output = model
        .forward_detailed(&reference.input_ids, &mut cache, Logits::All, true)
        .expect("forward");

    let mut largest = 0.0f32;
    for (layer, state) in output
        .hidden_states
        .expect("hidden states")
        .into_iter()
        .enumerate()
    {
        let state = values(state);
        assert!(
            state.iter().all(|v| v.is_finite()),
            "{name}: non-finite hidden state after layer {layer}"
        );
        largest = state.iter().fold(largest, |m, v| m.max(v.abs()));
    }
    assert!(
        largest > 1e4,
        "{name}: the residual stream peaks at {largest}, so the fixture does not test the f16 range"
    );
    let logits = values(output.logits);
    assert!(
        logits.iter().all(|v| v.is_finite()),
        "{name}: non-finite logits"
    );
}
