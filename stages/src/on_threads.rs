use contract::{Context, Declaration, Kind, Outcome, RenderError, StageError};

/// A kind whose parallel work (burn-flex, faer, our kernels: all rayon) runs on a pool
/// of `ctx.threads` threads. Stages running side by side then each keep to their share
/// of the cores: small tensor operations split over more threads than that spend more
/// time handing work over than computing.
pub struct OnThreads<K>(pub K);

impl<K: Kind> Kind for OnThreads<K> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn version(&self) -> u32 {
        self.0.version()
    }

    fn fields(&self) -> &'static [&'static str] {
        self.0.fields()
    }

    fn declare(&self, params: &ronspan::Value) -> Result<Declaration, ronspan::Error> {
        self.0.declare(params)
    }

    fn render(&self, params: &serde_json::Value) -> Result<String, RenderError> {
        self.0.render(params)
    }

    fn explain(&self) -> explain::Shape {
        self.0.explain()
    }

    fn run(&self, params: &serde_json::Value, ctx: &Context) -> Result<Outcome, StageError> {
        match rayon::ThreadPoolBuilder::new()
            .num_threads(ctx.threads.max(1))
            .thread_name(|i| format!("stage-{i}"))
            .build()
        {
            Ok(pool) => pool.install(|| self.0.run(params, ctx)),
            Err(e) => {
                tracing::warn!("no thread pool for the stage ({e}); using the shared one");
                self.0.run(params, ctx)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports the threads its parallel work would get.
    struct Threads;

    impl Kind for Threads {
        fn name(&self) -> &'static str {
            "Threads"
        }
        fn version(&self) -> u32 {
            1
        }
        fn fields(&self) -> &'static [&'static str] {
            &[]
        }
        fn declare(&self, _: &ronspan::Value) -> Result<Declaration, ronspan::Error> {
            unreachable!("not declared in this test")
        }
        fn run(&self, _: &serde_json::Value, _: &Context) -> Result<Outcome, StageError> {
            let mut outcome = Outcome::default();
            let threads = rayon::current_num_threads() as f64;
            outcome.metrics.insert("threads".into(), threads);
            Ok(outcome)
        }
        fn render(&self, _: &serde_json::Value) -> Result<String, RenderError> {
            unreachable!("not rendered in this test")
        }
        fn explain(&self) -> explain::Shape {
            unreachable!("not explained in this test")
        }
    }

    struct Quiet;

    impl contract::Progress for Quiet {
        fn report(&self, _: u64, _: Option<u64>, _: &str) {}
    }

    #[test]
    fn a_stage_runs_on_its_share_of_threads() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let inputs = Default::default();
        for threads in [1, 3] {
            let ctx = Context {
                stage: "threads",
                out: dir.path(),
                work: dir.path(),
                base_dir: dir.path(),
                inputs: &inputs,
                gpus: &[],
                threads,
                log: &log,
                cancel: &cancel,
                progress: &Quiet,
            };
            let outcome = OnThreads(Threads)
                .run(&serde_json::Value::Null, &ctx)
                .unwrap();
            assert_eq!(outcome.metrics["threads"], threads as f64);
        }
    }
}
