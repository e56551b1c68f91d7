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
    let x = match bias {
        Some(b) => {
            let mut shape = [1; D];
            shape[dim] = b.dims()[0];
            x + b.reshape(shape)
        }
        None => x,
    };
    let alpha = spec.alpha.unwrap_or(spec.act.default_alpha());
    let x = spec.act.apply(x, alpha);
    let gain = spec.gain.unwrap_or(spec.act.default_gain());
    let x = if gain != 1.0 { x * gain } else { x };
    match spec.clamp {
        Some(c) => x.clamp(-c, c),
        None => x,
    }
}
