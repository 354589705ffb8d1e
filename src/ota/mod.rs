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

pub mod campaign;
pub mod device;
pub mod effect;
pub mod events;
pub mod funnel;
pub mod guard;
pub mod outcomes;

/// Small strings (reasons, versions, models) stored once and referred to by index; index 0 is
/// the empty string ("none" / "unknown").
#[derive(Clone, Debug)]
pub struct Interner {
    pub names: Vec<String>,
    index: rustc_hash::FxHashMap<String, u16>,
}

impl Default for Interner {
    fn default() -> Self {
        let mut i = Interner {
            names: Vec::new(),
            index: Default::default(),
        };
        i.id("");
        i
    }
}

impl Interner {
    /// The index of `s` (trimmed), added if new. Past 65,535 names, everything else is 0.
    pub fn id(&mut self, s: &str) -> u16 {
        let s = s.trim();
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        if self.names.len() > u16::MAX as usize {
            return 0;
        }
        let i = self.names.len() as u16;
        self.names.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }

    pub fn get(&self, s: &str) -> Option<u16> {
        self.index.get(s.trim()).copied()
    }

    pub fn name(&self, i: u16) -> &str {
        self.names.get(i as usize).map(String::as_str).unwrap_or("")
    }
}
