//! Stage kinds, one module each.

pub mod command;
