//! StyleGAN2's bias and activation in one step, as StudioGAN v0.4 does it
//! (`utils/style_ops/bias_act.py`, its reference path `_bias_act_ref`, the one it takes
//! off CUDA): add a bias along one dimension, apply the activation, scale by its gain,
//! clamp. The activations carry the reference's default alpha and gain (√2 for the
//! ReLU family, so that activations keep their variance), which StyleGAN2's layers rely
//! on. Part of the StyleGAN2 family (issue 29), with [`crate::upfirdn2d`].

use burn::prelude::*;
use burn::tensor::activation;

/// The activations of the reference's table, by its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Relu,
    Lrelu,
    Tanh,
    Sigmoid,
    Elu,
    Selu,
    Softplus,
    Swish,
}

impl Activation {
    /// The activation the reference names so (`"lrelu"`).
    pub fn from_reference_name(name: &str) -> Option<Activation> {
        Some(match name {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            "lrelu" => Activation::Lrelu,
            "tanh" => Activation::Tanh,
            "sigmoid" => Activation::Sigmoid,
            "elu" => Activation::Elu,
            "selu" => Activation::Selu,
            "softplus" => Activation::Softplus,
            "swish" => Activation::Swish,
            _ => return None,
        })
    }

    /// The slope of LeakyReLU's negative side where none is given.
    pub fn default_alpha(self) -> f64 {
        match self {
            Activation::Lrelu => 0.2,
            _ => 0.0,
        }
    }

    /// The gain where none is given.
    pub fn default_gain(self) -> f64 {
        match self {
            Activation::Relu | Activation::Lrelu | Activation::Swish => std::f64::consts::SQRT_2,
            _ => 1.0,
        }
    }

    fn apply<B: Backend, const D: usize>(self, x: Tensor<B, D>, alpha: f64) -> Tensor<B, D> {
        // PyTorch's SELU constants.
        const SELU_ALPHA: f64 = 1.673_263_242_354_377_2;
        const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
        // exp(min(x, 0)) − 1 on the negative side, 0 on the positive: ELU's part.
        let negative_part = |x: Tensor<B, D>| x.clamp_max(0.0).exp() - 1.0;
        match self {
            Activation::Linear => x,
            Activation::Relu => activation::relu(x),
            Activation::Lrelu => activation::leaky_relu(x, alpha),
            Activation::Tanh => activation::tanh(x),
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::Elu => x.clone().clamp_min(0.0) + negative_part(x),
            Activation::Selu => {
                (x.clone().clamp_min(0.0) + negative_part(x) * SELU_ALPHA) * SELU_SCALE
            }
            // PyTorch's softplus is x itself above 20, where log(1 + eˣ) rounds to it.
            Activation::Softplus => {
                let above = x.clone().greater_elem(20.0);
                let soft = x.clone().clamp_max(20.0).exp().log1p();
                soft.mask_where(above, x)
            }
            Activation::Swish => activation::sigmoid(x.clone()) * x,
        }
    }
}

impl Activation {
    /// The derivative at `x` (inputs, the bias added).
    fn derivative<B: Backend, const D: usize>(self, x: Tensor<B, D>, alpha: f64) -> Tensor<B, D> {
        const SELU_ALPHA: f64 = 1.673_263_242_354_377_2;
        const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
        let positive = |x: Tensor<B, D>| x.greater_elem(0.0).float();
        match self {
            Activation::Linear => x.ones_like(),
            Activation::Relu => positive(x),
            Activation::Lrelu => positive(x) * (1.0 - alpha) + alpha,
            Activation::Tanh => activation::tanh(x).powi_scalar(2).neg() + 1.0,
            Activation::Sigmoid => {
                let y = activation::sigmoid(x);
                y.clone() * (y.neg() + 1.0)
            }
            Activation::Elu => {
                let p = positive(x.clone());
                p.clone() + (p.neg() + 1.0) * x.clamp_max(0.0).exp()
            }
            Activation::Selu => {
                let p = positive(x.clone());
                (p.clone() + (p.neg() + 1.0) * x.clamp_max(0.0).exp() * SELU_ALPHA) * SELU_SCALE
            }
            // Above 20, where PyTorch's softplus is x itself, the slope is 1.
            Activation::Softplus => {
                let above = x.clone().greater_elem(20.0);
                activation::sigmoid(x.clone()).mask_fill(above, 1.0)
            }
            Activation::Swish => {
                let y = activation::sigmoid(x.clone());
                y.clone() * (x * (y.neg() + 1.0) + 1.0)
            }
        }
    }
}

/// What [`bias_act`] does after the bias: `None` takes the activation's default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BiasAct {
    pub act: Activation,
    pub alpha: Option<f64>,
    pub gain: Option<f64>,
    /// Outputs beyond ±clamp are cut (the synthesis layers' `conv_clamp`).
    pub clamp: Option<f64>,
}

impl BiasAct {
    /// The activation's alpha: the given one, else its default.
    fn alpha(&self) -> f64 {
        self.alpha.unwrap_or(self.act.default_alpha())
    }

    /// The gain: the given one, else the activation's default.
    fn gain(&self) -> f64 {
        self.gain.unwrap_or(self.act.default_gain())
    }

    /// `act` with its default alpha and gain, unclamped.
    pub fn default_for(act: Activation) -> BiasAct {
        BiasAct {
            act,
            alpha: None,
            gain: None,
            clamp: None,
        }
    }
}

/// `bias_act(x, b, dim, act, alpha, gain, clamp)`.
pub fn bias_act<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    bias: Option<Tensor<B, 1>>,
    dim: usize,
    spec: &BiasAct,
) -> Tensor<B, D> {
    let x = spec.act.apply(with_bias(x, bias, dim), spec.alpha());
    let gain = spec.gain();
    let x = if gain != 1.0 { x * gain } else { x };
    match spec.clamp {
        Some(c) => x.clamp(-c, c),
        None => x,
    }
}

/// `x` plus `bias` along dimension `dim`.
fn with_bias<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    bias: Option<Tensor<B, 1>>,
    dim: usize,
) -> Tensor<B, D> {
    match bias {
        Some(b) => {
            let mut shape = [1; D];
            shape[dim] = b.dims()[0];
            x + b.reshape(shape)
        }
        None => x,
    }
}

/// The tangents of [`bias_act`] at `x`: `tangents` (of x; the bias is a constant)
/// times the activation's slope at x + bias, times the gain, zero where the output is
/// clamped.
pub fn bias_act_tangent<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    tangents: Tensor<B, D>,
    bias: Option<Tensor<B, 1>>,
    dim: usize,
    spec: &BiasAct,
) -> Tensor<B, D> {
    let x = with_bias(x, bias, dim);
    let (alpha, gain) = (spec.alpha(), spec.gain());
    let slope = spec.act.derivative(x.clone(), alpha) * gain;
    let slope = match spec.clamp {
        Some(c) => {
            let inside = (spec.act.apply(x, alpha) * gain).abs().lower_equal_elem(c);
            slope * inside.float()
        }
        None => slope,
    };
    tangents * slope
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    /// Every activation's tangent rule against autodiff's gradient of the sum, with a
    /// bias, a gain and a clamp that cuts some outputs.
    #[test]
    fn tangents_are_the_slopes_autodiff_finds() {
        let device = Default::default();
        let values: Vec<f32> = (0..24).map(|i| (i as f32 - 11.5) * 0.37).collect();
        let x = Tensor::<Flex, 1>::from_floats(values.as_slice(), &device).reshape([2, 3, 4]);
        let bias = Tensor::<Flex, 1>::from_floats([0.3, -0.2, 0.1], &device);
        for act in [
            Activation::Linear,
            Activation::Relu,
            Activation::Lrelu,
            Activation::Tanh,
            Activation::Sigmoid,
            Activation::Elu,
            Activation::Selu,
            Activation::Softplus,
            Activation::Swish,
        ] {
            let spec = BiasAct {
                gain: Some(1.3),
                clamp: Some(2.0),
                ..BiasAct::default_for(act)
            };
            let ones = x.ones_like();
            let slopes = bias_act_tangent(x.clone(), ones, Some(bias.clone()), 1, &spec);
            let leaf = Tensor::<Autodiff<Flex>, 3>::from_inner(x.clone()).require_grad();
            let y = bias_act(
                leaf.clone(),
                Some(Tensor::from_inner(bias.clone())),
                1,
                &spec,
            );
            let grad = leaf.grad(&y.sum().backward()).unwrap();
            let got = slopes.into_data().to_vec::<f32>().unwrap();
            let want = grad.into_data().to_vec::<f32>().unwrap();
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() < 1e-5,
                    "{act:?} at {i}: tangent {a}, autodiff {b}"
                );
            }
        }
    }
}
