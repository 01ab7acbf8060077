//! RMSNorm as Qwen3 computes it.

use burn::module::{Module, Param};
use burn::tensor::{DType, Tensor};

/// Root-mean-square normalization with a learned scale `weight`.
///
/// The mean of squares and the scaling run in f32 whatever the input dtype,
/// then the result is cast to the dtype of `weight` and multiplied by it, in
/// that order, as `Qwen3RMSNorm` does in `transformers`. In f16 the squares of
/// the residual stream would overflow otherwise. The input may be the f32
/// residual stream; the output is always in the compute dtype.
#[derive(Module, Debug)]
pub struct RmsNorm {
    /// Scale per channel, `[dim]`.
    pub weight: Param<Tensor<1>>,
    /// Added to the mean of squares before the square root.
    #[module(skip)]
    pub eps: f64,
}

impl RmsNorm {
    /// Creates the norm from its weight.
    pub fn new(weight: Tensor<1>, eps: f64) -> Self {
        RmsNorm {
            weight: Param::from_tensor(weight),
            eps,
        }
    }

    /// Normalizes the last dimension: `[..., dim]` to `[..., dim]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let weight = self.weight.val();
        let dtype = weight.dtype();
        let x = x.cast(DType::F32);
        let inverse_rms = (x.clone().square().mean_dim(D - 1) + self.eps)
            .sqrt()
            .recip();
        let normalized = (x * inverse_rms).cast(dtype);
        normalized * weight.unsqueeze()
    }
}
