//! What a `Report` stage renders: tables of metrics over `ForEach` variables, and SVG
//! charts of training curves.

pub mod chart;
pub mod grid;
pub mod panel;
pub mod protocol;
pub mod series;
pub mod table;

/// Text made safe for HTML and SVG, in elements and in quoted attributes.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A table names a `ForEach` variable one of its stages lacks.
    #[error("{message}")]
    Variable { message: String },
}
