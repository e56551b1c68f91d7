//! What a `Report` stage renders: tables of metrics over `ForEach` variables, and
//! line charts of training curves.

pub mod plot;
pub mod table;
