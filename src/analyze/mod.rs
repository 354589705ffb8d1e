//! Analyses: folds over the event stream that merge across workers.

pub mod alerts;
pub mod distinct;
pub mod totals;
