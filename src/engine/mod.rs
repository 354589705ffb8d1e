//! The engine: reads inputs with every core and runs folds over them.

pub mod pipeline;
pub mod scan;
