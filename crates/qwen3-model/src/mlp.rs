//! The SwiGLU feed-forward block.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Tensor, activation};

/// `down_proj(silu(gate_proj(x)) * up_proj(x))`, without biases.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `[hidden_size]` to `[intermediate_size]`, passed through SiLU.
    pub gate_proj: Linear,
    /// `[hidden_size]` to `[intermediate_size]`.
    pub up_proj: Linear,
    /// `[intermediate_size]` back to `[hidden_size]`.
    pub down_proj: Linear,
}

impl Mlp {
    /// Applies the block: `[batch, seq, hidden]` to `[batch, seq, hidden]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = activation::silu(self.gate_proj.forward(x.clone()));
        let up = self.up_proj.forward(x);
        self.down_proj.forward(gate * up)
    }
}
