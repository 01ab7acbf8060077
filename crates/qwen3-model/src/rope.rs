//! Rotary position embedding in the split-half layout of Qwen3.

use burn::tensor::{Device, Tensor, TensorData};

/// Precomputed cosine and sine tables for positions `0..max_positions`.
///
/// Qwen3, like Llama in `transformers`, rotates the first half of each head
/// against the second half (`rotate_half`), not interleaved pairs as burn's
/// `RotaryEncoding` does. The tables are computed in f32 the way
/// `Qwen3RotaryEmbedding` computes them, because 16-bit angles at
/// `rope_theta` 1e6 drift within a few hundred positions.
#[derive(Debug, Clone)]
pub struct RotaryEmbedding {
    /// `cos(position * inv_freq)` repeated over both halves, `[max_positions, head_dim]`, f32.
    cos: Tensor<2>,
    /// `sin(position * inv_freq)` repeated over both halves, `[max_positions, head_dim]`, f32.
    sin: Tensor<2>,
    head_dim: usize,
}

impl RotaryEmbedding {
    /// Builds the tables for `max_positions` positions.
    pub fn new(head_dim: usize, rope_theta: f64, max_positions: usize, device: &Device) -> Self {
        let half = head_dim / 2;
        let base = rope_theta as f32;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / base.powf((2 * i) as f32 / head_dim as f32))
            .collect();

        let mut cos = vec![0.0f32; max_positions * head_dim];
        let mut sin = vec![0.0f32; max_positions * head_dim];
        let rows = cos
            .chunks_exact_mut(head_dim)
            .zip(sin.chunks_exact_mut(head_dim));
        for (position, (cos, sin)) in rows.enumerate() {
            // Both halves of a row hold the same angles, computed once.
            for (i, &freq) in inv_freq.iter().enumerate() {
                let (s, c) = (position as f32 * freq).sin_cos();
                (cos[i], cos[i + half]) = (c, c);
                (sin[i], sin[i + half]) = (s, s);
            }
        }

        RotaryEmbedding {
            cos: Tensor::from_data(TensorData::new(cos, [max_positions, head_dim]), device),
            sin: Tensor::from_data(TensorData::new(sin, [max_positions, head_dim]), device),
            head_dim,
        }
    }

    /// Number of positions the tables cover.
    pub fn max_positions(&self) -> usize {
        self.cos.dims()[0]
    }

    /// Rotates `x` of shape `[batch, heads, seq, head_dim]` whose first token
    /// sits at `offset`.
    pub fn apply(&self, x: Tensor<4>, offset: usize) -> Tensor<4> {
        let [_, _, seq, _] = x.dims();
        let dtype = x.dtype();
        let half = self.head_dim / 2;

        let cos = self
            .cos
            .clone()
            .narrow(0, offset, seq)
            .cast(dtype)
            .unsqueeze::<4>();
        let sin = self
            .sin
            .clone()
            .narrow(0, offset, seq)
            .cast(dtype)
            .unsqueeze::<4>();

        let first = x.clone().narrow(3, 0, half);
        let second = x.clone().narrow(3, half, half);
        let rotated = Tensor::cat(vec![second.neg(), first], 3);

        x * cos + rotated * sin
    }
}
