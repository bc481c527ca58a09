//! Runs generic model code on the backend a `--device` names.

use qa_model::backend::DeviceSpec;

/// Picks the backend for `device` and calls the matching closure-like macro arm.
/// CPU uses the compiled-in CPU backend; `cuda:N` needs a `--features cuda` build.
#[macro_export]
macro_rules! with_backend {
    ($device:expr, $precision:expr, |$B:ident, $dev:ident| $body:expr) => {{
        let device: qa_model::backend::DeviceSpec = $device;
        device.check_available()?;
        match device {
            qa_model::backend::DeviceSpec::Cpu => {
                // CPU training is f32; TrainSpec validation reports other precisions.
                let _ = $precision;
                type $B = qa_model::backend::CpuBackend;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            qa_model::backend::DeviceSpec::Cuda(n) => {
                let $dev = burn::backend::cuda::CudaDevice::new(n);
                match $precision {
                    spec::Precision::F32 => {
                        type $B = burn::backend::Cuda<f32>;
                        $body
                    }
                    spec::Precision::F16 => {
                        type $B = burn::backend::Cuda<burn::tensor::f16>;
                        $body
                    }
                    spec::Precision::Bf16 => {
                        type $B = burn::backend::Cuda<burn::tensor::bf16>;
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

/// `--device` or the trial's `train.device`; fails at once when this build lacks CUDA.
pub fn parse(s: &str) -> anyhow::Result<DeviceSpec> {
    let device = s.parse::<DeviceSpec>()?;
    device.check_available()?;
    Ok(device)
}
