//! Runs generic model code on the backend a device (`spec::Device`) and precision name.

use spec::{Device, Precision};

/// Picks the backend for `device` and `precision`, and runs the body with `$B` (the
/// backend type) and `$dev` (its device). f32 and mixed precision (f16/bf16) run on an f32
/// backend (the model casts to half inside; see `qa_model::amp`); pure half runs on a
/// bf16 CUDA backend. CUDA uses kernel fusion unless `SWEEP_CUDA_FUSION=0`, wgpu unless
/// `SWEEP_WGPU_FUSION=0`. Every CUDA
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
            #[cfg(feature = "wgpu")]
            spec::Device::Wgpu(n) => {
                let $dev = $crate::commands::device::wgpu_device(n)?;
                if qa_model::backend::wgpu_fusion() {
                    type $B = qa_model::backend::WgpuBackend<f32>;
                    $body
                } else {
                    type $B = qa_model::backend::WgpuUnfused<f32>;
                    $body
                }
            }
            #[cfg(not(feature = "wgpu"))]
            spec::Device::Wgpu(_) => anyhow::bail!("{}", $crate::commands::device::NO_WGPU),
        }
    }};
}

pub const NO_CUDA: &str =
    "this binary was built without CUDA; rebuild with `cargo build --release --features cuda`";

pub const NO_WGPU: &str =
    "this binary was built without wgpu; rebuild with `cargo build --release --features wgpu`";

/// Whether this build can run `precision` on `device`: CUDA or wgpu compiled in, the
/// precision/device rule (`spec::Precision::check_device`), and for f16 on wgpu, an adapter
/// whose shaders compute in f16.
pub fn check(device: Device, precision: Precision) -> anyhow::Result<()> {
    if device.is_cuda() && !cfg!(feature = "cuda") {
        anyhow::bail!("device {device}: {NO_CUDA}");
    }
    if device.is_wgpu() && !cfg!(feature = "wgpu") {
        anyhow::bail!("device {device}: {NO_WGPU}");
    }
    precision.check_device(device).map_err(anyhow::Error::msg)?;
    #[cfg(feature = "wgpu")]
    if let (Device::Wgpu(n), Some(spec::Half::F16)) = (device, precision.autocast()) {
        let adapter = qa_model::backend::wgpu_adapters::adapter(n).map_err(anyhow::Error::msg)?;
        if !adapter.shader_f16 {
            anyhow::bail!(
                "precision f16 needs shader-f16, which {device} ({}) does not have; use f32",
                adapter.name
            );
        }
    }
    Ok(())
}

/// burn's handle for `wgpu:n`, or an error listing the adapters there are.
#[cfg(feature = "wgpu")]
pub fn wgpu_device(n: u32) -> anyhow::Result<burn::backend::wgpu::WgpuDevice> {
    let adapter = qa_model::backend::wgpu_adapters::adapter(n)
        .map_err(|e| anyhow::anyhow!("device wgpu:{n}: {e}"))?;
    // `adapter` refuses adapters burn cannot address, so this is always there.
    adapter
        .device
        .ok_or_else(|| anyhow::anyhow!("device wgpu:{n}: burn cannot open {}", adapter.name))
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

/// `sweep devices`: what `--device`/`--devices` can name on this machine with this build.
#[derive(Debug, clap::Args)]
pub struct DevicesArgs {}

pub fn list(_args: &DevicesArgs) -> anyhow::Result<()> {
    println!("cpu      {}", qa_model::backend::CPU_BACKEND_NAME);
    let cuda = runner::default_devices();
    let cuda: Vec<Device> = cuda.into_iter().filter(|d| d.is_cuda()).collect();
    if cuda.is_empty() {
        println!("cuda     none (nvidia-smi lists no GPU)");
    } else {
        let note = if cfg!(feature = "cuda") {
            ""
        } else {
            "  (this build has no CUDA: `cargo build --release --features cuda`)"
        };
        for d in cuda {
            println!("{d}   nvidia-smi{note}");
        }
    }
    list_wgpu();
    Ok(())
}

#[cfg(feature = "wgpu")]
fn list_wgpu() {
    let adapters = qa_model::backend::wgpu_adapters::list();
    if adapters.is_empty() {
        println!("wgpu     none (no Vulkan/Metal/DX12 adapter; on Debian: mesa-vulkan-drivers)");
    }
    for (n, a) in adapters.iter().enumerate() {
        let f16 = if a.shader_f16 { "f16" } else { "no f16" };
        let usable = if a.device.is_some() {
            ""
        } else {
            "  (burn cannot open it)"
        };
        println!(
            "wgpu:{n}   {} [{}; {}; {f16}]{usable}",
            a.name, a.kind, a.driver
        );
    }
}

#[cfg(not(feature = "wgpu"))]
fn list_wgpu() {
    println!("wgpu     not in this build (`cargo build --release --features wgpu`)");
}
