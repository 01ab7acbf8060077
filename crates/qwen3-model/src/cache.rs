//! The key/value cache, preallocated and written in place.

use burn::tensor::{DType, Device, Tensor};

use crate::config::Qwen3Config;
use crate::error::ModelError;

/// Keys and values of one layer, `[1, num_key_value_heads, capacity, head_dim]` each.
#[derive(Debug)]
pub(crate) struct LayerCache {
    // `Option` so the tensors can be moved out and back: `slice_assign`
    // writes in place only when it owns the sole handle.
    keys: Option<Tensor<4>>,
    values: Option<Tensor<4>>,
}

/// The KV cache of every layer for one sequence.
///
/// It is allocated once for `capacity` tokens. Each forward pass writes the
/// new keys and values at the current position without copying the rest, and
/// attention reads the filled prefix. A pass that would exceed the capacity
/// fails with [`ModelError::ContextFull`]; positions are never shifted.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<LayerCache>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    /// Allocates a cache for `capacity` tokens (at most `max_position_embeddings`),
    /// in `dtype` on `device`.
    pub fn new(
        config: &Qwen3Config,
        capacity: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Self, ModelError> {
        if capacity > config.max_position_embeddings {
            return Err(ModelError::CacheTooLarge {
                requested: capacity,
                max_positions: config.max_position_embeddings,
            });
        }
        let shape = [1, config.num_key_value_heads, capacity, config.head_dim];
        let layers = (0..config.num_hidden_layers)
            .map(|_| LayerCache {
                keys: Some(Tensor::zeros(shape, (device, dtype))),
                values: Some(Tensor::zeros(shape, (device, dtype))),
            })
            .collect();
        Ok(KvCache {
            layers,
            len: 0,
            capacity,
        })
    }

    /// Returns the number of tokens stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns whether no token is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns the number of tokens the cache has room for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every token (the memory is kept and overwritten later).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Drops the tokens after the first `len` ones, such as a rejected continuation.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub(crate) fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Marks `count` more tokens as stored once every layer has written them.
    pub(crate) fn advance(&mut self, count: usize) {
        self.len += count;
    }

    /// Writes keys and values `[1, kv_heads, seq, head_dim]` of `layer` at
    /// the current position and returns the filled prefix, `[1, kv_heads, len + seq, head_dim]`.
    pub(crate) fn update(
        &mut self,
        layer: usize,
        keys: Tensor<4>,
        values: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let [_, heads, seq, head_dim] = keys.dims();
        let start = self.len;
        let end = start + seq;
        let ranges = [0..1, 0..heads, start..end, 0..head_dim];
        let filled = [0..1, 0..heads, 0..end, 0..head_dim];

        let cache = &mut self.layers[layer];
        let stored_keys = take(&mut cache.keys).slice_assign(ranges.clone(), keys);
        let stored_values = take(&mut cache.values).slice_assign(ranges, values);

        let prefix = (
            stored_keys.clone().slice(filled.clone()),
            stored_values.clone().slice(filled),
        );
        cache.keys = Some(stored_keys);
        cache.values = Some(stored_values);
        prefix
    }
}

fn take(slot: &mut Option<Tensor<4>>) -> Tensor<4> {
    // The slot is refilled before `update` returns, so it is never empty here.
    slot.take()
        .unwrap_or_else(|| unreachable!("KV cache slot emptied by an earlier panic"))
}
