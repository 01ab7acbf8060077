//! The whole network: embedding, decoder layers, final norm and LM head.

use burn::module::Module;
use burn::nn::{Embedding, Linear};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use crate::attention::Attention;
use crate::cache::KvCache;
use crate::config::Qwen3Config;
use crate::error::ModelError;
use crate::mlp::Mlp;
use crate::norm::RmsNorm;
use crate::rope::RotaryEmbedding;

/// One decoder layer: pre-norm attention and pre-norm MLP, each with a residual.
#[derive(Module, Debug)]
pub struct DecoderLayer {
    /// Self-attention.
    pub self_attn: Attention,
    /// Feed-forward block.
    pub mlp: Mlp,
    /// Norm before attention.
    pub input_layernorm: RmsNorm,
    /// Norm before the MLP.
    pub post_attention_layernorm: RmsNorm,
}

impl DecoderLayer {
    /// Applies the layer to the residual stream `x`, `[1, seq, hidden]` in
    /// f32; attention and the MLP run in the compute dtype of the weights.
    pub fn forward(
        &self,
        x: Tensor<3>,
        rope: &RotaryEmbedding,
        cache: &mut KvCache,
        layer: usize,
    ) -> Tensor<3> {
        let attended =
            self.self_attn
                .forward(self.input_layernorm.forward(x.clone()), rope, cache, layer);
        let x = x + attended.cast(DType::F32);
        let transformed = self
            .mlp
            .forward(self.post_attention_layernorm.forward(x.clone()));
        x + transformed.cast(DType::F32)
    }
}

/// The decoder stack, `model.*` in the checkpoint.
#[derive(Module, Debug)]
pub struct Qwen3Model {
    /// Token embedding, `[vocab_size, hidden_size]`.
    pub embed_tokens: Embedding,
    /// Decoder layers.
    pub layers: Vec<DecoderLayer>,
    /// Final norm.
    pub norm: RmsNorm,
}

/// Selection of the positions of a forward pass that get logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Only the last position: what generation samples from.
    Last,
    /// Every position of the chunk: what scoring a sequence needs.
    All,
}

/// Output of a forward pass.
#[derive(Debug)]
pub struct ForwardOutput {
    /// Logits, `[positions, vocab_size]`, in the compute dtype.
    pub logits: Tensor<2>,
    /// Hidden state after each decoder layer, `[seq, hidden_size]` each in
    /// f32, when requested.
    pub hidden_states: Option<Vec<Tensor<2>>>,
}

/// Qwen3 for causal language modeling, mirroring `Qwen3ForCausalLM`.
#[derive(Module, Debug)]
pub struct Qwen3ForCausalLM {
    /// The decoder stack.
    pub model: Qwen3Model,
    /// The LM head, `None` when tied to `model.embed_tokens`.
    pub lm_head: Option<Linear>,
    #[module(skip)]
    rope: RotaryEmbedding,
    #[module(skip)]
    config: Qwen3Config,
}

impl Qwen3ForCausalLM {
    /// Assembles the model from its modules; RoPE tables are built for
    /// `max_position_embeddings` positions.
    pub fn new(
        config: Qwen3Config,
        model: Qwen3Model,
        lm_head: Option<Linear>,
        device: &Device,
    ) -> Self {
        let rope = RotaryEmbedding::new(
            config.head_dim,
            config.rope_theta,
            config.max_position_embeddings,
            device,
        );
        Qwen3ForCausalLM {
            model,
            lm_head,
            rope,
            config,
        }
    }

    /// Returns the configuration the model was built from.
    pub fn config(&self) -> &Qwen3Config {
        &self.config
    }

    /// Returns the dtype of the weights, which is also the compute dtype.
    pub fn dtype(&self) -> DType {
        self.model.embed_tokens.weight.val().dtype()
    }

    /// Returns the device the weights are on.
    pub fn device(&self) -> Device {
        self.model.embed_tokens.weight.val().device()
    }

    /// Allocates a KV cache for `capacity` tokens in the model's dtype and device.
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache, ModelError> {
        KvCache::new(&self.config, capacity, self.dtype(), &self.device())
    }

    /// Runs `input_ids` (one chunk of one sequence, placed after the tokens
    /// already in `cache`) through the model and appends them to the cache.
    pub fn forward(
        &self,
        input_ids: &[u32],
        cache: &mut KvCache,
        logits: Logits,
    ) -> Result<Tensor<2>, ModelError> {
        Ok(self
            .forward_detailed(input_ids, cache, logits, false)?
            .logits)
    }

    /// As [`forward`](Self::forward), optionally keeping the hidden state
    /// after every layer (for parity tests and inspection).
    pub fn forward_detailed(
        &self,
        input_ids: &[u32],
        cache: &mut KvCache,
        logits: Logits,
        keep_hidden_states: bool,
    ) -> Result<ForwardOutput, ModelError> {
        self.check_input(input_ids, cache)?;
        let seq = input_ids.len();
        let device = self.device();

        let ids: Vec<i64> = input_ids.iter().map(|&id| i64::from(id)).collect();
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, seq]), &device);
        // The residual stream stays in f32 whatever the compute dtype: in f16
        // its values can pass the largest finite f16 (65504), and it is only
        // `[seq, hidden]`, small next to the weights.
        let mut x = self.model.embed_tokens.forward(ids).cast(DType::F32);

        let mut hidden_states = keep_hidden_states.then(Vec::new);
        for (index, layer) in self.model.layers.iter().enumerate() {
            x = layer.forward(x, &self.rope, cache, index);
            if let Some(states) = &mut hidden_states {
                states.push(x.clone().reshape([seq, self.config.hidden_size]));
            }
        }
        cache.advance(seq);

        // The LM head runs only on the positions whose logits are returned.
        let x = match logits {
            Logits::Last if seq > 1 => x.narrow(1, seq - 1, 1),
            _ => x,
        };
        let positions = x.dims()[1];
        let x = self
            .model
            .norm
            .forward(x)
            .reshape([positions, self.config.hidden_size]);
        Ok(ForwardOutput {
            logits: self.lm_head(x),
            hidden_states,
        })
    }

    /// `[positions, hidden]` to `[positions, vocab_size]`.
    fn lm_head(&self, x: Tensor<2>) -> Tensor<2> {
        match &self.lm_head {
            Some(head) => head.forward(x),
            // Tied head: `embed [vocab, hidden] @ x^T` reads the embedding in its
            // stored row-major layout; `x @ embed^T` would copy it on ndarray.
            None => self
                .model
                .embed_tokens
                .weight
                .val()
                .matmul(x.transpose())
                .transpose(),
        }
    }

    fn check_input(&self, input_ids: &[u32], cache: &KvCache) -> Result<(), ModelError> {
        if input_ids.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        if cache.num_layers() != self.config.num_hidden_layers {
            return Err(ModelError::CacheMismatch {
                cache_layers: cache.num_layers(),
                model_layers: self.config.num_hidden_layers,
            });
        }
        if cache.len() + input_ids.len() > cache.capacity() {
            return Err(ModelError::ContextFull {
                position: cache.len(),
                requested: input_ids.len(),
                capacity: cache.capacity(),
                max_positions: self.config.max_position_embeddings,
            });
        }
        let vocab_size = self.config.vocab_size;
        if let Some((index, &id)) = input_ids
            .iter()
            .enumerate()
            .find(|&(_, &id)| id as usize >= vocab_size)
        {
            return Err(ModelError::TokenOutOfRange {
                id,
                index,
                vocab_size,
            });
        }
        Ok(())
    }
}
