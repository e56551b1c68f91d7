use std::error::Error;

/// Why a stage did not produce its outputs. The engine records `Failed` and `Invalid`
/// as failures (never as cached results) and `Cancelled` as an interruption: nothing is
/// recorded, and the next run starts the stage again from its work folder.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// Stopped because the run was interrupted (Ctrl-C, a signal): not a failure.
    #[error("cancelled")]
    Cancelled,
    /// An input the stage cannot use: an upstream output or an external file that is not
    /// what the kind expects.
    #[error("{0}")]
    Invalid(String),
    /// The work failed: what was being done, and why.
    #[error("{context}")]
    Failed {
        context: String,
        #[source]
        cause: Option<Box<dyn Error + Send + Sync>>,
    },
}

impl StageError {
    /// A failure described by its message alone.
    pub fn failed(context: impl Into<String>) -> StageError {
        StageError::Failed {
            context: context.into(),
            cause: None,
        }
    }

    /// A failure while doing `context`, caused by `cause`.
    pub fn caused(
        context: impl Into<String>,
        cause: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> StageError {
        StageError::Failed {
            context: context.into(),
            cause: Some(cause.into()),
        }
    }

    /// For `map_err`: an I/O error while doing `context`.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StageError {
        let context = context.into();
        move |source| StageError::caused(context, source)
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self, StageError::Cancelled)
    }

    /// The message with every cause after it, `context: cause: cause's cause`.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = self.source();
        while let Some(cause) = source {
            let line = cause.to_string();
            // Errors that already print their cause are not repeated.
            if !text.ends_with(&line) {
                text.push_str(": ");
                text.push_str(&line);
            }
            source = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::StageError;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = StageError::caused("reading `images.pack`", Outer(io()));
        assert_eq!(error.chain(), "reading `images.pack`: outer: no such file");
        assert_eq!(error.to_string(), "reading `images.pack`");
        let plain = StageError::io("writing")(io());
        assert_eq!(plain.chain(), "writing: no such file");
        assert_eq!(StageError::failed("bad").chain(), "bad");
        assert!(StageError::Cancelled.is_cancelled());
    }
}
