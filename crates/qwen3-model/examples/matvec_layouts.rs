//! Times one-token matrix-vector products in the layouts the model can use,
//! on the ndarray backend: `cargo run --release -p qwen3-model --example matvec_layouts`.

use std::time::Instant;

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::{Device, Distribution, Tensor};

fn time(label: &str, bytes: usize, mut f: impl FnMut()) {
    f();
    let reps = 20;
    let start = Instant::now();
    for _ in 0..reps {
        f();
    }
    let seconds = start.elapsed().as_secs_f64() / reps as f64;
    println!(
        "{label:50} {:8.3} ms  {:6.1} GB/s",
        seconds * 1e3,
        bytes as f64 / seconds / 1e9
    );
}

fn main() {
    #[allow(deprecated)]
    let device = Device::ndarray();
    let (k, n) = (1024, 3072);
    let bytes = k * n * 4;
    let weight = Tensor::<2>::random([k, n], Distribution::Default, &device);
    let weight_out_in = Tensor::<2>::random([n, k], Distribution::Default, &device);
    let linear = Linear {
        weight: Param::from_tensor(weight.clone()),
        bias: None,
    };
    let x3 = Tensor::<3>::random([1, 1, k], Distribution::Default, &device);
    let x2 = Tensor::<2>::random([1, k], Distribution::Default, &device);

    time("Linear::forward [1,1,k] x [k,n]", bytes, || {
        let _ = linear.forward(x3.clone()).into_data();
    });
    time("2-D matmul [1,k] x [k,n]", bytes, || {
        let _ = x2.clone().matmul(weight.clone()).into_data();
    });
    time(
        "2-D matmul [n,k] x [k,1] (weight on the left)",
        bytes,
        || {
            let _ = weight_out_in
                .clone()
                .matmul(x2.clone().transpose())
                .into_data();
        },
    );
    time(
        "2-D matmul [1,k] x [n,k]^T (transposed view)",
        bytes,
        || {
            let _ = x2
                .clone()
                .matmul(weight_out_in.clone().transpose())
                .into_data();
        },
    );
}
