//! The token-level generation loop.

use std::time::Instant;

use burn::tensor::{DType, Tensor};

use crate::cache::KvCache;
use crate::error::ModelError;
use crate::model::{Logits, Qwen3ForCausalLM};
use crate::sampler::Sampler;

/// The caller's decision after seeing a sampled token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Feed the token and sample the next one.
    Continue,
    /// End generation; the token stays in the output.
    Stop,
    /// Feed the token, then these ids as if they had been generated (for
    /// example `\n</think>\n\n` to close reasoning), then sample again.
    Feed(Vec<u32>),
}

/// Reason the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The callback returned [`Step::Stop`].
    Stopped,
    /// `max_new_tokens` tokens were produced.
    MaxNewTokens,
    /// The KV cache has no room for the next token.
    ContextFull,
}

/// Limits of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Maximum number of new tokens, sampled and fed ones together.
    pub max_new_tokens: usize,
}

/// The result of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// New tokens in order: sampled ones and ids fed by the callback.
    pub token_ids: Vec<u32>,
    /// Reason the loop ended.
    pub finish_reason: FinishReason,
    /// Number of prompt tokens processed in prefill.
    pub prompt_tokens: usize,
    /// Seconds from the start of prefill to the first sampled token.
    pub prefill_seconds: f64,
    /// Seconds spent after the first token (forward passes and sampling).
    pub decode_seconds: f64,
    /// Number of sampled tokens (`token_ids` minus the ids fed by the callback).
    pub sampled_tokens: usize,
}

impl Generation {
    /// Prompt tokens per second of prefill.
    pub fn prefill_tokens_per_second(&self) -> f64 {
        rate(self.prompt_tokens, self.prefill_seconds)
    }

    /// Sampled tokens per second after the first one (fed ids do not count).
    pub fn decode_tokens_per_second(&self) -> f64 {
        rate(self.sampled_tokens.saturating_sub(1), self.decode_seconds)
    }
}

fn rate(tokens: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        tokens as f64 / seconds
    } else {
        0.0
    }
}

/// Generates after `prompt`, which is appended to whatever `cache` already
/// contains (a multi-turn chat reuses the cache of earlier turns).
///
/// Each sampled id is passed to `on_token`, which decides how to go on (see
/// [`Step`]). Only the sampled token id, or the logits row the sampler needs,
/// crosses from the device to the host per step.
pub fn generate(
    model: &Qwen3ForCausalLM,
    cache: &mut KvCache,
    prompt: &[u32],
    sampler: &mut Sampler,
    options: GenerateOptions,
    mut on_token: impl FnMut(u32) -> Step,
) -> Result<Generation, ModelError> {
    let start = Instant::now();
    let mut context: Vec<u32> = prompt.to_vec();
    let mut generated: Vec<u32> = Vec::new();

    let mut logits = model.forward(prompt, cache, Logits::Last)?;
    let mut first_token_at = None;
    let mut sampled_tokens = 0;

    let finish_reason = loop {
        if generated.len() >= options.max_new_tokens {
            break FinishReason::MaxNewTokens;
        }
        let token = if sampler.needs_logits() {
            sampler.sample(&last_row(logits)?, &context, &generated)
        } else {
            argmax_last(logits)?
        };
        first_token_at.get_or_insert_with(Instant::now);
        sampled_tokens += 1;
        generated.push(token);
        context.push(token);

        let mut feed = vec![token];
        match on_token(token) {
            Step::Continue => {}
            Step::Stop => break FinishReason::Stopped,
            Step::Feed(ids) => {
                let room = options.max_new_tokens - generated.len();
                let forced = &ids[..ids.len().min(room)];
                generated.extend_from_slice(forced);
                context.extend_from_slice(forced);
                feed.extend_from_slice(forced);
            }
        }
        if generated.len() >= options.max_new_tokens {
            break FinishReason::MaxNewTokens;
        }
        if cache.len() + feed.len() > cache.capacity() {
            break FinishReason::ContextFull;
        }
        logits = model.forward(&feed, cache, Logits::Last)?;
    };

    let end = Instant::now();
    let first = first_token_at.unwrap_or(end);
    Ok(Generation {
        token_ids: generated,
        finish_reason,
        prompt_tokens: prompt.len(),
        prefill_seconds: first.duration_since(start).as_secs_f64(),
        decode_seconds: end.duration_since(first).as_secs_f64(),
        sampled_tokens,
    })
}

/// Returns the index of the largest logit in the last row of `[positions,
/// vocab]` logits. The device computes it, and only the index is read back.
pub fn argmax_last(logits: Tensor<2>) -> Result<u32, ModelError> {
    let [positions, _] = logits.dims();
    let index = logits.narrow(0, positions - 1, 1).argmax(1);
    index
        .into_data()
        .iter::<i64>()
        .next()
        .map(|id| id as u32)
        .ok_or_else(|| ModelError::DeviceRead("argmax returned no index".into()))
}

/// Copies the last row of `[positions, vocab]` logits to the host as f32.
fn last_row(logits: Tensor<2>) -> Result<Vec<f32>, ModelError> {
    let [positions, _] = logits.dims();
    let row = logits.narrow(0, positions - 1, 1).cast(DType::F32);
    row.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| ModelError::DeviceRead(format!("{e:?}")))
}
