//! Choosing the next token from logits: penalties, greedy or seeded sampling.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Sampling settings, named as in `transformers`' `GenerationConfig` and the OpenAI API.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Take the most likely token after the penalties instead of sampling
    /// (`do_sample=False`); the remaining settings but the penalties are ignored.
    pub greedy: bool,
    /// Divides the logits before sampling; must be positive.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability sum reaches `top_p`; 1.0 keeps all.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0.0 keeps all.
    pub min_p: f32,
    /// Over the prompt and generated ids: positive logits are divided by it,
    /// negative ones multiplied, as in `transformers`; 1.0 is off.
    pub repetition_penalty: f32,
    /// Subtracted from the logit of every token generated so far, as in the
    /// OpenAI API and vLLM; 0.0 is off.
    pub presence_penalty: f32,
    /// Seed of the random number generator (ChaCha8).
    pub seed: u64,
}

impl Default for SamplingParams {
    /// Qwen3's thinking-mode settings from its `generation_config.json`.
    fn default() -> Self {
        SamplingParams {
            greedy: false,
            temperature: 0.6,
            top_k: 20,
            top_p: 0.95,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            seed: 0,
        }
    }
}

impl SamplingParams {
    /// Checks the ranges: temperature > 0, 0 < top_p <= 1, 0 <= min_p < 1,
    /// repetition_penalty > 0; returns a message naming the first bad value.
    /// Greedy decoding uses only the penalties, so the sampling ranges are
    /// not checked for it.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(format!(
                "repetition_penalty must be positive, got {}",
                self.repetition_penalty
            ));
        }
        if !self.presence_penalty.is_finite() {
            return Err(format!(
                "presence_penalty must be finite, got {}",
                self.presence_penalty
            ));
        }
        if self.greedy {
            return Ok(());
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(format!(
                "temperature must be positive, got {} (use greedy decoding for the most likely token)",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(self.min_p >= 0.0 && self.min_p < 1.0) {
            return Err(format!("min_p must be in [0, 1), got {}", self.min_p));
        }
        Ok(())
    }
}

/// Chooses tokens from logits with [`SamplingParams`]; the same seed and
/// logits give the same tokens on every run.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// Creates a sampler whose random stream starts from `params.seed`.
    pub fn new(params: SamplingParams) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(params.seed);
        Sampler { params, rng }
    }

    /// Returns the settings.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Returns whether choosing a token needs the logits on the host. Plain
    /// greedy decoding does not, because the device computes the argmax and
    /// only the token id is read back.
    pub fn needs_logits(&self) -> bool {
        !(self.params.greedy
            && self.params.repetition_penalty == 1.0
            && self.params.presence_penalty == 0.0)
    }

    /// Chooses the next token from one row of logits. `context` is the prompt
    /// and generated ids (for the repetition penalty), `generated` the
    /// generated ids alone (for the presence penalty).
    pub fn sample(&mut self, logits: &[f32], context: &[u32], generated: &[u32]) -> u32 {
        let mut logits = logits.to_vec();
        self.apply_penalties(&mut logits, context, generated);

        if self.params.greedy {
            return argmax(&logits);
        }

        // Temperature, top-k, top-p, min-p: the order `transformers` applies them in.
        let temperature = self.params.temperature.max(f32::MIN_POSITIVE);
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, logit)| logit.is_finite())
            .map(|(id, &logit)| (id as u32, logit / temperature))
            .collect();
        if candidates.is_empty() {
            return argmax(&logits);
        }
        // Most likely first; ties keep the lower id first, like a stable sort.
        candidates.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));

        if self.params.top_k > 0 {
            candidates.truncate(self.params.top_k);
        }
        let mut probs = softmax(&candidates);
        if self.params.top_p < 1.0 {
            let keep = top_p_count(&probs, self.params.top_p);
            candidates.truncate(keep);
            probs = softmax(&candidates);
        }
        if self.params.min_p > 0.0 {
            let threshold = self.params.min_p * probs[0];
            let keep = probs.iter().take_while(|&&p| p >= threshold).count().max(1);
            candidates.truncate(keep);
            probs = softmax(&candidates);
        }

        let draw: f32 = self.rng.random();
        let mut cumulative = 0.0;
        for (index, &p) in probs.iter().enumerate() {
            cumulative += p;
            if draw < cumulative {
                return candidates[index].0;
            }
        }
        // Rounding can leave the sum just below `draw`.
        candidates[candidates.len() - 1].0
    }

    fn apply_penalties(&self, logits: &mut [f32], context: &[u32], generated: &[u32]) {
        let penalty = self.params.repetition_penalty;
        if penalty != 1.0 {
            let mut seen = vec![false; logits.len()];
            for &id in context {
                let id = id as usize;
                if id < logits.len() && !seen[id] {
                    seen[id] = true;
                    let logit = logits[id];
                    logits[id] = if logit < 0.0 {
                        logit * penalty
                    } else {
                        logit / penalty
                    };
                }
            }
        }

        let presence = self.params.presence_penalty;
        if presence != 0.0 {
            let mut seen = vec![false; logits.len()];
            for &id in generated {
                let id = id as usize;
                if id < logits.len() && !seen[id] {
                    seen[id] = true;
                    logits[id] -= presence;
                }
            }
        }
    }
}

/// Index of the largest logit, the first one on ties (as `torch.argmax`).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (index, &logit) in logits.iter().enumerate() {
        if logit > logits[best] {
            best = index;
        }
    }
    best as u32
}

/// Probabilities of sorted candidates, computed in f64 and returned as f32.
fn softmax(candidates: &[(u32, f32)]) -> Vec<f32> {
    let max = candidates[0].1 as f64;
    let exps: Vec<f64> = candidates
        .iter()
        .map(|&(_, logit)| (logit as f64 - max).exp())
        .collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

/// Number of most likely tokens kept by top-p: `transformers` removes the
/// least likely tokens while their cumulative probability stays at or below
/// `1 - top_p`, and always keeps one.
fn top_p_count(probs: &[f32], top_p: f32) -> usize {
    let mut removed_mass = 0.0f64;
    let mut removed = 0;
    for &p in probs.iter().rev() {
        removed_mass += p as f64;
        if removed_mass <= (1.0 - top_p) as f64 {
            removed += 1;
        } else {
            break;
        }
    }
    (probs.len() - removed).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SamplingParams {
        SamplingParams {
            greedy: false,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            seed: 7,
        }
    }

    fn draws(params: SamplingParams, logits: &[f32], count: usize) -> Vec<u32> {
        let mut sampler = Sampler::new(params);
        (0..count)
            .map(|_| sampler.sample(logits, &[], &[]))
            .collect()
    }

    #[test]
    fn same_seed_same_tokens() {
        let logits = [0.5, 1.0, 0.2, 0.9, 1.1];
        assert_eq!(draws(params(), &logits, 200), draws(params(), &logits, 200));
    }

    #[test]
    fn different_seed_different_tokens() {
        let logits = [0.5, 1.0, 0.2, 0.9, 1.1];
        let other = SamplingParams {
            seed: 8,
            ..params()
        };
        assert_ne!(draws(params(), &logits, 200), draws(other, &logits, 200));
    }

    #[test]
    fn temperature_distribution_matches_softmax() {
        // 200,000 draws: the standard error of each frequency is below 0.0012,
        // so a tolerance of 0.006 is about five standard errors.
        let logits = [2.0f32, 1.0, 0.5, -1.0, 0.0];
        let temperature = 0.7f32;
        let count = 200_000;
        let sampled = draws(
            SamplingParams {
                temperature,
                ..params()
            },
            &logits,
            count,
        );

        let exps: Vec<f64> = logits
            .iter()
            .map(|&l| ((l / temperature) as f64).exp())
            .collect();
        let sum: f64 = exps.iter().sum();
        for (id, exp) in exps.iter().enumerate() {
            let expected = exp / sum;
            let observed =
                sampled.iter().filter(|&&t| t as usize == id).count() as f64 / count as f64;
            assert!(
                (observed - expected).abs() < 0.006,
                "token {id}: observed {observed}, expected {expected}"
            );
        }
    }

    #[test]
    fn top_k_never_picks_excluded() {
        let logits = [3.0, 2.9, 2.8, 2.7, 2.6, 2.5];
        let sampled = draws(
            SamplingParams {
                top_k: 2,
                ..params()
            },
            &logits,
            5000,
        );
        assert!(
            sampled.iter().all(|&t| t < 2),
            "{:?}",
            sampled.iter().filter(|&&t| t >= 2).count()
        );
        assert!(sampled.contains(&0));
        assert!(sampled.contains(&1));
    }

    #[test]
    fn top_p_never_picks_excluded() {
        // Probabilities 0.50, 0.30, 0.12, 0.08 with top_p 0.7: the two least
        // likely sum to 0.20 <= 1 - 0.7, so only the first two stay.
        let probs = [0.50f64, 0.30, 0.12, 0.08];
        let logits: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
        let sampled = draws(
            SamplingParams {
                top_p: 0.7,
                ..params()
            },
            &logits,
            5000,
        );
        assert!(sampled.iter().all(|&t| t < 2));
        assert!(sampled.contains(&1));
    }

    #[test]
    fn top_p_keeps_token_crossing_threshold() {
        // Cumulative from the least likely: 0.05, 0.20, 0.50. With top_p 0.75,
        // 1 - top_p = 0.25, so tokens 3 and 2 go and token 1 (0.30) stays.
        let probs = [0.50f64, 0.30, 0.15, 0.05];
        let logits: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
        let sampled = draws(
            SamplingParams {
                top_p: 0.75,
                ..params()
            },
            &logits,
            5000,
        );
        assert!(sampled.iter().all(|&t| t < 2));
        assert!(sampled.contains(&1));
    }

    #[test]
    fn min_p_never_picks_excluded() {
        // min_p 0.2 of the top probability 0.5 removes tokens below 0.1.
        let probs = [0.50f64, 0.30, 0.12, 0.08];
        let logits: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
        let sampled = draws(
            SamplingParams {
                min_p: 0.2,
                ..params()
            },
            &logits,
            5000,
        );
        assert!(sampled.iter().all(|&t| t < 3));
        assert!(sampled.contains(&2));
    }

    #[test]
    fn greedy_takes_argmax_after_penalties() {
        let logits = [1.0, 2.0, 1.9];
        let mut sampler = Sampler::new(SamplingParams {
            greedy: true,
            repetition_penalty: 1.2,
            ..params()
        });
        // 2.0 / 1.2 = 1.67 < 1.9, so the penalty moves the choice to token 2.
        assert_eq!(sampler.sample(&logits, &[1], &[]), 2);
        assert_eq!(sampler.sample(&logits, &[], &[]), 1);
    }

    #[test]
    fn repetition_penalty_multiplies_negative_logits() {
        let logits = [-1.0, -1.1];
        let mut sampler = Sampler::new(SamplingParams {
            greedy: true,
            repetition_penalty: 1.2,
            ..params()
        });
        // -1.0 * 1.2 = -1.2 < -1.1.
        assert_eq!(sampler.sample(&logits, &[0], &[]), 1);
    }

    #[test]
    fn presence_penalty_subtracts_once() {
        let logits = [1.0, 0.7];
        let mut sampler = Sampler::new(SamplingParams {
            greedy: true,
            presence_penalty: 0.2,
            ..params()
        });
        // Token 0 appears twice but is penalized once: 0.8 > 0.7.
        assert_eq!(sampler.sample(&logits, &[], &[0, 0]), 0);
        let mut sampler = Sampler::new(SamplingParams {
            greedy: true,
            presence_penalty: 0.4,
            ..params()
        });
        assert_eq!(sampler.sample(&logits, &[], &[0]), 1);
    }

    #[test]
    fn validate_rejects_zero_temperature() {
        let error = SamplingParams {
            temperature: 0.0,
            ..params()
        }
        .validate()
        .expect_err("zero");
        assert!(error.contains("temperature"), "{error}");
    }

    #[test]
    fn validate_rejects_top_p_above_one() {
        let error = SamplingParams {
            top_p: 1.5,
            ..params()
        }
        .validate()
        .expect_err("above one");
        assert!(error.contains("top_p"), "{error}");
    }

    #[test]
    fn argmax_prefers_first_on_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }
}
