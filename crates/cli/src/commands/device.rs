//! Runs generic model code on the backend a device (`spec::Device`) and precision name.

use spec::{Device, Precision};

/// Picks the backend for `device` and `precision`, and runs the body with `$B` (the
/// backend type) and `$dev` (its device). f32 and mixed precision (f16/bf16) run on an f32
/// backend (the model casts to half inside; see `qa_model::amp`); pure half runs on a
/// bf16 CUDA backend. CUDA uses kernel fusion unless `SWEEP_CUDA_FUSION=0`. Every CUDA
/// backend is the whole model and trainer again, and the binary must stay small enough to
/// carry to a GPU (<= 40 MiB): three of them.
#[macro_export]
macro_rules! with_backend {
    ($device:expr, $precision:expr, |$B:ident, $dev:ident| $body:expr) => {{
        let (device, precision): (spec::Device, spec::Precision) = ($device, $precision);
        $crate::commands::device::check(device, precision)?;
        match (device, precision.pure_half()) {
            #[cfg(feature = "cuda")]
            (spec::Device::Cuda(n), Some(_)) => {
                type $B = qa_model::backend::CudaBackend<burn::tensor::bf16>;
                let $dev = burn::backend::cuda::CudaDevice::new(n as usize);
                $body
            }
            _ => $crate::with_f32_backend!(@f32 device, |$B, $dev| $body),
        }
    }};
}

/// [`with_backend!`] for commands that only read models (predict, check-logits): an f32
/// backend (mixed precision casts inside the model); pure half is refused.
#[macro_export]
macro_rules! with_f32_backend {
    ($device:expr, $precision:expr, |$B:ident, $dev:ident| $body:expr) => {{
        let (device, precision): (spec::Device, spec::Precision) = ($device, $precision);
        $crate::commands::device::check(device, precision)?;
        if precision.pure_half().is_some() {
            anyhow::bail!(
                "precision {precision} trains in half precision; to read a model use f32, f16 or bf16"
            );
        }
        $crate::with_f32_backend!(@f32 device, |$B, $dev| $body)
    }};
    (@f32 $device:expr, |$B:ident, $dev:ident| $body:expr) => {{
        match $device {
            spec::Device::Cpu => {
                type $B = qa_model::backend::CpuBackend;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            spec::Device::Cuda(n) => {
                let $dev = burn::backend::cuda::CudaDevice::new(n as usize);
                if qa_model::backend::cuda_fusion() {
                    type $B = qa_model::backend::CudaBackend<f32>;
                    $body
                } else {
                    type $B = qa_model::backend::CudaUnfused<f32>;
                    $body
                }
            }
            #[cfg(not(feature = "cuda"))]
            spec::Device::Cuda(_) => anyhow::bail!("{}", $crate::commands::device::NO_CUDA),
        }
    }};
}

pub const NO_CUDA: &str =
    "this binary was built without CUDA; rebuild with `cargo build --release --features cuda`";

/// Whether this build can run `precision` on `device`: CUDA compiled in, and the
/// precision/device rule (`spec::Precision::check_device`).
pub fn check(device: Device, precision: Precision) -> anyhow::Result<()> {
    if device.is_cuda() && !cfg!(feature = "cuda") {
        anyhow::bail!("device {device}: {NO_CUDA}");
    }
    precision.check_device(device).map_err(anyhow::Error::msg)
}

/// The device and precision a trial config runs with: `--device` if given, else its
/// `train.device`; errors name the config file.
pub fn for_trial(
    device_flag: Option<&str>,
    trial: &spec::TrialConfig,
    config_path: &std::path::Path,
) -> anyhow::Result<(Device, Precision)> {
    let device = match device_flag {
        Some(d) => parse(d)?,
        None => trial.train.device,
    };
    let precision = trial.train.effective_precision();
    precision
        .check_device(device)
        .map_err(|e| anyhow::anyhow!("{}: train.precision: {e}", config_path.display()))?;
    Ok((device, precision))
}

/// `--device` or the trial's `train.device`, in the one device grammar (`spec::Device`).
pub fn parse(s: &str) -> anyhow::Result<Device> {
    let device: Device = s.parse().map_err(anyhow::Error::msg)?;
    check(device, Precision::F32)?;
    Ok(device)
}
