//! A network's state as named tensors: trainable parameters and buffers (BatchNorm
//! running statistics, spectral-norm vectors), each under its PyTorch name, so that the
//! authors' checkpoints map onto ours name for name and gradients can be compared per
//! parameter. Values are stored flat; the layer that reads a tensor knows its shape.
//!
//! On disk a [`Snapshot`] is a safetensors file (written and read by the `safetensors`
//! crate, as burn-store's), readable from Python with the `safetensors` package.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::GanError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Trained by the optimizer.
    Param,
    /// State updated by the forward pass itself.
    Buffer,
}

#[derive(Debug, Clone)]
pub struct Entry<B: Backend> {
    pub shape: Vec<usize>,
    pub role: Role,
    pub value: Tensor<B, 1>,
}

#[derive(Debug, Clone)]
pub struct Tensors<B: Backend> {
    entries: BTreeMap<String, Entry<B>>,
    device: B::Device,
}

impl<B: Backend> Tensors<B> {
    pub fn new(device: &B::Device) -> Tensors<B> {
        Tensors {
            entries: BTreeMap::new(),
            device: device.clone(),
        }
    }

    pub fn device(&self) -> &B::Device {
        &self.device
    }

    pub fn get(&self, name: &str) -> Option<&Entry<B>> {
        self.entries.get(name)
    }

    pub fn insert(&mut self, name: String, entry: Entry<B>) {
        self.entries.insert(name, entry);
    }

    /// Replaces the value of an existing tensor.
    pub fn set(&mut self, name: &str, value: Tensor<B, 1>) {
        let entry = self
            .entries
            .get_mut(name)
            .unwrap_or_else(|| panic!("no tensor `{name}` to set"));
        entry.value = value;
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry<B>)> {
        self.entries.iter()
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many trainable numbers the network has.
    pub fn parameter_count(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.role == Role::Param)
            .map(|e| e.shape.iter().product::<usize>())
            .sum()
    }

    /// The same names, shapes and roles, each value mapped by `f` (given its role), on
    /// `device`.
    fn map<C: Backend>(
        &self,
        device: &C::Device,
        f: impl Fn(Tensor<B, 1>, Role) -> Tensor<C, 1>,
    ) -> Tensors<C> {
        let entries = self
            .entries
            .iter()
            .map(|(name, e)| {
                let entry = Entry {
                    shape: e.shape.clone(),
                    role: e.role,
                    value: f(e.value.clone(), e.role),
                };
                (name.clone(), entry)
            })
            .collect();
        Tensors {
            entries,
            device: device.clone(),
        }
    }

    /// A copy on `device` (tracked by autodiff where the values are: a replica's
    /// gradients flow back to the original).
    pub fn to_device(&self, device: &B::Device) -> Tensors<B> {
        self.map(device, |value, _| value.to_device(device))
    }

    pub fn to_snapshot(&self) -> Snapshot {
        let tensors = self
            .entries
            .iter()
            .map(|(name, e)| {
                let data = e
                    .value
                    .clone()
                    .into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .expect("f32 data");
                let host = HostTensor {
                    shape: e.shape.clone(),
                    role: e.role,
                    data,
                };
                (name.clone(), host)
            })
            .collect();
        Snapshot {
            tensors,
            metadata: BTreeMap::new(),
        }
    }

    pub fn from_snapshot(snapshot: &Snapshot, device: &B::Device) -> Tensors<B> {
        let entries = snapshot
            .tensors
            .iter()
            .map(|(name, t)| {
                let value =
                    Tensor::from_data(TensorData::new(t.data.clone(), [t.data.len()]), device);
                let entry = Entry {
                    shape: t.shape.clone(),
                    role: t.role,
                    value,
                };
                (name.clone(), entry)
            })
            .collect();
        Tensors {
            entries,
            device: device.clone(),
        }
    }
}

impl<B: AutodiffBackend> Tensors<B> {
    /// The same values without autodiff tracking, e.g. for an optimizer step.
    pub fn inner(&self) -> Tensors<B::InnerBackend> {
        self.map(&self.device, |value, _| value.inner())
    }

    /// Tracked values; with `trainable`, parameters become fresh leaves that collect
    /// gradients (without, gradients flow through them to the inputs only).
    pub fn from_inner(inner: Tensors<B::InnerBackend>, trainable: bool) -> Tensors<B> {
        inner.map(&inner.device, |value, role| {
            let value = Tensor::from_inner(value);
            match role {
                Role::Param if trainable => value.require_grad(),
                _ => value,
            }
        })
    }

    /// The gradient of every parameter the loss depends on.
    pub fn gradients(&self, grads: &B::Gradients) -> BTreeMap<String, Tensor<B::InnerBackend, 1>> {
        self.entries
            .iter()
            .filter(|(_, e)| e.role == Role::Param)
            .filter_map(|(name, e)| e.value.grad(grads).map(|g| (name.clone(), g)))
            .collect()
    }
}

/// One tensor on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub role: Role,
    pub data: Vec<f32>,
}

/// Named tensors on the host, with string metadata; saved as safetensors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub tensors: BTreeMap<String, HostTensor>,
    pub metadata: BTreeMap<String, String>,
}

/// The metadata key listing which tensors are buffers (safetensors has no such notion).
const BUFFERS_KEY: &str = "pipe.buffers";

impl Snapshot {
    /// Writes the file atomically (a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<(), GanError> {
        let mut metadata: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        let buffers: Vec<&str> = self
            .tensors
            .iter()
            .filter(|(_, t)| t.role == Role::Buffer)
            .map(|(n, _)| n.as_str())
            .collect();
        metadata.insert(BUFFERS_KEY.into(), buffers.join(","));
        let bytes: Vec<(&String, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| (name, t.data.iter().flat_map(|v| v.to_le_bytes()).collect()))
            .collect();
        let views = bytes
            .iter()
            .zip(self.tensors.values())
            .map(|((name, data), t)| {
                Ok((*name, TensorView::new(Dtype::F32, t.shape.clone(), data)?))
            })
            .collect::<Result<Vec<_>, SafeTensorError>>();
        let file = views
            .and_then(|views| safetensors::serialize(views, Some(metadata)))
            .map_err(|e| GanError::Format {
                file: path.display().to_string(),
                message: format!("cannot encode as safetensors: {e}"),
            })?;
        let tmp = path.with_extension("safetensors.tmp");
        let io = |e| GanError::io(path, e);
        let mut out = std::fs::File::create(&tmp).map_err(io)?;
        out.write_all(&file).map_err(io)?;
        out.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    pub fn load(path: &Path) -> Result<Snapshot, GanError> {
        let bytes = std::fs::read(path).map_err(|e| GanError::io(path, e))?;
        let bad = |why: String| GanError::Format {
            file: path.display().to_string(),
            message: why,
        };
        let unreadable = |e: SafeTensorError| {
            bad(format!(
                "not a readable safetensors file (truncated or damaged?): {e}"
            ))
        };
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(unreadable)?;
        let mut metadata: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let buffers: Vec<String> = metadata
            .remove(BUFFERS_KEY)
            .map(|s| {
                s.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let file = SafeTensors::deserialize(&bytes).map_err(unreadable)?;
        let mut tensors = BTreeMap::new();
        for (name, view) in file.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(bad(format!(
                    "tensor `{name}` is {:?}, expected F32",
                    view.dtype()
                )));
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let role = if buffers.contains(&name) {
                Role::Buffer
            } else {
                Role::Param
            };
            let host = HostTensor {
                shape: view.shape().to_vec(),
                role,
                data,
            };
            tensors.insert(name, host);
        }
        Ok(Snapshot { tensors, metadata })
    }
}

/// Class labels as the integer tensor layers and losses take.
pub fn label_tensor<B: Backend>(labels: &[u32], device: &B::Device) -> Tensor<B, 1, Int> {
    let ints: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(ints, [labels.len()]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_round_trip_and_refuse_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.safetensors");
        let mut snapshot = Snapshot::default();
        let tensor = |shape: Vec<usize>, role, data| HostTensor { shape, role, data };
        snapshot.tensors.insert(
            "a.weight".into(),
            tensor(vec![2, 2], Role::Param, vec![1.0, -2.5, 3.0, 0.0]),
        );
        snapshot.tensors.insert(
            "a.weight_u".into(),
            tensor(vec![2], Role::Buffer, vec![0.6, 0.8]),
        );
        snapshot.metadata.insert("step".into(), "7".into());
        snapshot.save(&path).unwrap();
        assert_eq!(Snapshot::load(&path).unwrap(), snapshot);

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = Snapshot::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("net.safetensors") && err.contains("truncated"),
            "{err}"
        );
    }
}
