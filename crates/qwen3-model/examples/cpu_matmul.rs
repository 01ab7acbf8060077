//! Times the matrix products of Qwen3-0.6B's decoding (one token) and of a
//! 32-token prefill on the CPU: burn-flex's matmul in f32, bf16 and f16 against
//! this crate's host kernels in f32, bf16 and f16.
//!
//! `cargo run --release -p qwen3-model --features flex --example cpu_matmul [-- THREADS]`
//!
//! Each product cycles through 28 different matrices (one per layer), so the
//! weights come from memory, not from the caches, as in a forward pass.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};
use qwen3_model::{HostMatrix, SharedBytes};

const LAYERS: usize = 28;

/// Runs `product(layer)` for every layer, 5 times after a warm-up pass, and
/// prints the time per product and the weight bytes read per second.
fn time(label: &str, bytes_per_product: usize, mut product: impl FnMut(usize)) {
    for layer in 0..LAYERS {
        product(layer);
    }
    let passes = 5;
    let start = Instant::now();
    for _ in 0..passes {
        for layer in 0..LAYERS {
            product(layer);
        }
    }
    let seconds = start.elapsed().as_secs_f64() / (passes * LAYERS) as f64;
    println!(
        "{label:44} {:8.3} ms {:7.1} GB/s",
        seconds * 1e3,
        bytes_per_product as f64 / seconds / 1e9
    );
}

fn host_matrices(out_features: usize, in_features: usize, dtype: DType) -> Vec<HostMatrix> {
    (0..LAYERS)
        .map(|layer| {
            let values: Vec<f32> = (0..out_features * in_features)
                .map(|i| ((i * 31 + layer * 7) % 1000) as f32 / 1000.0 - 0.5)
                .collect();
            let data = TensorData::new(values, [out_features, in_features]);
            let bytes = data.as_bytes().to_vec();
            let len = bytes.len();
            let shared =
                SharedBytes::new(Arc::new(bytes), 0..len).expect("range inside the buffer");
            HostMatrix::from_shared(shared, DType::F32, &[out_features, in_features], dtype)
                .expect("valid matrix")
        })
        .collect()
}

fn main() {
    if let Some(threads) = std::env::args().nth(1).and_then(|arg| arg.parse().ok()) {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .expect("thread pool built once");
    }
    println!("threads: {}", rayon::current_num_threads());
    let device = Device::flex();

    for (name, out_features, in_features) in [
        ("gate_proj 1024 -> 3072", 3072, 1024),
        ("down_proj 3072 -> 1024", 1024, 3072),
    ] {
        for tokens in [1, 32] {
            println!("{name}, {tokens} token(s):");
            let input: Vec<f32> = (0..tokens * in_features)
                .map(|i| (i % 17) as f32 / 17.0)
                .collect();

            for dtype in [DType::F32, DType::BF16, DType::F16] {
                let size = dtype.size();
                let weights: Vec<Tensor<2>> = (0..LAYERS)
                    .map(|_| {
                        Tensor::<2>::random(
                            [in_features, out_features],
                            Distribution::Default,
                            (&device, dtype),
                        )
                    })
                    .collect();
                let x = Tensor::<2>::from_data(
                    TensorData::new(input.clone(), [tokens, in_features]),
                    (&device, dtype),
                );
                time(
                    &format!("  burn-flex matmul, {dtype:?}"),
                    out_features * in_features * size,
                    |layer| {
                        let _ = x.clone().matmul(weights[layer].clone()).into_data();
                    },
                );
            }
            for dtype in [DType::F32, DType::BF16, DType::F16] {
                let matrices = host_matrices(out_features, in_features, dtype);
                time(
                    &format!("  HostMatrix::matmul, {dtype:?}"),
                    out_features * in_features * dtype.size(),
                    |layer| {
                        let _ = matrices[layer].matmul(&input, tokens);
                    },
                );
            }
        }
    }
}
