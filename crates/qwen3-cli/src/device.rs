//! `--device` and `--dtype`: which burn backend and precision run the model.

use anyhow::{Result, bail};
use clap::ValueEnum;
use qwen3_model::burn::tensor::{DType, Device};

/// Backends the binary can be built with; `--device` accepts those compiled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceName {
    /// burn-ndarray on the CPU (cargo feature `ndarray`, on by default).
    Ndarray,
    /// burn-flex on the CPU (cargo feature `flex`, on by default).
    Flex,
}

/// Weight and activation precision on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DTypeName {
    /// 32-bit float: supported everywhere, twice the memory of the 16-bit checkpoints.
    F32,
    /// 16-bit IEEE float (flex only on the CPU).
    F16,
    /// bfloat16, the dtype Qwen3 is published in (flex only on the CPU).
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

/// Checks that `device` runs `dtype`.
pub fn check_dtype(device: &Device, name: DeviceName, dtype: DTypeName) -> Result<()> {
    if !device.supports_dtype(dtype.dtype()) {
        bail!(
            "--dtype {} is not supported on --device {}; use --dtype f32",
            dtype
                .to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default(),
            name.to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default(),
        );
    }
    Ok(())
}
