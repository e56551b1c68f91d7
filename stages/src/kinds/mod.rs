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

/// The GPU slots a stage on `device` asks the run for: `Cuda(n)` one, always; `Auto`
/// one when the run has GPUs, and none (the CPU) when it has none.
pub fn gpus(device: Device) -> GpuNeed {
    match device {
        Device::Cpu => GpuNeed::None,
        Device::Cuda(_) => GpuNeed::Exactly(1),
        Device::Auto => GpuNeed::IfAny(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_asks_for_a_gpu_only_if_the_run_has_any() {
        assert_eq!(gpus(Device::Auto), GpuNeed::IfAny(1));
        assert_eq!(gpus(Device::Cuda(3)), GpuNeed::Exactly(1));
        assert_eq!(gpus(Device::Cpu), GpuNeed::None);
    }
}
