//! The SwiGLU feed-forward block.

use burn::module::Module;
use burn::tensor::{Tensor, activation};

use crate::host::matmul_many;
use crate::projection::{Projection, from_host, to_host};

/// `down_proj(silu(gate_proj(x)) * up_proj(x))`, without biases.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `[hidden_size]` to `[intermediate_size]`, passed through SiLU.
    pub gate_proj: Projection,
    /// `[hidden_size]` to `[intermediate_size]`.
    pub up_proj: Projection,
    /// `[intermediate_size]` back to `[hidden_size]`.
    pub down_proj: Projection,
}

impl Mlp {
    /// Applies the block: `[batch, seq, hidden]` to `[batch, seq, hidden]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if let (Some(gate), Some(up), Some(down)) = (
            &self.gate_proj.host,
            &self.up_proj.host,
            &self.down_proj.host,
        ) {
            // On host weights the whole block runs on one copy of `x`, and
            // SiLU and the product need no tensor operations.
            let device = x.device();
            let (input, [batch, seq, _]) = to_host(x);
            let rows = batch * seq;
            let [mut hidden, up] = matmul_many([gate.as_ref(), up.as_ref()], &input, rows);
            for (gate, up) in hidden.iter_mut().zip(&up) {
                *gate = *gate / (1.0 + (-*gate).exp()) * up;
            }
            let output = down.matmul(&hidden, rows);
            return from_host(output, [batch, seq, down.rows()], &device);
        }

        let gate = activation::silu(self.gate_proj.forward(x.clone()));
        let up = self.up_proj.forward(x);
        self.down_proj.forward(gate * up)
    }
}
