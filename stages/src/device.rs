//! Where tensor work runs: `Cpu` (burn-flex), `Cuda(n)` (burn-cuda, in builds with the
//! `cuda` feature), or `Auto`: CUDA device 0 when one answers, else the CPU. One code
//! path: work is written once, generic over the backend, and dispatched here.

use crate::kernels::Kernels;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Device {
    #[default]
    Auto,
    Cpu,
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

impl Device {
    /// GPU slots a stage on this device takes from the run.
    pub fn slots(self) -> u32 {
        matches!(self, Device::Cuda(_)) as u32
    }

    /// The device to use given the run's GPU slot ids: a CUDA stage runs on its slot.
    pub fn in_slot(self, gpus: &[u32]) -> Device {
        match (self, gpus.first()) {
            (Device::Cuda(_), Some(&id)) => Device::Cuda(id as usize),
            (device, _) => device,
        }
    }

    /// Runs `task` on this device; also says, in words, which device it used.
    pub fn run<T: OnBackend>(self, task: T) -> Result<(T::Output, String), DeviceError> {
        match self.resolve()? {
            Device::Cpu | Device::Auto => Ok((
                task.run::<burn::backend::Flex>(Default::default()),
                "cpu (burn-flex)".into(),
            )),
            #[cfg(feature = "cuda")]
            Device::Cuda(index) => {
                let device = burn::backend::cuda::CudaDevice::new(index);
                Ok((
                    task.run::<burn::backend::Cuda>(device),
                    format!("cuda:{index} (burn-cuda)"),
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
