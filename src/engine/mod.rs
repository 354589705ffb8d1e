//! The engine: runs folds over the inputs with every core, under the user's selection.
//!
//! `scan` glues sources to decoders and folds; `filter` holds the shared filters every
//! analysis command takes; `run` is the `Engine` a command answers its queries on (it
//! implements `analyze::reader::Reader`, so analyses that need a second read can ask for one).

pub mod filter;
mod run;
pub mod scan;

pub use filter::Filters;
pub use run::{Engine, EngineError, Watch};
