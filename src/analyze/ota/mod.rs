//! OTA firmware rollout analysis: how a campaign is going, and which devices will never take it.
//!
//! Evidence comes from two places: service-request outcome records (stage, outcome, reason,
//! firmware version, attempt; `outcomes.rs`) and the firmware family of device alerts in the
//! alert stream (8F8A/8F89 transfer, 8F72/8F1C verification, 8F66/8F67 activation, 8F43 the
//! new version running; collected by a tap on the alert fold, `events.rs`). Each targeted
//! device's events are put in time order and judged once (`device.rs`), so out-of-order,
//! duplicated and missing events never count a device twice; the funnel, failure Pareto and
//! the lists are aggregates of devices, not attempts (`funnel.rs`). Guard rails replay the
//! failure rate per region and model day by day with a Wilson bound (`guard.rs`), and the
//! firmware's effect on every alert code is a difference in differences (`effect.rs`).
//! `run.rs` runs the whole analysis into one typed `OtaResult`.

pub mod campaign;
pub mod device;
pub mod effect;
pub mod events;
pub mod funnel;
pub mod guard;
pub mod outcomes;
pub mod run;
