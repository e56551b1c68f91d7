//! What a `Report` stage renders: tables of metrics over `ForEach` variables, and
//! line charts of training curves.

pub mod plot;
pub mod table;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A table names a `ForEach` variable one of its stages lacks.
    #[error("{message}")]
    Variable { message: String },
}
