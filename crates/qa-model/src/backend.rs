//! Backends compiled in, and `--device` parsing.
//!
//! The CPU backend is burn-flex by default (`ndarray` as an alternative feature; see
//! docs/benchmarks.md for why); CUDA (burn-cuda) behind the `cuda` feature.

use std::fmt;
use std::str::FromStr;

use crate::error::ModelError;

#[cfg(feature = "flex")]
pub type CpuBackend = burn::backend::Flex;
#[cfg(all(feature = "ndarray", not(feature = "flex")))]
pub type CpuBackend = burn::backend::NdArray;
#[cfg(not(any(feature = "flex", feature = "ndarray")))]
compile_error!("qa-model needs a CPU backend: enable the `flex` (default) or `ndarray` feature");

/// burn's CUDA backend with kernel fusion (`burn::backend::Cuda`), element type `F`.
#[cfg(feature = "cuda")]
pub type CudaBackend<F = f32> = burn::backend::Cuda<F>;

/// The same CUDA backend without fusion. burn 0.21's fusion has open wrong-result bugs
/// with narrow layouts (burn #5122: `[b, s, 2]` QA heads); choosing this one at run time
/// (`SWEEP_CUDA_FUSION=0`) turns a suspected fusion bug into a measurement.
#[cfg(feature = "cuda")]
pub type CudaUnfused<F = f32> = burn_cubecl::CubeBackend<cubecl::cuda::CudaRuntime, F, i32, u8>;

/// Whether CUDA runs use kernel fusion: `SWEEP_CUDA_FUSION=0` (or `off`/`false`) turns it
/// off; on by default.
pub fn cuda_fusion() -> bool {
    !matches!(
        std::env::var("SWEEP_CUDA_FUSION").as_deref(),
        Ok("0" | "off" | "false")
    )
}

/// The CPU backend's name, for logs and the results database.
pub const CPU_BACKEND_NAME: &str = if cfg!(feature = "flex") {
    "flex"
} else {
    "ndarray"
};

/// A `--device` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| {
                    ModelError::Invalid(format!(
                        "device {s:?}: expected cpu or cuda:N (e.g. cuda:0)"
                    ))
                }),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceSpec {
    /// Fails early when the binary was built without CUDA.
    pub fn check_available(self) -> Result<(), ModelError> {
        match self {
            Self::Cuda(_) if !cfg!(feature = "cuda") => Err(ModelError::Invalid(format!(
                "device {self}: this binary was built without CUDA; rebuild with `cargo build --release --features cuda`"
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert!("gpu"
            .parse::<DeviceSpec>()
            .unwrap_err()
            .to_string()
            .contains("cpu or cuda:N"));
    }
}
