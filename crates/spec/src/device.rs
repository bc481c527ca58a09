//! Where a trial runs: the one device grammar every crate uses (`train.device`, `--device`,
//! `--devices`, the runner's slots). `cpu`, `cuda` (= `cuda:0`), `cuda:N`, `wgpu` (= `wgpu:0`)
//! or `wgpu:N`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A device a trial can run on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Device {
    #[default]
    Cpu,
    /// A CUDA device by ordinal, as the process sees them (after `CUDA_VISIBLE_DEVICES`).
    Cuda(u32),
    /// A GPU through wgpu (Vulkan, Metal or DX12; burn's JIT backend with WGSL kernels): the
    /// N-th adapter in the order `sweep devices` lists them (the same order wgpu enumerates
    /// them; lavapipe's CPU adapter counts as one).
    Wgpu(u32),
}

/// The grammar, for error messages.
pub const DEVICE_GRAMMAR: &str =
    "cpu, cuda, cuda:N, wgpu or wgpu:N (N a device number, e.g. cuda:0 or wgpu:1)";

impl Device {
    pub fn is_cuda(self) -> bool {
        matches!(self, Device::Cuda(_))
    }

    pub fn is_wgpu(self) -> bool {
        matches!(self, Device::Wgpu(_))
    }

    /// How a trial process started on this device addresses it: the runner limits a child
    /// to its GPU with `CUDA_VISIBLE_DEVICES`, so inside, that GPU is `cuda:0`. wgpu has
    /// no such variable that every driver honours, so a wgpu child keeps its number.
    pub fn inside_child(self) -> Device {
        match self {
            Device::Cpu | Device::Wgpu(_) => self,
            Device::Cuda(_) => Device::Cuda(0),
        }
    }

    /// The `CUDA_VISIBLE_DEVICES` value for a child on this device (empty for the CPU and
    /// wgpu, so such a trial sees no CUDA GPU).
    pub fn cuda_visible_devices(self) -> String {
        match self {
            Device::Cpu | Device::Wgpu(_) => String::new(),
            Device::Cuda(n) => n.to_string(),
        }
    }

    /// A comma-separated list (`--devices cuda:0,cuda:1`): each once, at least one.
    pub fn parse_list(text: &str) -> Result<Vec<Device>, String> {
        let mut out: Vec<Device> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let device: Device = item.parse()?;
            if out.contains(&device) {
                return Err(format!(
                    "{device} is listed twice; use --per-device for several trials per device"
                ));
            }
            out.push(device);
        }
        if out.is_empty() {
            return Err(format!("no device given; expected {DEVICE_GRAMMAR}"));
        }
        Ok(out)
    }
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a device; expected {DEVICE_GRAMMAR}");
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            "wgpu" => Ok(Device::Wgpu(0)),
            _ => {
                let (kind, n): (fn(u32) -> Device, &str) = if let Some(n) = s.strip_prefix("cuda:")
                {
                    (Device::Cuda, n)
                } else if let Some(n) = s.strip_prefix("wgpu:") {
                    (Device::Wgpu, n)
                } else {
                    return Err(bad());
                };
                if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
                    return Err(bad());
                }
                n.parse().map(kind).map_err(|_| bad())
            }
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
            Device::Wgpu(n) => write!(f, "wgpu:{n}"),
        }
    }
}

impl TryFrom<String> for Device {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Device> for String {
    fn from(d: Device) -> String {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grammar() {
        assert_eq!("cpu".parse::<Device>(), Ok(Device::Cpu));
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse::<Device>(), Ok(Device::Cuda(3)));
        for bad in [
            "gpu0", "cuda:", "cuda:x", "cuda:+1", "cuda:-1", "CPU", "cudax", "", "wgpu:", "wgpu:a",
            "vulkan",
        ] {
            let e = bad.parse::<Device>().unwrap_err();
            assert!(e.contains("expected cpu, cuda"), "{bad}: {e}");
        }
        assert_eq!("wgpu".parse::<Device>(), Ok(Device::Wgpu(0)));
        assert_eq!("wgpu:2".parse::<Device>(), Ok(Device::Wgpu(2)));
        assert_eq!(Device::Wgpu(2).inside_child(), Device::Wgpu(2));
        assert_eq!(Device::Wgpu(2).cuda_visible_devices(), "");
        for d in [
            Device::Cpu,
            Device::Cuda(0),
            Device::Cuda(7),
            Device::Wgpu(1),
        ] {
            assert_eq!(d.to_string().parse::<Device>(), Ok(d));
        }
        assert_eq!(Device::Cuda(3).inside_child(), Device::Cuda(0));
        assert_eq!(Device::Cuda(3).cuda_visible_devices(), "3");
        assert_eq!(Device::Cpu.cuda_visible_devices(), "");
    }

    #[test]
    fn lists_name_what_is_wrong() {
        assert_eq!(
            Device::parse_list("cuda:0, cuda:1"),
            Ok(vec![Device::Cuda(0), Device::Cuda(1)])
        );
        assert!(Device::parse_list("gpu0").unwrap_err().contains("gpu0"));
        assert!(Device::parse_list("cpu,cpu").unwrap_err().contains("twice"));
        assert!(Device::parse_list("cuda,cuda:0")
            .unwrap_err()
            .contains("twice"));
        assert!(Device::parse_list(" , ").is_err());
    }

    #[test]
    fn serde_is_the_text_form() {
        let d: Device = serde_yaml::from_str("cuda:2").unwrap();
        assert_eq!(d, Device::Cuda(2));
        assert_eq!(serde_yaml::to_string(&d).unwrap().trim(), "cuda:2");
        let e = serde_yaml::from_str::<Device>("gpu")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected cpu, cuda"), "{e}");
    }
}
