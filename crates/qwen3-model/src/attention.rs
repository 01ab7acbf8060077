//! Grouped-query self-attention with per-head RMSNorm on queries and keys.

use burn::module::Module;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, DType, Device, Tensor, TensorData, activation};

use crate::cache::KvCache;
use crate::host::matmul_many;
use crate::norm::RmsNorm;
use crate::projection::{Projection, from_host, to_host};
use crate::rope::RotaryEmbedding;

/// Self-attention of one decoder layer, with the Hugging Face tensor names.
#[derive(Module, Debug)]
pub struct Attention {
    /// `[hidden_size]` to `[num_attention_heads * head_dim]`.
    pub q_proj: Projection,
    /// `[hidden_size]` to `[num_key_value_heads * head_dim]`.
    pub k_proj: Projection,
    /// `[hidden_size]` to `[num_key_value_heads * head_dim]`.
    pub v_proj: Projection,
    /// `[num_attention_heads * head_dim]` back to `[hidden_size]`.
    pub o_proj: Projection,
    /// RMSNorm over each query head, applied before RoPE.
    pub q_norm: RmsNorm,
    /// RMSNorm over each key head, applied before RoPE.
    pub k_norm: RmsNorm,
    #[module(skip)]
    pub num_attention_heads: usize,
    #[module(skip)]
    pub num_key_value_heads: usize,
    #[module(skip)]
    pub head_dim: usize,
}

impl Attention {
    /// Attends `x` (`[1, seq, hidden]`, tokens at positions `cache.len()..`)
    /// over the cached tokens and itself, and stores its keys and values in
    /// `cache` for `layer`.
    pub fn forward(
        &self,
        x: Tensor<3>,
        rope: &RotaryEmbedding,
        cache: &mut KvCache,
        layer: usize,
    ) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let offset = cache.len();
        let heads = self.num_attention_heads;
        let kv_heads = self.num_key_value_heads;
        let groups = heads / kv_heads;
        let head_dim = self.head_dim;

        // 1. Project and split into heads: [1, heads, seq, head_dim].
        let (q, k, v) = self.project(x);
        let q = q.reshape([batch, seq, heads, head_dim]);
        let k = k.reshape([batch, seq, kv_heads, head_dim]);
        let v = v.reshape([batch, seq, kv_heads, head_dim]);

        // 2. Normalize each head, then rotate by position.
        let q = rope.apply(self.q_norm.forward(q).swap_dims(1, 2), offset);
        let k = rope.apply(self.k_norm.forward(k).swap_dims(1, 2), offset);
        let v = v.swap_dims(1, 2);

        // 3. Store this chunk and read every key and value so far: [1, kv_heads, total, head_dim].
        let (keys, values) = cache.update(layer, k, v);
        let total = offset + seq;

        if runs_on_cubecl(&q.device()) {
            let attended = fused(q, keys, values, groups, offset)
                .swap_dims(1, 2)
                .reshape([batch, seq, heads * head_dim]);
            return self.o_proj.forward(attended);
        }

        // 4. Group query heads by the key/value head they share, so no key or
        //    value is copied: [1, kv_heads, groups * seq, head_dim]. Query head
        //    h uses key/value head h / groups, as `repeat_kv` in transformers.
        let q = q.reshape([batch, kv_heads, groups * seq, head_dim]);

        // 5. Scores in the compute dtype, softmax in f32: [1, kv_heads, groups * seq, total].
        let scale = (head_dim as f64).powf(-0.5);
        let mut scores = q.matmul(keys.swap_dims(2, 3)) * scale;
        if seq > 1 {
            let mask = causal_mask(groups, seq, offset, total, &scores.device());
            scores = scores.mask_fill(mask.unsqueeze::<4>(), f32::NEG_INFINITY);
        }
        let dtype = scores.dtype();
        let weights = activation::softmax(scores.cast(DType::F32), 3).cast(dtype);

        // 6. Mix values, merge heads back: [1, seq, heads * head_dim].
        let attended = weights
            .matmul(values)
            .reshape([batch, heads, seq, head_dim])
            .swap_dims(1, 2)
            .reshape([batch, seq, heads * head_dim]);
        self.o_proj.forward(attended)
    }
}

impl Attention {
    /// Applies `q_proj`, `k_proj` and `v_proj` to `x` (`[batch, seq, hidden]`);
    /// host weights share one copy of `x` and one parallel section.
    fn project(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
        if let (Some(q_proj), Some(k_proj), Some(v_proj)) =
            (&self.q_proj.host, &self.k_proj.host, &self.v_proj.host)
        {
            let device = x.device();
            let (input, [batch, seq, _]) = to_host(x);
            let matrices = [q_proj.as_ref(), k_proj.as_ref(), v_proj.as_ref()];
            let [q, k, v] = matmul_many(matrices, &input, batch * seq);
            let tensor =
                |values: Vec<f32>, rows: usize| from_host(values, [batch, seq, rows], &device);
            return (
                tensor(q, q_proj.rows()),
                tensor(k, k_proj.rows()),
                tensor(v, v_proj.rows()),
            );
        }
        (
            self.q_proj.forward(x.clone()),
            self.k_proj.forward(x.clone()),
            self.v_proj.forward(x),
        )
    }
}

/// Attention through burn's `attention` operation, which CubeCL backends run
/// as a flash kernel (scores and softmax accumulated in f32) when autotune
/// finds it fastest. That kernel needs as many key and value heads as query
/// heads and no explicit scale, so the cached heads are expanded here and the
/// default scale `1/sqrt(head_dim)` is Qwen3's. `q` is `[1, heads, seq,
/// head_dim]`, `keys` and `values` `[1, kv_heads, total, head_dim]`; returns
/// `[1, heads, seq, head_dim]`.
///
/// NOTE: when autotune picks burn's unfused kernels instead, they take the
/// softmax in the compute dtype, f16 included. The f16 tests do not tell
/// which of the two ran.
fn fused(
    q: Tensor<4>,
    keys: Tensor<4>,
    values: Tensor<4>,
    groups: usize,
    offset: usize,
) -> Tensor<4> {
    let [batch, heads, seq, head_dim] = q.dims();
    let total = keys.dims()[2];
    let expand = |t: Tensor<4>| -> Tensor<4> {
        if groups == 1 {
            return t;
        }
        let kv_heads = t.dims()[1];
        // Query head h reads key/value head h / groups, as `repeat_kv`.
        t.unsqueeze_dim::<5>(2)
            .expand([batch, kv_heads, groups, total, head_dim])
            .reshape([batch, heads, total, head_dim])
    };
    let (mask, is_causal) = match (seq, offset) {
        // One new token attends to every cached one.
        (1, _) => (None, false),
        // burn's causal flag aligns the first query with the first key,
        // which holds only when the cache was empty.
        (_, 0) => (None, true),
        _ => {
            let mask = causal_mask(1, seq, offset, total, &q.device());
            (
                Some(mask.unsqueeze::<4>().expand([batch, heads, seq, total])),
                false,
            )
        }
    };
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal,
    };
    attention(q, expand(keys), expand(values), mask, None, options)
}

/// Returns whether `device` belongs to a CubeCL backend (wgpu, Metal, Vulkan, CUDA).
pub(crate) fn runs_on_cubecl(device: &Device) -> bool {
    #[cfg(any(
        feature = "wgpu",
        feature = "metal",
        feature = "vulkan",
        feature = "cuda"
    ))]
    {
        matches!(device.as_dispatch(), burn::backend::DispatchDevice::Cube(_))
    }
    #[cfg(not(any(
        feature = "wgpu",
        feature = "metal",
        feature = "vulkan",
        feature = "cuda"
    )))]
    {
        let _ = device;
        false
    }
}

/// Builds the mask that is `true` where a query may not attend to a key. Row
/// `g * seq + i` is the query at position `offset + i`, which attends to keys
/// `0..=offset + i`. Shape `[groups * seq, total]`.
fn causal_mask(
    groups: usize,
    seq: usize,
    offset: usize,
    total: usize,
    device: &Device,
) -> Tensor<2, Bool> {
    let mut mask = Vec::with_capacity(groups * seq * total);
    for _ in 0..groups {
        for i in 0..seq {
            let visible = offset + i;
            mask.extend((0..total).map(|j| j > visible));
        }
    }
    Tensor::from_data(TensorData::new(mask, [groups * seq, total]), device)
}
