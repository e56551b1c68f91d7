//! How the errors of the domain modules cross the stage contract: a cancellation stays a
//! cancellation (the engine records an interruption, not a failure); anything else is a
//! failure whose message keeps its cause.

use contract::StageError;

use data::DataError;
use gan::GanError;
use gan::classifier::FitError;
use gan::train::TrainError;
use kernels::device::DeviceError;
use metrics::MetricError;
use report::ReportError;

/// Whatever a kind's work can fail with.
#[derive(Debug, thiserror::Error)]
pub enum KindError {
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Metric(#[from] MetricError),
    #[error(transparent)]
    Gan(#[from] GanError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Fit(#[from] FitError),
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A domain error with what the kind was doing when it happened.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<KindError>,
    },
}

impl KindError {
    fn is_cancelled(&self) -> bool {
        match self {
            KindError::Stage(e) => e.is_cancelled(),
            KindError::Data(DataError::Cancelled)
            | KindError::Metric(MetricError::Cancelled)
            | KindError::Train(TrainError::Cancelled { .. })
            | KindError::Fit(FitError::Cancelled) => true,
            KindError::Train(TrainError::Evaluation { source, .. }) => {
                matches!(source, MetricError::Cancelled)
            }
            KindError::Context { source, .. } => source.is_cancelled(),
            _ => false,
        }
    }
}

impl From<KindError> for StageError {
    fn from(e: KindError) -> StageError {
        match e {
            e if e.is_cancelled() => StageError::Cancelled,
            KindError::Stage(e) => e,
            other => StageError::caused(other.to_string(), other),
        }
    }
}

/// `.context(...)` on a domain result: says what was being done.
pub trait ResultExt<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, KindError>;
}

impl<T, E: Into<KindError>> ResultExt<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, KindError> {
        self.map_err(|e| KindError::Context {
            context: what(),
            source: Box::new(e.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellations_stay_cancellations_through_context() {
        let e: StageError = Err::<(), _>(MetricError::Cancelled)
            .context(|| "Inception features".into())
            .unwrap_err()
            .into();
        assert!(e.is_cancelled());
        let e: StageError = KindError::from(MetricError::Invalid("2 images".into())).into();
        assert!(!e.is_cancelled());
        assert_eq!(e.chain(), "2 images");
        let e: StageError = Err::<(), _>(MetricError::Invalid("too few".into()))
            .context(|| "`stats`".into())
            .unwrap_err()
            .into();
        assert_eq!(e.chain(), "`stats`: too few");
    }
}
