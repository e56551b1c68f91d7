//! Adam with PyTorch's update rule (`torch.optim.Adam`, no weight decay, no amsgrad):
//! m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g², p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).

use std::collections::BTreeMap;

use burn::prelude::*;

use super::tensors::{Entry, HostTensor, Role, Snapshot, Tensors};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

pub struct Adam<B: Backend> {
    hyper: Hyper,
    /// Updates done so far (t of the bias corrections).
    steps: u64,
    /// First and second moments by parameter name.
    moments: BTreeMap<String, (Tensor<B, 1>, Tensor<B, 1>)>,
}

impl<B: Backend> Adam<B> {
    pub fn new(hyper: Hyper) -> Adam<B> {
        Adam {
            hyper,
            steps: 0,
            moments: BTreeMap::new(),
        }
    }

    /// Updates every parameter that has a gradient.
    pub fn step(&mut self, params: &mut Tensors<B>, grads: &BTreeMap<String, Tensor<B, 1>>) {
        self.steps += 1;
        let Hyper {
            lr,
            beta1,
            beta2,
            eps,
        } = self.hyper;
        let t = self.steps as i32;
        let step_size = lr / (1.0 - beta1.powi(t));
        let correction2 = (1.0 - beta2.powi(t)).sqrt();
        for (name, g) in grads {
            let p = params
                .get(name)
                .expect("gradient of a known parameter")
                .value
                .clone();
            let (m, v) = match self.moments.remove(name) {
                Some(state) => state,
                None => (g.zeros_like(), g.zeros_like()),
            };
            let m = m * beta1 + g.clone() * (1.0 - beta1);
            let v = v * beta2 + g.clone() * g.clone() * (1.0 - beta2);
            let denom = v.clone().sqrt() / correction2 + eps;
            params.set(name, p - m.clone() / denom * step_size);
            self.moments.insert(name.clone(), (m, v));
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The state as `exp_avg.<name>` and `exp_avg_sq.<name>`, the count in metadata.
    pub fn to_snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for (name, (m, v)) in &self.moments {
            for (prefix, t) in [("exp_avg", m), ("exp_avg_sq", v)] {
                let data = t
                    .clone()
                    .into_data()
                    .convert::<f32>()
                    .to_vec::<f32>()
                    .unwrap();
                let host = HostTensor {
                    shape: vec![data.len()],
                    role: Role::Buffer,
                    data,
                };
                snapshot.tensors.insert(format!("{prefix}.{name}"), host);
            }
        }
        snapshot
            .metadata
            .insert("steps".into(), self.steps.to_string());
        snapshot
    }

    pub fn from_snapshot(hyper: Hyper, snapshot: &Snapshot, device: &B::Device) -> Option<Adam<B>> {
        let steps = snapshot.metadata.get("steps")?.parse().ok()?;
        let tensors = Tensors::<B>::from_snapshot(snapshot, device);
        let mut moments = BTreeMap::new();
        for (key, Entry { value, .. }) in tensors.iter() {
            if let Some(name) = key.strip_prefix("exp_avg.") {
                let v = tensors.get(&format!("exp_avg_sq.{name}"))?.value.clone();
                moments.insert(name.to_string(), (value.clone(), v));
            }
        }
        Some(Adam {
            hyper,
            steps,
            moments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn two_steps_match_pytorch_by_hand() {
        let device = Default::default();
        let mut params = Tensors::<Flex>::new(&device);
        let value = Tensor::from_floats([1.0, -2.0], &device);
        params.insert(
            "w".into(),
            Entry {
                shape: vec![2],
                role: Role::Param,
                value,
            },
        );
        let hyper = Hyper {
            lr: 0.1,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut adam = Adam::new(hyper);
        let grad = |a: f32, b: f32| {
            BTreeMap::from([("w".to_string(), Tensor::from_floats([a, b], &device))])
        };
        adam.step(&mut params, &grad(0.5, -1.0));
        adam.step(&mut params, &grad(0.25, 2.0));
        // By hand, in f64, for the first coordinate.
        let (mut p, mut m, mut v) = (1.0f64, 0.0f64, 0.0f64);
        for (t, g) in [(1, 0.5f64), (2, 0.25)] {
            m = 0.5 * m + 0.5 * g;
            v = 0.999 * v + 0.001 * g * g;
            let denom = v.sqrt() / (1.0 - 0.999f64.powi(t)).sqrt() + 1e-8;
            p -= 0.1 / (1.0 - 0.5f64.powi(t)) * m / denom;
        }
        let got = params
            .get("w")
            .unwrap()
            .value
            .clone()
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!((got[0] as f64 - p).abs() < 1e-6, "{} vs {p}", got[0]);

        let restored = Adam::<Flex>::from_snapshot(hyper, &adam.to_snapshot(), &device).unwrap();
        assert_eq!(restored.steps(), 2);
        assert_eq!(restored.to_snapshot(), adam.to_snapshot());
    }
}
