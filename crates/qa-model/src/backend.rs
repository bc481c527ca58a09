//! Backends compiled in. Devices are `spec::Device` (one grammar for every crate).
//!
//! The CPU backend is burn-flex by default (`ndarray` as an alternative feature; see
//! docs/benchmarks.md for why); CUDA (burn-cuda) behind the `cuda` feature; wgpu (burn-wgpu:
//! the same fusion/CubeCL/autodiff stack as CUDA, with WGSL kernels on Vulkan, Metal or DX12)
//! behind the `wgpu` feature.

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

/// burn's wgpu backend with kernel fusion (`burn::backend::Wgpu`), element type `F`.
#[cfg(feature = "wgpu")]
pub type WgpuBackend<F = f32> = burn::backend::Wgpu<F>;

/// The same wgpu backend without fusion (`SWEEP_WGPU_FUSION=0`). WGSL has no 8-bit type, so
/// booleans are `u32` here (burn-wgpu's own default), not CUDA's `u8`.
#[cfg(feature = "wgpu")]
pub type WgpuUnfused<F = f32> = burn_cubecl::CubeBackend<cubecl::wgpu::WgpuRuntime, F, i32, u32>;

/// Whether CUDA runs use kernel fusion: `SWEEP_CUDA_FUSION=0` (or `off`/`false`) turns it
/// off; on by default.
pub fn cuda_fusion() -> bool {
    fusion_from_env("SWEEP_CUDA_FUSION")
}

/// Whether wgpu runs use kernel fusion: `SWEEP_WGPU_FUSION=0` (or `off`/`false`) turns it
/// off; on by default.
pub fn wgpu_fusion() -> bool {
    fusion_from_env("SWEEP_WGPU_FUSION")
}

/// The backend a device runs on, by name, for logs and results: the CPU backend, or
/// `cuda`/`wgpu` with `-unfused` when fusion is off.
pub fn backend_name(device: spec::Device) -> String {
    let (name, fused) = match device {
        spec::Device::Cpu => return CPU_BACKEND_NAME.to_string(),
        spec::Device::Cuda(_) => ("cuda", cuda_fusion()),
        spec::Device::Wgpu(_) => ("wgpu", wgpu_fusion()),
    };
    if fused {
        name.to_string()
    } else {
        format!("{name}-unfused")
    }
}

fn fusion_from_env(variable: &str) -> bool {
    !matches!(
        std::env::var(variable).as_deref(),
        Ok("0" | "off" | "false")
    )
}

/// The CPU backend's name, for logs and the results database.
pub const CPU_BACKEND_NAME: &str = if cfg!(feature = "flex") {
    "flex"
} else {
    "ndarray"
};

/// The GPUs wgpu sees, in the order `wgpu:N` numbers them.
#[cfg(feature = "wgpu")]
pub mod wgpu_adapters {
    use cubecl::wgpu::{AutoGraphicsApi, GraphicsApi, WgpuDevice};

    /// One adapter: what `sweep devices` prints and what `wgpu:N` opens.
    #[derive(Debug, Clone)]
    pub struct Adapter {
        /// e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "AMD Radeon RX 7900 XTX (RADV NAVI31)".
        pub name: String,
        /// discrete, integrated, virtual, cpu or other.
        pub kind: &'static str,
        /// The driver and its version, as the driver reports them.
        pub driver: String,
        /// Whether shaders can compute in f16 (what f16 mixed precision needs).
        pub shader_f16: bool,
        /// burn's handle for it; `None` for an adapter burn cannot address by kind and index.
        pub device: Option<WgpuDevice>,
    }

    /// Every adapter of the graphics API burn uses on this OS (Vulkan on Linux and Windows,
    /// Metal on macOS), in wgpu's order. burn addresses an adapter by its kind and its index
    /// among adapters of that kind (`WgpuDevice::DiscreteGpu(1)`), counted in the same order.
    pub fn list() -> Vec<Adapter> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: AutoGraphicsApi::backend().into(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapters = cubecl::future::block_on(
            instance.enumerate_adapters(AutoGraphicsApi::backend().into()),
        );
        let mut seen = [0usize; 3];
        let mut cpu_seen = false;
        adapters
            .iter()
            .map(|adapter| {
                let info = adapter.get_info();
                let (kind, device) = match info.device_type {
                    wgpu::DeviceType::DiscreteGpu => {
                        seen[0] += 1;
                        ("discrete", Some(WgpuDevice::DiscreteGpu(seen[0] - 1)))
                    }
                    wgpu::DeviceType::IntegratedGpu => {
                        seen[1] += 1;
                        ("integrated", Some(WgpuDevice::IntegratedGpu(seen[1] - 1)))
                    }
                    wgpu::DeviceType::VirtualGpu => {
                        seen[2] += 1;
                        ("virtual", Some(WgpuDevice::VirtualGpu(seen[2] - 1)))
                    }
                    // burn opens the first CPU adapter only.
                    wgpu::DeviceType::Cpu => {
                        let first = !cpu_seen;
                        cpu_seen = true;
                        ("cpu", first.then_some(WgpuDevice::Cpu))
                    }
                    wgpu::DeviceType::Other => ("other", None),
                };
                Adapter {
                    name: info.name.clone(),
                    kind,
                    driver: format!("{} {}", info.driver, info.driver_info)
                        .trim()
                        .to_string(),
                    shader_f16: adapter.features().contains(wgpu::Features::SHADER_F16),
                    device,
                }
            })
            .collect()
    }

    /// Adapter `n` (`wgpu:n`), or an error that lists what there is.
    pub fn adapter(n: u32) -> Result<Adapter, String> {
        let all = list();
        let listing = || {
            if all.is_empty() {
                "wgpu finds no adapter (is a Vulkan driver installed? on Debian: \
                 mesa-vulkan-drivers for AMD/Intel GPUs or lavapipe on the CPU)"
                    .to_string()
            } else {
                let names: Vec<String> = all
                    .iter()
                    .enumerate()
                    .map(|(i, a)| format!("wgpu:{i} {} ({})", a.name, a.kind))
                    .collect();
                format!("adapters: {}", names.join(", "))
            }
        };
        let Some(adapter) = all.get(n as usize) else {
            return Err(format!("there is no wgpu:{n}; {}", listing()));
        };
        if adapter.device.is_none() {
            return Err(format!(
                "wgpu:{n} ({}, {}) cannot be opened by burn, which addresses adapters by kind \
                 and only the first CPU adapter; {}",
                adapter.name,
                adapter.kind,
                listing()
            ));
        }
        Ok(adapter.clone())
    }
}
