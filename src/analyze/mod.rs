//! Analyses: folds over the event stream that merge across workers, and what is computed from
//! their results.

pub mod alerts;
pub mod briefing;
pub mod change;
pub mod compare;
mod dense;
pub mod distinct;
pub mod firmware;
pub mod group;
pub mod labels;
pub mod migration;
pub mod offenders;
pub mod ota;
pub mod overview;
pub mod poisson;
pub mod reader;
pub mod spikes;
pub mod stats;
pub mod totals;
pub mod trend;
pub mod whatif;
