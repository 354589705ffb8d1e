//! Live aggregates: alerts per day x CSP region x code x device type, with distinct alerting
//! devices and rates per 1,000 installed devices, updated as messages are accepted (and rebuilt
//! from the log on restart). A `DashMap` lets every request update its own groups without a
//! global lock.

use crate::decode::{Collect, duis};
use crate::inventory::{DenomDims, DenomKey, Denominators, Inventory};
use crate::model::time::{day_of, format_day};
use crate::model::{AlertCode, Day, DeviceType, Event, Region};
use dashmap::DashMap;

/// Days a message id is remembered for duplicate detection (redeliveries come within hours).
pub const DEDUP_DAYS: Day = 7;
use rustc_hash::FxHashSet;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub day: Day,
    pub region: Region,
    pub code: AlertCode,
    pub device_type: DeviceType,
}

#[derive(Default)]
pub struct Group {
    pub alerts: u64,
    pub devices: FxHashSet<u64>,
}

/// Counters and groups shared by every request.
#[derive(Default)]
pub struct Live {
    pub groups: DashMap<Key, Group>,
    /// Message ids seen (hash of ResponseID/RequestID) and their day: a redelivery is
    /// acknowledged and counted once. Ids older than `DEDUP_DAYS` before the newest day are
    /// forgotten, so memory follows the traffic of a week, not all traffic ever received.
    pub seen: DashMap<u64, Day>,
    pub newest_day: std::sync::atomic::AtomicI64,
    pub accepted_messages: AtomicU64,
    pub accepted_alerts: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub non_alert: AtomicU64,
    pub unknown_devices: AtomicU64,
    pub busy: AtomicU64,
    pub torn_records: AtomicU64,
    /// Rejected bodies not quarantined (the quarantine would pass `--max-log-bytes`).
    pub quarantine_full: AtomicU64,
}

/// What one body holds.
pub struct Decoded {
    pub events: Vec<Event>,
    pub rejects: Vec<(u64, String)>,
}

pub fn decode(body: &[u8]) -> Decoded {
    let mut c = Collect::default();
    duis::decode(body, 1, 0, &mut c);
    Decoded {
        events: c.events,
        rejects: c.rejects,
    }
}

impl Live {
    /// Whether every message in `events` was seen before (then the body is a redelivery).
    pub fn all_seen(&self, events: &[Event]) -> bool {
        !events.is_empty()
            && events
                .iter()
                .all(|e| e.message_id != 0 && self.seen.contains_key(&e.message_id))
    }

    /// Counts the events of an accepted (durable) body; returns (new, duplicates).
    pub fn add(&self, events: &[Event], inv: &Inventory) -> (u64, u64) {
        let (mut new, mut dup) = (0, 0);
        for ev in events {
            let day = day_of(ev.ts);
            if ev.message_id != 0 && self.seen.insert(ev.message_id, day).is_some() {
                dup += 1;
                continue;
            }
            self.newest_day.fetch_max(day as i64, Ordering::Relaxed);
            if self.accepted_messages.load(Ordering::Relaxed) % 100_000 == 99_999 {
                self.prune();
            }
            new += 1;
            self.accepted_messages.fetch_add(1, Ordering::Relaxed);
            let Some(code) = ev.code.filter(|_| ev.kind.is_alert()) else {
                self.non_alert.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let info = ev.device.and_then(|d| inv.lookup(d));
            if info.is_none() {
                self.unknown_devices.fetch_add(1, Ordering::Relaxed);
            }
            let key = Key {
                day: day_of(ev.ts),
                region: info.map_or(ev.attrs.region.unwrap_or(Region::Unknown), |i| i.region),
                code,
                device_type: info
                    .map_or(ev.attrs.device_type.unwrap_or(DeviceType::Unknown), |i| {
                        i.device_type
                    }),
            };
            let mut g = self.groups.entry(key).or_default();
            g.alerts += ev.count as u64;
            if let Some(d) = ev.device {
                g.devices.insert(d.0);
            }
            self.accepted_alerts
                .fetch_add(ev.count as u64, Ordering::Relaxed);
        }
        self.duplicates.fetch_add(dup, Ordering::Relaxed);
        (new, dup)
    }

    /// Forgets message ids more than `DEDUP_DAYS` older than the newest day seen.
    pub fn prune(&self) {
        let horizon = self.newest_day.load(Ordering::Relaxed) - DEDUP_DAYS as i64;
        self.seen.retain(|_, d| *d as i64 >= horizon);
    }

    /// Rows sorted by key, with installed devices and rates.
    pub fn rows(&self, denoms: &Denominators) -> Vec<Value> {
        let mut keys: Vec<Key> = self.groups.iter().map(|e| *e.key()).collect();
        keys.sort();
        keys.iter()
            .filter_map(|k| {
                let g = self.groups.get(k)?;
                let installed = denoms.installed(&denom_key(k), k.day);
                let per_1000 = installed.filter(|&n| n > 0).map(|n| g.alerts as f64 * 1000.0 / n as f64);
                Some(json!({
                    "day": format_day(k.day), "region": k.region.name(), "alert_code": k.code.to_string(),
                    "device_type": k.device_type.name(), "alerts": g.alerts, "alerting_devices": g.devices.len(),
                    "installed_devices": installed, "per_1000": per_1000,
                }))
            })
            .collect()
    }

    /// Per region and day: alerts and alerts per 1,000 installed devices (every type).
    pub fn by_region(&self, region_denoms: &Denominators) -> Vec<Value> {
        let mut acc: std::collections::BTreeMap<(Region, Day), u64> = Default::default();
        for e in self.groups.iter() {
            *acc.entry((e.key().region, e.key().day)).or_default() += e.value().alerts;
        }
        acc.into_iter()
            .map(|((r, d), alerts)| {
                let key = DenomKey {
                    region: Some(r),
                    ..Default::default()
                };
                let installed = region_denoms.installed(&key, d);
                json!({
                    "region": r.name(), "day": format_day(d), "alerts": alerts,
                    "per_1000": installed.filter(|&n| n > 0).map(|n| alerts as f64 * 1000.0 / n as f64),
                })
            })
            .collect()
    }
}

fn denom_key(k: &Key) -> DenomKey {
    DenomKey {
        region: Some(k.region),
        device_type: Some(k.device_type),
        ..Default::default()
    }
}

/// The denominators the live view needs: by region and type, and by region.
pub fn denominators(inv: &Inventory) -> (Denominators, Denominators) {
    (
        Denominators::build(
            inv,
            DenomDims {
                region: true,
                device_type: true,
                ..Default::default()
            },
        ),
        Denominators::build(
            inv,
            DenomDims {
                region: true,
                ..Default::default()
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeviceId;

    fn ev(day: i64, id: u64) -> Event {
        let mut e = Event::alert(day * 86_400_000, DeviceId(1), AlertCode::device(0x8F35));
        e.message_id = id;
        e
    }

    #[test]
    fn duplicates_count_once_and_old_ids_are_forgotten() {
        let live = Live::default();
        let inv = Inventory::default();
        assert_eq!(live.add(&[ev(100, 1), ev(100, 1)], &inv), (1, 1));
        assert!(live.all_seen(&[ev(100, 1)]));
        live.add(&[ev(110, 2)], &inv);
        live.prune();
        // Day 100 is more than 7 days before day 110: forgotten; day 110 remembered.
        assert!(!live.all_seen(&[ev(100, 1)]));
        assert!(live.all_seen(&[ev(110, 2)]));
        assert_eq!(live.accepted_alerts.load(Ordering::Relaxed), 2);
    }
}
