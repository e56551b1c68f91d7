//! Stage kinds, one module each.

pub mod classifier;
pub mod dataset;
pub mod download;
pub mod inception_stats;
pub mod report;
pub mod sample;
pub mod score;
pub mod train;
pub mod weights;

use contract::GpuNeed;
use kernels::device::Device;

/// The GPU slots a stage on `devices` devices of `device` asks the run for: `Cuda(n)`
/// that many, always; `Auto` up to that many when the run has GPUs (several devices
/// then share a GPU), and none (the CPU) when it has none.
pub fn gpus(device: Device, devices: u32) -> GpuNeed {
    match device {
        Device::Cpu => GpuNeed::None,
        Device::Cuda(_) => GpuNeed::Exactly(devices),
        Device::Auto => GpuNeed::IfAny(devices),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_asks_for_a_gpu_only_if_the_run_has_any() {
        assert_eq!(gpus(Device::Auto, 1), GpuNeed::IfAny(1));
        assert_eq!(gpus(Device::Cuda(3), 1), GpuNeed::Exactly(1));
        assert_eq!(gpus(Device::Cpu, 1), GpuNeed::None);
        // A training over four devices takes up to four GPUs; on fewer, they share.
        assert_eq!(gpus(Device::Auto, 4), GpuNeed::IfAny(4));
        assert_eq!(gpus(Device::Auto, 4).slots(2), Ok(2));
        assert_eq!(gpus(Device::Cuda(0), 4).slots(2), Err(4));
        assert_eq!(gpus(Device::Cpu, 4).slots(8), Ok(0));
    }
}
