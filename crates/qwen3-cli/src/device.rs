//! `--device` and `--dtype`: which burn backend and precision run the model.

use anyhow::{Result, bail};
use clap::ValueEnum;
use qwen3_model::burn::tensor::{DType, Device};
use qwen3_model::supports_weight_dtype;

/// Backends the binary can be built with; `--device` accepts those compiled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceName {
    /// burn-ndarray on the CPU (cargo feature `ndarray`, on by default).
    Ndarray,
    /// burn-flex on the CPU (cargo feature `flex`, on by default).
    Flex,
    /// Any GPU through wgpu with WGSL shaders: Vulkan, Metal or DirectX 12,
    /// whichever the machine has (cargo feature `wgpu`).
    Wgpu,
    /// An Apple GPU through Metal with native MSL shaders (cargo feature `metal`).
    Metal,
    /// A GPU through Vulkan with SPIR-V shaders (cargo feature `vulkan`).
    Vulkan,
    /// An NVIDIA GPU through CUDA (cargo feature `cuda`).
    Cuda,
}

impl DeviceName {
    /// Returns whether the device is a GPU (run through CubeCL).
    pub fn is_gpu(self) -> bool {
        !matches!(self, DeviceName::Ndarray | DeviceName::Flex)
    }
}

/// Weight and activation precision on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DTypeName {
    /// 32-bit float: supported everywhere, twice the memory of the 16-bit checkpoints.
    F32,
    /// 16-bit IEEE float weights (on the CPU, activations stay f32).
    F16,
    /// bfloat16, the dtype Qwen3 is published in. On the CPU it sets the
    /// weights, with f32 activations. On a GPU it needs bf16 arithmetic (Metal, CUDA).
    Bf16,
}

impl DTypeName {
    /// Returns the burn dtype.
    pub fn dtype(self) -> DType {
        match self {
            DTypeName::F32 => DType::F32,
            DTypeName::F16 => DType::F16,
            DTypeName::Bf16 => DType::BF16,
        }
    }
}

/// Returns the device for `--device`, or an error naming the cargo feature to enable.
pub fn select_device(name: DeviceName) -> Result<Device> {
    match name {
        DeviceName::Ndarray => ndarray_device(),
        DeviceName::Flex => flex_device(),
        DeviceName::Wgpu => wgpu_device(),
        DeviceName::Metal => metal_device(),
        DeviceName::Vulkan => vulkan_device(),
        DeviceName::Cuda => cuda_device(),
    }
}

/// Returns the dtype used when `--dtype` is absent. On the CPU that is the
/// dtype of the checkpoint (`stored`, f32 when unknown), so its weights are
/// used in place without a converted copy. On a GPU it is bf16 where the
/// device has bf16 arithmetic, else f16, else f32.
pub fn default_dtype(device: &Device, name: DeviceName, stored: Option<DType>) -> DTypeName {
    if !name.is_gpu() {
        match stored {
            Some(DType::BF16) => DTypeName::Bf16,
            Some(DType::F16) => DTypeName::F16,
            _ => DTypeName::F32,
        }
    } else if device.supports_dtype(DType::BF16) {
        DTypeName::Bf16
    } else if device.supports_dtype(DType::F16) {
        DTypeName::F16
    } else {
        DTypeName::F32
    }
}

/// Returns the device used when `--device` is absent: flex when compiled in
/// (3.5 times ndarray's decode speed on Qwen3-0.6B in f32, docs/benchmarks.md),
/// otherwise ndarray.
pub fn default_device_name() -> DeviceName {
    if cfg!(feature = "flex") {
        DeviceName::Flex
    } else {
        DeviceName::Ndarray
    }
}

#[cfg(feature = "ndarray")]
fn ndarray_device() -> Result<Device> {
    // burn 0.22 deprecates ndarray in favour of flex; it remains the default
    // backend until measurements choose one.
    #[allow(deprecated)]
    Ok(Device::ndarray())
}

#[cfg(not(feature = "ndarray"))]
fn ndarray_device() -> Result<Device> {
    bail!("--device ndarray is not compiled into this binary; rebuild with `--features ndarray`")
}

#[cfg(feature = "flex")]
fn flex_device() -> Result<Device> {
    Ok(Device::flex())
}

#[cfg(not(feature = "flex"))]
fn flex_device() -> Result<Device> {
    bail!("--device flex is not compiled into this binary; rebuild with `--features flex`")
}

/// Acquires a wgpu adapter on `api`, failing with the reason when the machine
/// has none instead of panicking at the first tensor.
#[cfg(feature = "wgpu")]
fn wgpu_on(api: qwen3_model::burn::tensor::wgpu::WgpuBackend, name: DeviceName) -> Result<Device> {
    Device::wgpu_options()
        .graphics_api(api)
        .init()
        .map_err(|e| {
            anyhow::anyhow!(
                "--device {}: no usable GPU adapter ({e}). Install the GPU's Vulkan or Metal driver; \
                 on a machine without a GPU, Mesa's software Vulkan (Debian package mesa-vulkan-drivers) \
                 works, slowly. Or use --device flex",
                flag_value(name)
            )
        })
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    use qwen3_model::burn::tensor::wgpu::WgpuBackend;
    wgpu_on(WgpuBackend::Auto, DeviceName::Wgpu)
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device> {
    bail!("--device wgpu is not compiled into this binary; rebuild with `--features wgpu`")
}

#[cfg(feature = "metal")]
fn metal_device() -> Result<Device> {
    use qwen3_model::burn::tensor::wgpu::WgpuBackend;
    wgpu_on(WgpuBackend::Metal, DeviceName::Metal)
}

#[cfg(not(feature = "metal"))]
fn metal_device() -> Result<Device> {
    bail!("--device metal is not compiled into this binary; rebuild with `--features metal`")
}

#[cfg(feature = "vulkan")]
fn vulkan_device() -> Result<Device> {
    use qwen3_model::burn::tensor::wgpu::WgpuBackend;
    wgpu_on(WgpuBackend::Vulkan, DeviceName::Vulkan)
}

#[cfg(not(feature = "vulkan"))]
fn vulkan_device() -> Result<Device> {
    bail!("--device vulkan is not compiled into this binary; rebuild with `--features vulkan`")
}

/// Returns the first CUDA GPU. burn connects lazily and panics when there is
/// none, so a one-element tensor is read back here, where the panic can become
/// an error.
///
/// NOTE: never compiled by this project's CI: cubecl's CUDA runtime downloads
/// an LLVM bundle while building, and the CI machines reach only package
/// registries.
#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device> {
    use qwen3_model::burn::tensor::Tensor;
    let probe = std::panic::catch_unwind(|| {
        let device = Device::cuda(0);
        let _ = Tensor::<1>::zeros([1], &device).into_data();
        device
    });
    probe.map_err(|_| {
        anyhow::anyhow!(
            "--device cuda: no usable CUDA GPU (is the NVIDIA driver installed?); use --device flex"
        )
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda_device() -> Result<Device> {
    bail!("--device cuda is not compiled into this binary; rebuild with `--features cuda`")
}

/// Opens the device of `--device` (or the default one) and settles the dtype
/// of `--dtype` (or the device's default for a checkpoint stored in `stored`) on it.
pub fn open(
    device: Option<DeviceName>,
    dtype: Option<DTypeName>,
    stored: Option<DType>,
) -> Result<(Device, DType)> {
    let name = device.unwrap_or_else(default_device_name);
    let device = select_device(name)?;
    let dtype = resolve_dtype(&device, name, dtype, stored)?;
    tracing::debug!(
        device = %flag_value(name),
        dtype = %flag_value(dtype),
        "device opened"
    );
    Ok((device, dtype.dtype()))
}

/// Returns `--dtype`, or the device's default when it is absent, after
/// checking that `device` runs it.
pub fn resolve_dtype(
    device: &Device,
    name: DeviceName,
    dtype: Option<DTypeName>,
    stored: Option<DType>,
) -> Result<DTypeName> {
    let dtype = dtype.unwrap_or_else(|| default_dtype(device, name, stored));
    if !supports_weight_dtype(device, dtype.dtype()) {
        let supported: Vec<String> = [DTypeName::F32, DTypeName::F16, DTypeName::Bf16]
            .into_iter()
            .filter(|d| supports_weight_dtype(device, d.dtype()))
            .map(flag_value)
            .collect();
        bail!(
            "--dtype {} is not supported on --device {}; use one of: {}",
            flag_value(dtype),
            flag_value(name),
            supported.join(", "),
        );
    }
    Ok(dtype)
}

/// Sizes rayon's global thread pool to `--threads`. The pool runs the CPU
/// matrix products and burn's CPU backends. Without the flag, rayon takes
/// `RAYON_NUM_THREADS` or one thread per core.
pub fn set_threads(threads: Option<u16>) -> Result<()> {
    if let Some(threads) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(usize::from(threads))
            .build_global()
            .map_err(|error| anyhow::anyhow!("--threads {threads}: {error}"))?;
    }
    Ok(())
}

/// Returns the `--dtype` spelling of a burn dtype.
pub fn dtype_flag_value(dtype: DType) -> String {
    match dtype {
        DType::F32 => flag_value(DTypeName::F32),
        DType::F16 => flag_value(DTypeName::F16),
        DType::BF16 => flag_value(DTypeName::Bf16),
        other => format!("{other:?}"),
    }
}

/// Returns a `--device` or `--dtype` value as the command line spells it.
pub fn flag_value(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}
