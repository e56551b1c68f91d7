//! What each side of a step is trained on, composed once per side from the
//! configuration: the adversarial loss, the conditioning term, and any regularizers.
//! Each is a [`Term`] that sees the same forward passes; a new regularizer is one more
//! `Term` (its own file, with its config field) pushed in [`Objective::new`]. The
//! objective also says what the images D sees go through (real and fake, in D and G
//! steps): DiffAugment or ADA, where one is on (`augment.rs`).

use std::collections::BTreeMap;

use burn::prelude::*;
use kernels::Kernels;
use rng::Rng;

use super::augment::Augmentation;
use super::penalty::Penalty;
use super::term::{DPass, GPass, Term};
use crate::config::{AdvLoss, AuxClassifier, Conditioning, ModelConfig, TrainConfig};
use crate::discriminator::Output;
use crate::loss;
use crate::tensors::label_tensor;

/// The terms of a configuration, and its gradient penalties: those run D themselves,
/// on points of their own, so the D step computes them (`penalty::addend`); and the
/// augmentation of D's inputs.
pub struct Objective<B: Kernels> {
    terms: Vec<Box<dyn Term<B>>>,
    penalties: Vec<Penalty>,
    augmentation: Option<Augmentation>,
}

impl<B: Kernels> Objective<B> {
    pub fn new(model: &ModelConfig, train: &TrainConfig) -> Objective<B> {
        let mut terms: Vec<Box<dyn Term<B>>> = vec![Box::new(Adversarial(train.adv_loss))];
        match model.conditioning {
            Conditioning::Acgan => terms.push(Box::new(ClassCrossEntropy {
                lambda: match model.aux_cls_type {
                    AuxClassifier::Adc => train.contrastive_lambda,
                    AuxClassifier::None => 1.0,
                },
            })),
            Conditioning::Contrastive => terms.push(Box::new(Contrastive {
                lambda: train.contrastive_lambda,
                temperature: train.temperature,
                positives_in_numerator: train.positives_in_numerator,
                positive_views: train.make_positive_aug,
                adc: model.aux_cls_type == AuxClassifier::Adc,
            })),
            Conditioning::D2dce => terms.push(Box::new(DataToData {
                lambda: train.contrastive_lambda,
                m_p: train.m_p,
                temperature: train.temperature,
                adc: model.aux_cls_type == AuxClassifier::Adc,
            })),
            // The projection is part of D's logit; no term of its own.
            Conditioning::None | Conditioning::Projection => {}
        }
        if train.consistency_reg {
            terms.push(Box::new(Consistency {
                lambda: train.consistency_lambda,
            }));
        }
        if let Some(config) = train.lecam {
            terms.push(Box::new(super::lecam::LeCam::new(config)));
        }
        if let Some(op) = train.latent_op.filter(|op| op.norm_reg_weight > 0.0) {
            terms.push(Box::new(super::latent::NormRegularizer {
                weight: op.norm_reg_weight,
            }));
        }
        Objective {
            terms,
            penalties: Penalty::all(train),
            augmentation: Augmentation::of(train),
        }
    }

    pub fn penalties(&self) -> &[Penalty] {
        &self.penalties
    }

    /// Every term's state, for a checkpoint.
    pub fn state(&self) -> BTreeMap<String, f64> {
        self.terms.iter().flat_map(|t| t.state()).collect()
    }

    /// Restores the terms' state from a checkpoint.
    pub fn restore(&self, state: &BTreeMap<String, f64>) {
        self.terms.iter().for_each(|t| t.restore(state));
    }

    /// Whether any term needs D's output on the real images' augmented copies.
    pub fn uses_views(&self) -> bool {
        self.terms.iter().any(|t| t.uses_views())
    }

    /// The augmentation of D's inputs, where one is on.
    pub fn augmentation(&self) -> Option<Augmentation> {
        self.augmentation
    }

    /// What D is given in place of `images`: them augmented with fresh draws from
    /// `rng` (ADA's transforms firing with probability `p`), where an augmentation is
    /// on.
    pub fn augment(&self, images: Tensor<B, 4>, p: f64, rng: &mut Rng) -> Tensor<B, 4> {
        match &self.augmentation {
            Some(augmentation) => augmentation.apply(images, p, rng),
            None => images,
        }
    }

    pub fn discriminator(&self, pass: &DPass<B>) -> Tensor<B, 1> {
        let mut addends = Vec::new();
        for term in &self.terms {
            term.discriminator(pass, &mut addends);
        }
        sum(addends)
    }

    pub fn generator(&self, pass: &GPass<B>) -> Tensor<B, 1> {
        let mut addends = Vec::new();
        for term in &self.terms {
            term.generator(pass, &mut addends);
        }
        sum(addends)
    }
}

fn sum<B: Kernels>(addends: Vec<Tensor<B, 1>>) -> Tensor<B, 1> {
    addends
        .into_iter()
        .reduce(|total, addend| total + addend)
        .expect("the adversarial term is always there")
}

/// The adversarial loss of D's logits (hinge, vanilla, least squares, Wasserstein).
struct Adversarial(AdvLoss);

impl<B: Kernels> Term<B> for Adversarial {
    fn discriminator(&self, pass: &DPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        addends.push(
            self.0
                .discriminator(pass.real.adv.clone(), pass.fake.adv.clone()),
        );
    }

    fn generator(&self, pass: &GPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        addends.push(self.0.generator(pass.fake.adv.clone()));
    }
}

/// ACGAN: the cross-entropy of the class head, on real and fake images for D and on
/// the fakes for G. With ADC (the labels D was given are 2y for real images and
/// 2y + 1 for fakes) G's loss also subtracts the cross-entropy of the fakes with
/// their "fake" entries, as StudioGAN v0.4's worker does; every addend times `lambda`
/// (v0.4's `cond_lambda` with ADC, 1 as the seed's ACGAN otherwise).
struct ClassCrossEntropy {
    lambda: f64,
}

impl ClassCrossEntropy {
    fn loss<B: Kernels>(&self, out: &Output<B>, labels: &[u32]) -> Tensor<B, 1> {
        let logits = out.class_logits.clone().expect("ACGAN head");
        let device = logits.device();
        loss::cross_entropy(logits, label_tensor(labels, &device)) * self.lambda
    }
}

impl<B: Kernels> Term<B> for ClassCrossEntropy {
    fn discriminator(&self, pass: &DPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        addends.push(self.loss(pass.real, pass.real_labels));
        addends.push(self.loss(pass.fake, pass.fake_labels));
    }

    fn generator(&self, pass: &GPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        addends.push(self.loss(pass.fake, pass.labels));
        if let Some((adc_fake, labels)) = pass.adc_fake {
            addends.push(-self.loss(adc_fake, labels));
        }
    }
}

/// ContraGAN's conditional contrastive (2C) loss, on the real images for D and on the
/// fakes for G, times `contrastive_lambda`. In D steps where D also saw the real images'
/// augmented copies, their embeddings are extra positives (the seed does so whenever it
/// made the copies: `make_positive_aug`, and `consistency_reg` too). With ADC, as v0.4's
/// worker: D's loss adds the fakes' with their "fake" class proxies (2y + 1), and G's
/// subtracts it.
struct Contrastive {
    lambda: f64,
    temperature: f64,
    positives_in_numerator: bool,
    positive_views: bool,
    adc: bool,
}

impl Contrastive {
    fn loss<B: Kernels>(
        &self,
        out: &Output<B>,
        labels: &[u32],
        views: Option<&Output<B>>,
    ) -> Tensor<B, 1> {
        let (embed, anchor) = out.contrastive.clone().expect("ContraGAN head");
        let views = views.map(|v| v.contrastive.clone().expect("ContraGAN head").0);
        let c2 = loss::contrastive(
            embed,
            anchor,
            labels,
            self.temperature,
            self.positives_in_numerator,
            views,
        );
        c2 * self.lambda
    }
}

impl<B: Kernels> Term<B> for Contrastive {
    fn discriminator(&self, pass: &DPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        addends.push(self.loss(pass.real, pass.real_labels, pass.real_views));
        if self.adc {
            addends.push(self.loss(pass.fake, pass.fake_labels, None));
        }
    }

    fn generator(&self, pass: &GPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        addends.push(self.loss(pass.fake, pass.labels, None));
        if let Some((adc_fake, labels)) = pass.adc_fake {
            addends.push(-self.loss(adc_fake, labels, None));
        }
    }

    fn uses_views(&self) -> bool {
        self.positive_views
    }
}

/// Consistency regularization (CRGAN; the seed's `consistency_reg`): `consistency_lambda`
/// times the mean squared difference of D's logits on the real images and on their
/// augmented copies.
struct Consistency {
    lambda: f64,
}

impl<B: Kernels> Term<B> for Consistency {
    fn discriminator(&self, pass: &DPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        let views = pass.real_views.expect("D saw the augmented copies");
        let difference = pass.real.adv.clone() - views.adv.clone();
        addends.push(difference.powi_scalar(2).mean() * self.lambda);
    }

    fn generator(&self, _: &GPass<B>, _: &mut Vec<Tensor<B, 1>>) {}

    fn uses_views(&self) -> bool {
        true
    }
}

/// ReACGAN's Data-to-Data Cross-Entropy, on the real images for D and on the fakes for
/// G, times `contrastive_lambda` (the reference's `cond_lambda`). With ADC, as v0.4's
/// worker: D's loss adds the fakes' with their "fake" class embeddings (2y + 1), and
/// G's subtracts it.
struct DataToData {
    lambda: f64,
    m_p: f64,
    temperature: f64,
    adc: bool,
}

impl DataToData {
    fn loss<B: Kernels>(&self, out: &Output<B>, labels: &[u32]) -> Tensor<B, 1> {
        let (embed, proxy) = out.contrastive.clone().expect("the embedding head");
        loss::data_to_data(embed, proxy, labels, self.m_p, self.temperature) * self.lambda
    }
}

impl<B: Kernels> Term<B> for DataToData {
    fn discriminator(&self, pass: &DPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        addends.push(self.loss(pass.real, pass.real_labels));
        if self.adc {
            addends.push(self.loss(pass.fake, pass.fake_labels));
        }
    }

    fn generator(&self, pass: &GPass<B>, addends: &mut Vec<Tensor<B, 1>>) {
        addends.push(self.loss(pass.fake, pass.labels));
        if let Some((adc_fake, labels)) = pass.adc_fake {
            addends.push(-self.loss(adc_fake, labels));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    #[test]
    fn consistency_is_lambda_times_the_mean_squared_difference_of_the_logits() {
        let device = Default::default();
        let output = |adv: [f32; 2]| Output::<Flex> {
            features: Tensor::zeros([2, 1], &device),
            adv: Tensor::from_floats(adv, &device),
            class_logits: None,
            contrastive: None,
        };
        let (real, views, fake) = (output([1.0, 2.0]), output([0.5, 4.0]), output([0.0, 0.0]));
        let pass = DPass {
            step: 0,
            real: &real,
            real_labels: &[0, 1],
            real_views: Some(&views),
            fake: &fake,
            fake_labels: &[0, 1],
        };
        let mut addends = Vec::new();
        Consistency { lambda: 10.0 }.discriminator(&pass, &mut addends);
        let value: f32 = addends.pop().unwrap().into_scalar();
        assert!((value - 10.0 * (0.25 + 4.0) / 2.0).abs() < 1e-5, "{value}");
    }

    /// ADC against StudioGAN v0.4, through the fixtures `tools/fixtures/adc.py` makes
    /// (`fixtures/adc/`, every case): D's and G's conditioning losses within 1e-6
    /// relative, their gradients with respect to every head output within 1e-5 of the
    /// largest (f32 against the reference's f64).
    #[test]
    fn adc_losses_and_gradients_match_studiogan_v04() {
        type Ad = Autodiff<Flex>;
        let device = Default::default();
        for case in fixtures::cases(&fixtures::ours("adc")) {
            let arrays = metrics::npy::read_npz(&case).unwrap_or_else(|e| panic!("{e}"));
            let scalar = |k: &str| arrays[k].data[0];
            let ints = |k: &str| arrays[k].data.iter().map(|&v| v as u32).collect::<Vec<_>>();
            let leaf = |k: &str| {
                let a = &arrays[k];
                let v: Vec<f32> = a.data.iter().map(|&x| x as f32).collect();
                Tensor::<Ad, 1>::from_floats(v.as_slice(), &device)
                    .reshape([a.shape[0], a.shape[1]])
                    .require_grad()
            };
            let acgan = scalar("acgan") == 1.0;
            let mut leaves = Vec::new();
            let mut output = |pass: &str| {
                let n =
                    arrays[&format!("{pass}_{}", if acgan { "logits" } else { "embed" })].shape[0];
                let (class_logits, contrastive) = if acgan {
                    let name = format!("{pass}_logits");
                    let logits = leaf(&name);
                    leaves.push((name, logits.clone()));
                    (Some(logits), None)
                } else {
                    let (e, p) = (format!("{pass}_embed"), format!("{pass}_proxy"));
                    let (embed, proxy) = (leaf(&e), leaf(&p));
                    leaves.push((e, embed.clone()));
                    leaves.push((p, proxy.clone()));
                    (None, Some((embed, proxy)))
                };
                Output::<Ad> {
                    features: Tensor::zeros([n, 1], &device),
                    adv: Tensor::zeros([n], &device),
                    class_logits,
                    contrastive,
                }
            };
            let (real, fake, g_fake, g_adc) = (
                output("real"),
                output("fake"),
                output("g_fake"),
                output("g_adc"),
            );
            let adc = AuxClassifier::Adc;
            let real_labels = adc.d_labels(&ints("real_labels"), false);
            let fake_labels = adc.d_labels(&ints("fake_labels"), true);
            let (g_labels, adc_labels) = (
                adc.d_labels(&ints("g_labels"), false),
                adc.d_labels(&ints("g_labels"), true),
            );
            let lambda = scalar("cond_lambda");
            // Older sets of this layout hold no `contrastive` flag: AC and D2DCE only.
            let contrastive = arrays.get("contrastive").is_some_and(|a| a.data[0] == 1.0);
            let term: Box<dyn Term<Ad>> = if acgan {
                Box::new(ClassCrossEntropy { lambda })
            } else if contrastive {
                Box::new(Contrastive {
                    lambda,
                    temperature: scalar("temperature"),
                    positives_in_numerator: true,
                    positive_views: false,
                    adc: true,
                })
            } else {
                Box::new(DataToData {
                    lambda,
                    m_p: scalar("m_p"),
                    temperature: scalar("temperature"),
                    adc: true,
                })
            };
            let (mut d, mut g) = (Vec::new(), Vec::new());
            term.discriminator(
                &DPass {
                    step: 0,
                    real: &real,
                    real_labels: &real_labels,
                    real_views: None,
                    fake: &fake,
                    fake_labels: &fake_labels,
                },
                &mut d,
            );
            term.generator(
                &GPass {
                    fake: &g_fake,
                    labels: &g_labels,
                    adc_fake: Some((&g_adc, &adc_labels)),
                },
                &mut g,
            );
            let (d, g) = (sum(d), sum(g));
            for (what, value) in [("d_loss", &d), ("g_loss", &g)] {
                let got: f32 = value.clone().into_scalar();
                let want = scalar(what);
                eprintln!(
                    "{}: {what} {got} vs {want} (rel {:.1e})",
                    case.display(),
                    (got as f64 - want).abs() / want.abs().max(1.0)
                );
                assert!(
                    (got as f64 - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{}: {what} {got} vs {want}",
                    case.display()
                );
            }
            let grads = (d + g).backward();
            for (name, tensor) in leaves {
                let got: Vec<f32> = tensor.grad(&grads).unwrap().into_data().to_vec().unwrap();
                let want = &arrays[&format!("grad_{name}")].data;
                let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
                let diff = got
                    .iter()
                    .zip(want)
                    .fold(0f64, |m, (&a, &b)| m.max((a as f64 - b).abs()));
                eprintln!("  gradient of {name}: max |diff| {diff:.1e} of {scale:.2e}");
                assert!(
                    diff <= 1e-5 * scale,
                    "{}: gradient of {name}: max |diff| {diff} of {scale}",
                    case.display()
                );
            }
        }
    }
}
