//! Where tensor work runs: `Cpu` (burn-flex), `Cuda(n)` (burn-cuda, in builds with the
//! `cuda` feature), or `Auto`: the GPU of the stage's slot when the run has GPUs, else
//! the CPU (and, outside a run's slots, CUDA device 0 when one answers). One code
//! path: work is written once, generic over the backend, and dispatched here.

use crate::Kernels;
use explain::Explain;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, Explain)]
pub enum Device {
    /// A GPU of the run when it has one, else the CPU.
    #[default]
    Auto,
    /// The CPU, even when the run has GPUs.
    Cpu,
    /// CUDA device n: the run must have it.
    Cuda(usize),
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("CUDA device {0} does not answer (no driver or no such device)")]
    NoAnswer(usize),
    #[error("this build of pipe has no CUDA support; build it with `--features cuda`")]
    NoCuda,
}

/// Work to run on whichever backend the device resolves to.
pub trait OnBackend {
    type Output;
    fn run<B: Kernels>(self, device: B::Device) -> Self::Output;
}

/// Work spread over several devices of one backend (data-parallel training): one device
/// per shard, the same device more than once where shards share it.
pub trait OnDevices {
    type Output;
    fn run<B: Kernels>(self, devices: Vec<B::Device>) -> Self::Output;
}

/// A single-device task as a task on the first of its devices.
struct First<T>(T);

impl<T: OnBackend> OnDevices for First<T> {
    type Output = T::Output;
    fn run<B: Kernels>(self, mut devices: Vec<B::Device>) -> T::Output {
        self.0.run::<B>(devices.swap_remove(0))
    }
}

impl Device {
    /// The device to use given the GPU ids the run gave the stage: a GPU stage runs on
    /// its slot's GPU; `Auto` without one runs on the CPU.
    pub fn in_slot(self, gpus: &[u32]) -> Device {
        match (self, gpus.first()) {
            (Device::Cuda(_) | Device::Auto, Some(&id)) => Device::Cuda(id as usize),
            (Device::Auto, None) => Device::Cpu,
            (device, None) => device,
            (Device::Cpu, Some(_)) => Device::Cpu,
        }
    }

    /// How many GPUs this build can use here: none without the `cuda` feature, else the
    /// CUDA devices that answer, counted from 0.
    pub fn visible_gpus() -> usize {
        (0..64).take_while(|&i| cuda_answers(i)).count()
    }

    /// Runs `task` on this device; also says, in words, which device it used.
    pub fn run<T: OnBackend>(self, task: T) -> Result<(T::Output, String), DeviceError> {
        self.run_shards(&[], 1, First(task))
    }

    /// Runs `task` on `shards` devices: on a GPU device, the GPUs the run gave the
    /// stage (`gpus`, else this one) in turn, shards sharing a GPU when there are fewer
    /// GPUs than shards; on the CPU, the CPU `shards` times. Says, in words, which
    /// devices it used. (Place the device in the stage's slot first: [`Device::in_slot`].)
    #[cfg_attr(not(feature = "cuda"), allow(unused_variables))]
    pub fn run_shards<T: OnDevices>(
        self,
        gpus: &[u32],
        shards: usize,
        task: T,
    ) -> Result<(T::Output, String), DeviceError> {
        let shards = shards.max(1);
        let split = if shards > 1 {
            format!(", {shards} shards")
        } else {
            String::new()
        };
        match self.resolve()? {
            Device::Cpu | Device::Auto => Ok((
                task.run::<burn::backend::Flex>(vec![Default::default(); shards]),
                format!("cpu (burn-flex){split}"),
            )),
            #[cfg(feature = "cuda")]
            Device::Cuda(first) => {
                let ids: Vec<usize> = match gpus {
                    [] => vec![first],
                    ids => ids.iter().map(|&i| i as usize).collect(),
                };
                if let Some(&silent) = ids.iter().find(|&&i| !cuda_answers(i)) {
                    return Err(DeviceError::NoAnswer(silent));
                }
                let devices = (0..shards)
                    .map(|k| burn::backend::cuda::CudaDevice::new(ids[k % ids.len()]))
                    .collect();
                let names: Vec<String> = ids.iter().map(usize::to_string).collect();
                Ok((
                    task.run::<burn::backend::Cuda>(devices),
                    format!("cuda:{} (burn-cuda){split}", names.join(",")),
                ))
            }
            #[cfg(not(feature = "cuda"))]
            Device::Cuda(_) => unreachable!("resolve refuses CUDA without the feature"),
        }
    }

    fn resolve(self) -> Result<Device, DeviceError> {
        match self {
            Device::Cpu => Ok(Device::Cpu),
            Device::Cuda(index) if cuda_answers(index) => Ok(Device::Cuda(index)),
            Device::Cuda(index) if cfg!(feature = "cuda") => Err(DeviceError::NoAnswer(index)),
            Device::Cuda(_) => Err(DeviceError::NoCuda),
            Device::Auto if cuda_answers(0) => Ok(Device::Cuda(0)),
            Device::Auto => Ok(Device::Cpu),
        }
    }
}

/// Keeps CubeCL's autotune results in `dir` (the store's `autotune/`, not a stage's
/// output), so that every stage and every rerun reuses the tuning instead of measuring
/// again. Once per process, before the first CUDA kernel; a cache place the user set in
/// `cubecl.toml` or `burn.toml` stays theirs.
#[cfg(feature = "cuda")]
pub fn keep_autotune_cache_in(dir: &std::path::Path) {
    use cubecl_runtime::config::cache::CacheConfig;
    use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if matches!(config.autotune.cache, CacheConfig::Target) {
            config.autotune.cache = CacheConfig::File(dir.to_path_buf());
        }
        CubeClRuntimeConfig::set(config);
    });
}

/// Has CubeCL log every kernel it launches, one `Executing <kernel>` line each, to
/// `file` (benchmarks count them). Once per process, before the first GPU kernel.
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub fn log_kernel_launches(file: &std::path::Path) {
    use cubecl_runtime::config::profiling::ProfilingLogLevel;
    use cubecl_runtime::config::{CubeClRuntimeConfig, RuntimeConfig};
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    config.profiling.logger.level = ProfilingLogLevel::Minimal;
    config.profiling.logger.file = Some(file.to_path_buf());
    config.profiling.logger.append = false;
    CubeClRuntimeConfig::set(config);
}

#[cfg(feature = "cuda")]
fn cuda_answers(index: usize) -> bool {
    use burn::prelude::Tensor;
    // Creating a device without a driver panics inside the runtime: probe quietly.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let answered = std::panic::catch_unwind(|| {
        let device = burn::backend::cuda::CudaDevice::new(index);
        Tensor::<burn::backend::Cuda, 1>::ones([1], &device)
            .into_data()
            .to_vec::<f32>()
            .is_ok()
    });
    std::panic::set_hook(hook);
    answered.unwrap_or(false)
}

#[cfg(not(feature = "cuda"))]
fn cuda_answers(_index: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_a_slot_when_the_run_has_gpus_and_runs_on_it() {
        assert_eq!(Device::Auto.in_slot(&[2]), Device::Cuda(2));
        assert_eq!(Device::Auto.in_slot(&[]), Device::Cpu);
        assert_eq!(Device::Cuda(0).in_slot(&[1]), Device::Cuda(1));
        assert_eq!(Device::Cuda(1).in_slot(&[]), Device::Cuda(1));
        assert_eq!(Device::Cpu.in_slot(&[]), Device::Cpu);
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_cpu_build_sees_no_gpu() {
        assert_eq!(Device::visible_gpus(), 0);
    }
}
