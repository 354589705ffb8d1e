//! One module per subcommand: each calls the library and hands its result to a renderer.

pub mod alerts;
pub mod chart;
pub mod codes;
pub mod consume;
pub mod demo;
pub mod export;
pub mod gbcs;
pub mod generate;
pub mod migration;
pub mod offenders;
pub mod ota;
pub mod report;
pub mod serve;
pub mod spikes;
pub mod whatif;

pub use super::{Status, stdout_write};
