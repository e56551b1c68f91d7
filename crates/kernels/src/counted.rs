//! A backend that counts what a GPU pays for: every operation launched and every
//! tensor read back to the host (or written from it), while burn-flex computes.
//!
//! burn's router sends each operation as its IR ([`OperationIr`]) to a runner that
//! executes it on burn-flex; our client counts on the way. The [`Kernels`] on it are
//! burn's own operations, as on CUDA, so the counts are those of the GPU path, before
//! fusion merges element-wise chains. A dropped tensor is not an operation (the router
//! sends it as one, to free the buffer) and is not counted.
//!
//! The counters are global: one process counts one thing (a test of its own, a bench).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use burn::backend::Flex;
use burn::backend::flex::FlexDevice;
use burn::tensor::{DType, Shape, TensorData};
use burn_backend::DTypeUsageSet;
use burn_backend::backend::ExecutionError;
use burn_ir::{BackendIr, OperationIr, TensorId, TensorIr};
use burn_router::{
    BackendRouter, MultiBackendBridge, RouterTensor, Runner, RunnerChannel, RunnerClient,
};

use crate::Kernels;

/// burn-flex behind a counting router.
pub type Counted = BackendRouter<Channel>;

impl Kernels for Counted {}

/// What was counted since the last [`reset`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Operations launched, forward and backward.
    pub operations: u64,
    /// Tensors read back to the host (each a device synchronisation on a GPU).
    pub reads: u64,
    /// Tensors made from host data (each a transfer to a GPU).
    pub writes: u64,
    /// Operations by kind (`Conv2d`, `Add`, `Reshape`, …).
    pub by_kind: BTreeMap<String, u64>,
    /// Where each read came from (the callers outside burn and the standard library),
    /// when [`trace_reads`] is on.
    pub read_sites: Vec<String>,
}

static OPERATIONS: AtomicU64 = AtomicU64::new(0);
static READS: AtomicU64 = AtomicU64::new(0);
static WRITES: AtomicU64 = AtomicU64::new(0);
static BY_KIND: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());
static TRACE: AtomicBool = AtomicBool::new(false);
static READ_SITES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Whether each read records its callers (a backtrace: slow, for finding a read).
pub fn trace_reads(on: bool) {
    TRACE.store(on, Ordering::Relaxed);
}

/// The innermost callers in a backtrace whose source is neither a dependency, the
/// standard library nor this file: `function (file:line)`.
fn callers(trace: &std::backtrace::Backtrace) -> String {
    let text = trace.to_string();
    let mut symbol = "";
    let mut ours = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(place) = line.strip_prefix("at ") {
            let foreign = ["/.cargo/", "/rustc/", "/rustlib/", file!()];
            if !foreign.iter().any(|f| place.contains(f)) {
                let name = symbol.split('<').next().unwrap_or(symbol);
                ours.push(format!("{name} ({place})"));
            }
        } else if let Some((_, name)) = line.split_once(": ") {
            symbol = name;
        }
    }
    ours.truncate(4);
    ours.join(" ← ")
}

/// The counts so far.
pub fn counts() -> Counts {
    Counts {
        operations: OPERATIONS.load(Ordering::Relaxed),
        reads: READS.load(Ordering::Relaxed),
        writes: WRITES.load(Ordering::Relaxed),
        by_kind: BY_KIND.lock().unwrap().clone(),
        read_sites: READ_SITES.lock().unwrap().clone(),
    }
}

/// Starts counting from zero.
pub fn reset() {
    OPERATIONS.store(0, Ordering::Relaxed);
    READS.store(0, Ordering::Relaxed);
    WRITES.store(0, Ordering::Relaxed);
    BY_KIND.lock().unwrap().clear();
    READ_SITES.lock().unwrap().clear();
}

/// The operation's name: its IR variant, without the descriptor it carries.
fn kind(op: &OperationIr) -> String {
    let inner = match op {
        OperationIr::BaseFloat(op) | OperationIr::BaseInt(op) | OperationIr::BaseBool(op) => {
            format!("{op:?}")
        }
        OperationIr::NumericFloat(_, op) | OperationIr::NumericInt(_, op) => format!("{op:?}"),
        OperationIr::Bool(op) => format!("{op:?}"),
        OperationIr::Int(op) => format!("{op:?}"),
        OperationIr::Float(_, op) => format!("{op:?}"),
        OperationIr::Module(op) => format!("{op:?}"),
        OperationIr::Init(_) => "Init".into(),
        OperationIr::Custom(op) => format!("Custom {}", op.id),
        OperationIr::Drop(_) => "Drop".into(),
        // With burn-ir's `distributed` feature, collective operations.
        #[allow(unreachable_patterns)]
        _ => format!("{op:?}"),
    };
    let end = inner
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ' '))
        .unwrap_or(inner.len());
    inner[..end].trim().to_string()
}

/// The router's client: burn's runner on burn-flex, counted.
#[derive(Clone, Debug)]
pub struct Client(Runner<Flex>);

impl RunnerClient for Client {
    type Device = FlexDevice;

    fn register_op(&self, op: OperationIr) {
        if !matches!(op, OperationIr::Drop(_)) {
            OPERATIONS.fetch_add(1, Ordering::Relaxed);
            *BY_KIND.lock().unwrap().entry(kind(&op)).or_default() += 1;
        }
        self.0.register_op(op)
    }

    fn read_tensor_async(
        &self,
        tensor: TensorIr,
    ) -> burn_std::future::DynFut<Result<TensorData, ExecutionError>> {
        READS.fetch_add(1, Ordering::Relaxed);
        if TRACE.load(Ordering::Relaxed) {
            let sites = callers(&std::backtrace::Backtrace::force_capture());
            READ_SITES.lock().unwrap().push(sites);
        }
        self.0.read_tensor_async(tensor)
    }

    fn sync(&self) -> Result<(), ExecutionError> {
        self.0.sync()
    }

    fn create_empty_handle(&self) -> TensorId {
        self.0.create_empty_handle()
    }

    fn register_tensor_data(&self, data: TensorData) -> RouterTensor<Self> {
        WRITES.fetch_add(1, Ordering::Relaxed);
        let ir = self.0.register_tensor_data_desc(data);
        RouterTensor::new(ir.id, ir.shape, ir.dtype, self.clone())
    }

    fn device(&self) -> FlexDevice {
        self.0.device()
    }

    fn seed(&self, seed: u64) {
        self.0.seed(seed)
    }

    fn dtype_usage(&self, dtype: DType) -> DTypeUsageSet {
        self.0.dtype_usage(dtype)
    }
}

/// The router's channel to the one runner.
#[derive(Clone, Debug)]
pub struct Channel;

impl RunnerChannel for Channel {
    type Device = FlexDevice;
    type Bridge = Channel;
    type Client = Client;
    type FloatElem = f32;
    type IntElem = i32;
    type BoolElem = bool;

    fn name(_: &FlexDevice) -> String {
        "counted<flex>".into()
    }

    fn init_client(device: &FlexDevice) -> Client {
        Client(Runner::new(*device))
    }

    fn get_tensor_handle(tensor: &TensorIr, client: &Client) -> <Flex as BackendIr>::Handle {
        client.0.get_tensor_handle(tensor)
    }

    fn register_tensor(
        client: &Client,
        handle: <Flex as BackendIr>::Handle,
        shape: Shape,
        dtype: DType,
    ) -> RouterTensor<Client> {
        client
            .0
            .register_tensor(handle, shape, dtype, client.clone())
    }
}

/// One backend on one device: nothing to move between.
impl MultiBackendBridge for Channel {
    type TensorHandle = <Flex as BackendIr>::Handle;
    type Device = FlexDevice;

    fn change_backend_float(
        handle: Self::TensorHandle,
        _: Shape,
        _: &FlexDevice,
    ) -> Self::TensorHandle {
        handle
    }

    fn change_backend_int(
        handle: Self::TensorHandle,
        _: Shape,
        _: &FlexDevice,
    ) -> Self::TensorHandle {
        handle
    }

    fn change_backend_bool(
        handle: Self::TensorHandle,
        _: Shape,
        _: &FlexDevice,
    ) -> Self::TensorHandle {
        handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::prelude::*;

    /// The counters are global: the one test of this module that counts.
    #[test]
    fn counts_operations_reads_and_writes_as_they_happen() {
        reset();
        let device = FlexDevice;
        let x = Tensor::<Autodiff<Counted>, 2>::from_data([[1.0f32, 2.0], [3.0, 4.0]], &device)
            .require_grad();
        let written = counts();
        assert_eq!(written.writes, 1, "{written:?}");
        assert_eq!(written.reads, 0);

        let y = (x.clone() * x.clone()).sum();
        let grads = y.backward();
        let ran = counts();
        assert!(ran.operations >= 3, "mul, sum and their backward: {ran:?}");
        assert!(ran.by_kind.contains_key("Mul"), "{:?}", ran.by_kind);
        assert_eq!(ran.reads, 0, "nothing read yet: {ran:?}");

        let dx: Vec<f32> = x.grad(&grads).unwrap().into_data().to_vec().unwrap();
        assert_eq!(dx, [2.0, 4.0, 6.0, 8.0]);
        assert_eq!(counts().reads, 1);
        trace_reads(true);
        let _ = y.into_scalar();
        let traced = counts();
        trace_reads(false);
        assert_eq!(traced.reads, 2);
        assert!(
            traced.read_sites[0].contains("counts_operations_reads_and_writes"),
            "{:?}",
            traced.read_sites
        );
        reset();
        assert_eq!(counts(), Counts::default());
    }
}
