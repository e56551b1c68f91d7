//! [`Kernels`] under autodiff: each custom operation enters the graph with a backward
//! pass that calls the inner backend's kernels for its gradients.

use burn::tensor::TensorMetadata;
use burn::tensor::ops::{ConvOptions, FloatTensor, ModuleOps};
use burn_autodiff::Autodiff;
use burn_autodiff::NodeId;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use crate::Kernels;

/// The gradients of x and w, for both forms of the convolution below.
fn conv_grads<B: Kernels>(
    [id_x, id_w]: [Option<NodeId>; 2],
    (x, w, dy): (FloatTensor<B>, FloatTensor<B>, &FloatTensor<B>),
    options: ConvOptions<2>,
    grads: &mut Gradients,
) {
    if let Some(id) = id_x {
        let dx = B::conv_grad_x(x.clone(), w.clone(), dy.clone(), options.clone());
        grads.register::<B>(id, dx);
    }
    if let Some(id) = id_w {
        grads.register::<B>(id, B::conv_grad_w(x, w, dy.clone(), options));
    }
}

type ConvState = (NodeId, NodeId, ConvOptions<2>);

#[derive(Debug)]
struct Conv;

impl<B: Kernels> Backward<B, 2> for Conv {
    type State = ConvState;

    fn backward(
        self,
        ops: Ops<ConvState, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let dy = grads.consume::<B>(&ops.node);
        let (x_state, w_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
        let ids = ops.parents.map(|p| p.map(|node| node.id));
        conv_grads::<B>(ids, (x, w, &dy), options, grads);
    }
}

#[derive(Debug)]
struct ConvWithBias;

impl<B: Kernels> Backward<B, 3> for ConvWithBias {
    type State = ConvState;

    fn backward(
        self,
        ops: Ops<ConvState, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x_state, w_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
        if let Some(node) = node_b {
            grads.register::<B>(node.id, B::conv_grad_bias(dy.clone()));
        }
        let ids = [node_x, node_w].map(|p| p.map(|node| node.id));
        conv_grads::<B>(ids, (x, w, &dy), options, grads);
    }
}

/// y = Aᵀx for the convolution A with the same weight: ∂x = A(∂y), and ∂w is the
/// convolution's weight gradient with the roles of input and output swapped.
#[derive(Debug)]
struct Deconv;

impl<B: Kernels> Backward<B, 2> for Deconv {
    type State = ConvState;

    fn backward(
        self,
        ops: Ops<ConvState, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_w] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x_state, w_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let w = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w_state);
        if let Some(node) = node_x {
            grads.register::<B>(
                node.id,
                B::conv(dy.clone(), w.clone(), None, options.clone()),
            );
        }
        if let Some(node) = node_w {
            grads.register::<B>(node.id, B::conv_grad_w(dy, w, x, options));
        }
    }
}

/// y = upsample(x): ∂x sums each 2×2 block of ∂y, four times its mean.
#[derive(Debug)]
struct Upsample2;

impl<B: Kernels> Backward<B, 1> for Upsample2 {
    type State = ();

    fn backward(self, ops: Ops<(), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::float_mul_scalar(B::mean2(dy), 4.0.into()));
        }
    }
}

/// y = the means of 2×2 blocks of x (even sides): ∂x spreads each ∂y over its block,
/// a quarter to each pixel.
#[derive(Debug)]
struct Mean2;

impl<B: Kernels> Backward<B, 1> for Mean2 {
    type State = ();

    fn backward(self, ops: Ops<(), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::upsample2(B::float_mul_scalar(dy, 0.25.into())));
        }
    }
}

impl<B: Kernels, C: CheckpointStrategy> Kernels for Autodiff<B, C> {
    const FUSED: bool = B::FUSED;

    fn upsample2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Upsample2
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateless(B::upsample2(x.primitive))
    }

    fn mean2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let [_, _, h, w] = x.shape().dims::<4>();
        if h % 2 == 1 || w % 2 == 1 {
            // The odd last row or column takes no gradient: burn's pool knows that.
            return Self::avg_pool2d(x, [2, 2], [2, 2], [0, 0], true, false);
        }
        Mean2
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateless(B::mean2(x.primitive))
    }

    fn conv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let Some(bias) = bias else {
            let nodes = [x.node.clone(), w.node.clone()];
            return match Conv.prepare::<C>(nodes).compute_bound().stateful() {
                OpsKind::Tracked(mut prep) => {
                    let state = (prep.checkpoint(&x), prep.checkpoint(&w), options.clone());
                    prep.finish(state, B::conv(x.primitive, w.primitive, None, options))
                }
                OpsKind::UnTracked(prep) => {
                    prep.finish(B::conv(x.primitive, w.primitive, None, options))
                }
            };
        };
        let nodes = [x.node.clone(), w.node.clone(), bias.node.clone()];
        let y = |x: FloatTensor<B>, w, b, options| B::conv(x, w, Some(b), options);
        match ConvWithBias.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&w), options.clone());
                prep.finish(state, y(x.primitive, w.primitive, bias.primitive, options))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(y(x.primitive, w.primitive, bias.primitive, options))
            }
        }
    }

    fn deconv(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let nodes = [x.node.clone(), w.node.clone()];
        match Deconv.prepare::<C>(nodes).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&w), options.clone());
                prep.finish(state, B::deconv(x.primitive, w.primitive, options))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::deconv(x.primitive, w.primitive, options)),
        }
    }

    fn affine(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Affine;

        impl<B: Kernels> Backward<B, 3> for Affine {
            type State = (burn_autodiff::NodeId, burn_autodiff::NodeId);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_a, node_b] = ops.parents;
                let dy = grads.consume::<B>(&ops.node);
                let (x_state, a_state) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                let a = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(a_state);
                let (dx, da, db) = B::affine_grads(x, a, dy);
                for (node, grad) in [(node_x, dx), (node_a, da), (node_b, db)] {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }

        match Affine
            .prepare::<C>([x.node.clone(), a.node.clone(), b.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let a_state = prep.checkpoint(&a);
                let y = B::affine(x.primitive, a.primitive, b.primitive);
                prep.finish((x_state, a_state), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::affine(x.primitive, a.primitive, b.primitive))
            }
        }
    }
}
