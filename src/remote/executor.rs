//! `pipe run --remote NAME [--push]`: a stage that must run is first looked up on the
//! remote by its key, as Bazel's remote cache and DVC's run-cache do, and pulled
//! instead of computed when the remote has it; with `--push`, what is computed is
//! pushed as soon as it is.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use contract::Progress;

use super::{Meter, Remote, RemoteError};
use crate::schedule::{ExecError, Executed, Executor, Job};
use crate::store::Store;

/// An executor that asks a remote before the one it wraps.
pub struct RemoteFirst<'a> {
    pub remote: &'a Remote,
    pub store: &'a Store,
    pub inner: &'a dyn Executor,
    /// Push each computed result.
    pub push: bool,
    /// Pushes that failed, stage by stage: the results are valid here, so the run goes
    /// on; the caller reports them (and `pipe push` sends them later).
    pub push_failures: Mutex<Vec<(String, RemoteError)>>,
}

impl<'a> RemoteFirst<'a> {
    pub fn new(remote: &'a Remote, store: &'a Store, inner: &'a dyn Executor, push: bool) -> Self {
        RemoteFirst {
            remote,
            store,
            inner,
            push,
            push_failures: Mutex::new(Vec::new()),
        }
    }
}

impl Executor for RemoteFirst<'_> {
    fn execute(
        &self,
        job: &Job,
        gpus: &[u32],
        progress: &dyn Progress,
    ) -> Result<Executed, ExecError> {
        let meter = ProgressMeter {
            progress,
            message: format!("pulling from remote `{}`", self.remote.name()),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
        };
        if !job.force {
            let pulled = self
                .remote
                .pull(self.store, &job.key, &meter)
                .map_err(|e| ExecError::Failed {
                    message: e.to_string(),
                    log: None,
                })?;
            if let Some(record) = pulled {
                return Ok(Executed::Pulled(Box::new(record)));
            }
        }
        let executed = self.inner.execute(job, gpus, progress)?;
        if let (true, Executed::Ran(record)) = (self.push, &executed) {
            progress.report(
                0,
                None,
                &format!("pushing to remote `{}`", self.remote.name()),
            );
            let pushed =
                self.remote
                    .push(self.store, std::slice::from_ref(&**record), &super::Silent);
            if let Err(e) = pushed {
                tracing::warn!(stage = %job.stage, "push failed: {e}");
                let mut failures = self.push_failures.lock().expect("not poisoned");
                failures.push((job.stage.clone(), e));
            }
        }
        Ok(executed)
    }

    fn scheduler_calls(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.inner.scheduler_calls()
    }
}

/// Bytes pulled, as a stage's progress.
struct ProgressMeter<'a> {
    progress: &'a dyn Progress,
    message: String,
    done: AtomicU64,
    total: AtomicU64,
}

impl Meter for ProgressMeter<'_> {
    fn grow(&self, bytes: u64) {
        self.total.fetch_add(bytes, Ordering::Relaxed);
    }

    fn advance(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let total = self.total.load(Ordering::Relaxed);
        self.progress.report(done, Some(total), &self.message);
    }
}
