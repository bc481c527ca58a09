//! Runs generic model code on the backend a `--device` names.

use qa_model::backend::DeviceSpec;

/// Picks the backend for `device` and `precision`, and runs the body with `$B` (the
/// backend type) and `$dev` (its device). f32 and mixed precision (f16/bf16) run on an f32
/// backend (the model casts to half inside; see `qa_model::amp`); pure half runs on a
/// half-precision CUDA backend. CUDA uses kernel fusion unless `SWEEP_CUDA_FUSION=0`.
/// The precision/device rule is `spec::Precision::check_device`.
#[macro_export]
macro_rules! with_backend {
    ($device:expr, $precision:expr, |$B:ident, $dev:ident| $body:expr) => {{
        let device: qa_model::backend::DeviceSpec = $device;
        let precision: spec::Precision = $precision;
        device.check_available()?;
        precision
            .check_device(&device.to_string())
            .map_err(anyhow::Error::msg)?;
        match device {
            qa_model::backend::DeviceSpec::Cpu => {
                type $B = qa_model::backend::CpuBackend;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            qa_model::backend::DeviceSpec::Cuda(n) => {
                use burn::tensor::bf16;
                use qa_model::backend::{CudaBackend, CudaUnfused};
                let $dev = burn::backend::cuda::CudaDevice::new(n);
                // Three CUDA backends: every one is the whole model and trainer again, and
                // the binary must stay small enough to carry to a GPU (<= 40 MiB).
                match (precision.pure_half(), qa_model::backend::cuda_fusion()) {
                    (None, true) => {
                        type $B = CudaBackend<f32>;
                        $body
                    }
                    (None, false) => {
                        type $B = CudaUnfused<f32>;
                        $body
                    }
                    // Pure half is bf16 only (`Precision::PureBf16`).
                    (Some(_), _) => {
                        type $B = CudaBackend<bf16>;
                        $body
                    }
                }
            }
            #[cfg(not(feature = "cuda"))]
            qa_model::backend::DeviceSpec::Cuda(_) => {
                unreachable!("check_available rejects CUDA without the feature")
            }
        }
    }};
}

/// [`with_backend!`] for commands that only read models (predict, check-logits): an f32
/// backend (mixed precision casts inside the model); pure half is refused.
#[macro_export]
macro_rules! with_f32_backend {
    ($device:expr, $precision:expr, |$B:ident, $dev:ident| $body:expr) => {{
        let device: qa_model::backend::DeviceSpec = $device;
        let precision: spec::Precision = $precision;
        device.check_available()?;
        if precision.pure_half().is_some() {
            anyhow::bail!(
                "precision {precision} trains in half precision; to read a model use f32, f16 or bf16"
            );
        }
        match device {
            qa_model::backend::DeviceSpec::Cpu => {
                type $B = qa_model::backend::CpuBackend;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            qa_model::backend::DeviceSpec::Cuda(n) => {
                let $dev = burn::backend::cuda::CudaDevice::new(n);
                if qa_model::backend::cuda_fusion() {
                    type $B = qa_model::backend::CudaBackend<f32>;
                    $body
                } else {
                    type $B = qa_model::backend::CudaUnfused<f32>;
                    $body
                }
            }
            #[cfg(not(feature = "cuda"))]
            qa_model::backend::DeviceSpec::Cuda(_) => {
                unreachable!("check_available rejects CUDA without the feature")
            }
        }
    }};
}

/// `--device` or the trial's `train.device`; fails at once when this build lacks CUDA.
pub fn parse(s: &str) -> anyhow::Result<DeviceSpec> {
    let device = s.parse::<DeviceSpec>()?;
    device.check_available()?;
    Ok(device)
}
