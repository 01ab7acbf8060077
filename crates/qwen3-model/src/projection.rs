//! Linear layers without bias and the token embedding, on burn tensors or on host weights.

use std::sync::Arc;

use burn::module::Module;
use burn::nn::{Embedding, Linear};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use crate::host::HostMatrix;

/// A linear layer without bias (`nn.Linear(bias=False)` in `transformers`).
///
/// Exactly one of the two fields is set: `linear` on GPU devices, where
/// burn's matmul runs, and `host` on the CPU, where the products of
/// [`HostMatrix`] read 16-bit weights at memory speed.
#[derive(Module, Debug)]
pub struct Projection {
    /// burn's layer, with the weight as `[in_features, out_features]`.
    pub linear: Option<Linear>,
    /// The weight in host memory, as `[out_features, in_features]`.
    #[module(skip)]
    pub host: Option<Arc<HostMatrix>>,
}

impl Projection {
    /// Wraps burn's layer.
    pub fn from_linear(linear: Linear) -> Self {
        Projection {
            linear: Some(linear),
            host: None,
        }
    }

    /// Wraps a weight in host memory.
    pub fn from_host(matrix: HostMatrix) -> Self {
        Projection {
            linear: None,
            host: Some(Arc::new(matrix)),
        }
    }

    /// Applies the layer: `[batch, seq, in]` to `[batch, seq, out]`. Host
    /// weights take and return f32.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match (&self.host, &self.linear) {
            (Some(matrix), _) => {
                let device = x.device();
                let (input, [batch, seq, _]) = to_host(x);
                let output = matrix.matmul(&input, batch * seq);
                from_host(output, [batch, seq, matrix.rows()], &device)
            }
            (None, Some(linear)) => linear.forward(x),
            (None, None) => unreachable!("a projection is built with a weight"),
        }
    }
}

/// The token embedding, `[vocab_size, hidden_size]`, with the same two
/// placements as [`Projection`].
#[derive(Module, Debug)]
pub struct TokenEmbedding {
    /// burn's embedding, on GPU devices.
    pub embedding: Option<Embedding>,
    /// The table in host memory, on the CPU.
    #[module(skip)]
    pub host: Option<Arc<HostMatrix>>,
}

impl TokenEmbedding {
    /// Looks up `ids` (checked to be below `vocab_size`): returns the f32
    /// residual stream `[1, seq, hidden]`.
    pub fn forward(&self, ids: &[u32], device: &Device) -> Tensor<3> {
        let seq = ids.len();
        match (&self.host, &self.embedding) {
            (Some(table), _) => {
                let hidden = table.cols();
                let mut values = vec![0.0f32; seq * hidden];
                for (&id, row) in ids.iter().zip(values.chunks_exact_mut(hidden)) {
                    table.row_into(id as usize, row);
                }
                from_host(values, [1, seq, hidden], device)
            }
            (None, Some(embedding)) => {
                let ids: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
                let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, seq]), device);
                embedding.forward(ids).cast(DType::F32)
            }
            (None, None) => unreachable!("an embedding is built with a table"),
        }
    }
}

/// Copies a tensor to the host as f32: returns its values and dims.
pub(crate) fn to_host<const D: usize>(x: Tensor<D>) -> (Vec<f32>, [usize; D]) {
    let dims = x.dims();
    let values = x
        .cast(DType::F32)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap_or_else(|error| unreachable!("f32 after the cast: {error:?}"));
    (values, dims)
}

/// Makes an f32 tensor of `dims` from host values.
pub(crate) fn from_host<const D: usize>(
    values: Vec<f32>,
    dims: [usize; D],
    device: &Device,
) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, dims), device)
}
