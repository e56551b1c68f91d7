//! A network's state as named tensors: trainable parameters and buffers (BatchNorm
//! running statistics, spectral-norm vectors), each under its PyTorch name, so that the
//! authors' checkpoints map onto ours name for name and gradients can be compared per
//! parameter. Values are stored flat; the layer that reads a tensor knows its shape.
//!
//! On disk a [`Snapshot`] is a safetensors file (8-byte header length, JSON header,
//! little-endian f32 data), readable from Python with the `safetensors` package.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
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
        Tensors {
            entries: self
                .entries
                .iter()
                .map(|(name, e)| {
                    let entry = Entry {
                        shape: e.shape.clone(),
                        role: e.role,
                        value: e.value.clone().inner(),
                    };
                    (name.clone(), entry)
                })
                .collect(),
            device: self.device.clone(),
        }
    }

    /// Tracked values; with `trainable`, parameters become fresh leaves that collect
    /// gradients (without, gradients flow through them to the inputs only).
    pub fn from_inner(inner: Tensors<B::InnerBackend>, trainable: bool) -> Tensors<B> {
        let device = inner.device.clone();
        let entries = inner
            .entries
            .into_iter()
            .map(|(name, e)| {
                let value = Tensor::from_inner(e.value);
                let value = match e.role {
                    Role::Param if trainable => value.require_grad(),
                    _ => value,
                };
                let entry = Entry {
                    shape: e.shape,
                    role: e.role,
                    value,
                };
                (name, entry)
            })
            .collect();
        Tensors { entries, device }
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

#[derive(Serialize, Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [usize; 2],
}

impl Snapshot {
    /// Writes the file atomically (a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<(), GanError> {
        let mut header = serde_json::Map::new();
        let mut metadata = self.metadata.clone();
        let buffers: Vec<&str> = self
            .tensors
            .iter()
            .filter(|(_, t)| t.role == Role::Buffer)
            .map(|(n, _)| n.as_str())
            .collect();
        metadata.insert(BUFFERS_KEY.into(), buffers.join(","));
        header.insert(
            "__metadata__".into(),
            serde_json::to_value(&metadata).unwrap(),
        );
        let mut offset = 0;
        for (name, t) in &self.tensors {
            let end = offset + 4 * t.data.len();
            let entry = HeaderEntry {
                dtype: "F32".into(),
                shape: t.shape.clone(),
                data_offsets: [offset, end],
            };
            header.insert(name.clone(), serde_json::to_value(entry).unwrap());
            offset = end;
        }
        let mut json = serde_json::to_vec(&header).unwrap();
        while !json.len().is_multiple_of(8) {
            json.push(b' ');
        }
        let tmp = path.with_extension("safetensors.tmp");
        let io = |e| GanError::io(path, e);
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        file.write_all(&(json.len() as u64).to_le_bytes())
            .map_err(io)?;
        file.write_all(&json).map_err(io)?;
        for t in self.tensors.values() {
            for v in &t.data {
                file.write_all(&v.to_le_bytes()).map_err(io)?;
            }
        }
        file.into_inner()
            .map_err(|e| io(e.into_error()))?
            .sync_all()
            .map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    pub fn load(path: &Path) -> Result<Snapshot, GanError> {
        let bytes = std::fs::read(path).map_err(|e| GanError::io(path, e))?;
        let bad = |why: String| GanError::Format {
            file: path.display().to_string(),
            message: why,
        };
        if bytes.len() < 8 {
            return Err(bad("too short for a safetensors file".into()));
        }
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let data = bytes
            .get(8 + n..)
            .ok_or_else(|| bad(format!("header of {n} bytes runs past the end of the file")))?;
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&bytes[8..8 + n])
                .map_err(|e| bad(format!("unreadable header: {e}")))?;
        let mut metadata: BTreeMap<String, String> = match header.get("__metadata__") {
            Some(m) => serde_json::from_value(m.clone())
                .map_err(|e| bad(format!("unreadable metadata: {e}")))?,
            None => BTreeMap::new(),
        };
        let buffers: Vec<String> = metadata
            .remove(BUFFERS_KEY)
            .map(|s| {
                s.split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let mut tensors = BTreeMap::new();
        for (name, value) in header.iter().filter(|(k, _)| *k != "__metadata__") {
            let entry: HeaderEntry = serde_json::from_value(value.clone())
                .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
            if entry.dtype != "F32" {
                return Err(bad(format!(
                    "tensor `{name}` is {}, expected F32",
                    entry.dtype
                )));
            }
            let [start, end] = entry.data_offsets;
            let count = entry.shape.iter().product::<usize>();
            let raw = data
                .get(start..end)
                .filter(|raw| raw.len() == 4 * count)
                .ok_or_else(|| {
                    bad(format!(
                        "tensor `{name}` (shape {:?}) does not fit the file's data (truncated?)",
                        entry.shape
                    ))
                })?;
            let values = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let role = if buffers.contains(name) {
                Role::Buffer
            } else {
                Role::Param
            };
            let host = HostTensor {
                shape: entry.shape,
                role,
                data: values,
            };
            tensors.insert(name.clone(), host);
        }
        Ok(Snapshot { tensors, metadata })
    }
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
            err.contains("a.weight_u") && err.contains("truncated"),
            "{err}"
        );
    }
}
