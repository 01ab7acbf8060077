//! The whole network: embedding, decoder layers, final norm and LM head.

use burn::module::Module;
use burn::tensor::{DType, Device, Tensor};

use crate::attention::Attention;
use crate::cache::KvCache;
use crate::config::Qwen3Config;
use crate::error::ModelError;
use crate::mlp::Mlp;
use crate::norm::RmsNorm;
use crate::projection::{Projection, TokenEmbedding, from_host, to_host};
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
    pub embed_tokens: TokenEmbedding,
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
    pub lm_head: Option<Projection>,
    #[module(skip)]
    rope: RotaryEmbedding,
    #[module(skip)]
    config: Qwen3Config,
    #[module(skip)]
    dtype: DType,
    #[module(skip)]
    device: Device,
}

impl Qwen3ForCausalLM {
    /// Assembles the model from its modules, whose weights are in `dtype` on
    /// `device`; RoPE tables are built for `max_position_embeddings` positions.
    pub fn new(
        config: Qwen3Config,
        model: Qwen3Model,
        lm_head: Option<Projection>,
        dtype: DType,
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
            dtype,
            device: device.clone(),
        }
    }

    /// Returns the configuration the model was built from.
    pub fn config(&self) -> &Qwen3Config {
        &self.config
    }

    /// Returns the dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Returns the dtype of activations and of the KV cache: f32 when the
    /// weights are in host memory (the CPU), the weight dtype on GPUs.
    pub fn compute_dtype(&self) -> DType {
        if self.model.embed_tokens.host.is_some() {
            DType::F32
        } else {
            self.dtype
        }
    }

    /// Returns the device the model runs on.
    pub fn device(&self) -> Device {
        self.device.clone()
    }

    /// Allocates a KV cache for `capacity` tokens in the compute dtype, on the model's device.
    pub fn new_cache(&self, capacity: usize) -> Result<KvCache, ModelError> {
        KvCache::new(&self.config, capacity, self.compute_dtype(), &self.device)
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

        // The residual stream stays in f32 whatever the compute dtype: in f16
        // its values can pass the largest finite f16 (65504), and it is only
        // `[seq, hidden]`, small next to the weights.
        let mut x = self.model.embed_tokens.forward(input_ids, &self.device);

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
        if let Some(head) = &self.lm_head {
            return head.forward(x.unsqueeze::<3>()).squeeze_dim(0);
        }
        let embed_tokens = &self.model.embed_tokens;
        match (&embed_tokens.host, &embed_tokens.embedding) {
            (Some(table), _) => {
                let (input, [positions, _]) = to_host(x);
                let logits = table.matmul(&input, positions);
                from_host(logits, [positions, table.rows()], &self.device)
            }
            // Tied head: `embed [vocab, hidden] @ x^T` reads the embedding in
            // its stored row-major layout.
            (None, Some(embedding)) => embedding.weight.val().matmul(x.transpose()).transpose(),
            (None, None) => unreachable!("an embedding is built with a table"),
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
