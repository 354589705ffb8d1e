//! The alert stream, one day at a time: base rates per code by device type, generation, model
//! and firmware; weekday and hour patterns; noisy devices; the regional incident; the OTA
//! campaign's alerts; devices missing from the inventory. A day's records are generated, sorted
//! by time and handed to the writer, so memory holds one day, never the whole stream.

use super::fleet::{Device, Fleet, NO_HUB, device_id, model_index};
use super::ota::{EFFECT_CODE, EFFECT_FACTOR, OtaPlan, response_code};
use super::rng::Rng;
use crate::model::time::{day_start, format_day, weekday};
use crate::model::{AlertCode, Day, DeviceType, Generation, Millis, Region};
use serde::Serialize;

/// One alert record to write.
#[derive(Clone, Copy, Debug)]
pub struct Rec {
    pub ts: Millis,
    pub id: u64,
    pub code: AlertCode,
    /// Occurrences (throttled alerts stand for several).
    pub count: u32,
    /// Message counter (the third part of the DUIS ResponseID); equal for a redelivery.
    pub message: u64,
    pub device_type: DeviceType,
    /// GBCS response code of a firmware alert (0 success).
    pub response: u8,
    /// The device's region, `None` for a device missing from the inventory.
    pub region: Option<Region>,
}

use DeviceType::*;
use Generation::{Smets1 as S1, Smets2 as S2};

/// Base rates: alerts per device per day.
const RATES: &[(Generation, DeviceType, u16, f64)] = &[
    (S2, Esme, 0x8F57, 0.02),
    (S2, Esme, 0x8F35, 0.02),
    (S2, Esme, 0x8F3F, 0.004),
    (S2, Esme, 0x81B8, 0.006),
    (S2, Esme, 0x8F84, 0.05),
    (S2, Esme, 0x8002, 0.02),
    (S2, Gsme, 0x8F3F, 0.004),
    (S2, Gsme, 0x819D, 0.04),
    (S2, Chf, 0x8F12, 0.08),
    (S2, Chf, 0x8F20, 0.015),
    // Not in the catalogue: valid but unknown, kept and labelled.
    (S2, Chf, 0x8F85, 0.005),
    (S2, Gpf, 0x8071, 0.04),
    (S2, Ihd, 0x8183, 0.01),
    (S2, Ppmid, 0x8183, 0.01),
    (S1, Esme, 0x81B8, 0.25),
    (S1, Esme, 0x8F57, 0.02),
    (S1, Esme, 0x8F35, 0.02),
    (S1, Esme, 0x8F3F, 0.006),
    (S1, Gsme, 0x8F3F, 0.006),
];

/// DCC power-outage alerts (N24) per hub per day outside the incident.
const N24_RATE: f64 = 0.004;
pub const N24: AlertCode = AlertCode(1 << 16 | 24);

/// 81B8 concentrated in some models and firmware versions.
pub const HOT_81B8: &[(&str, Option<&str>, f64)] = &[
    ("S1-ELSTER-AS300", Some("1.2"), 5.0),
    ("S1-ELSTER-AS300", Some("1.3"), 2.0),
    ("S1-SECURE-LIB", None, 1.2),
    ("EDMI-ES2", Some("2.0.1"), 10.0),
];

const HOUR_WEIGHTS: [f64; 24] = [
    0.4, 0.3, 0.3, 0.3, 0.3, 0.4, 0.7, 1.0, 1.2, 1.3, 1.3, 1.3, 1.3, 1.3, 1.3, 1.3, 1.4, 1.5, 1.6,
    1.5, 1.3, 1.0, 0.8, 0.6,
];
const WEEKDAY_FACTOR: [f64; 7] = [1.0, 1.0, 1.0, 1.0, 1.0, 0.85, 0.8];

#[derive(Clone, Debug, Default, Serialize)]
pub struct IncidentTruth {
    pub region: String,
    pub day: String,
    pub start: String,
    pub end: String,
    pub hubs: usize,
    pub devices_on_hubs: usize,
    /// Records planted per code during the incident.
    pub records: std::collections::BTreeMap<String, usize>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NoisyTruth {
    pub device_id: String,
    pub model: String,
    pub code: String,
    pub records: u64,
    pub alerts: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Hot81b8 {
    pub model: String,
    pub firmware: Option<String>,
    pub multiplier: f64,
}

struct Class {
    code: u16,
    rate: f64,
    /// Device indexes sorted by install day, and those days.
    devices: Vec<u32>,
    installed: Vec<Day>,
}

pub struct Incident {
    pub region: Region,
    pub day: Day,
    pub start: Millis,
    pub end: Millis,
    pub hubs: Vec<u32>,
}

pub struct Noisy {
    pub device: u32,
    pub code: u16,
    pub mean: f64,
    pub records: u64,
    pub alerts: u64,
}

pub struct Stream<'a> {
    fleet: &'a Fleet,
    ota: &'a OtaPlan,
    classes: Vec<Class>,
    hubs: Vec<u32>,
    hub_days: Vec<Day>,
    pub incident: Incident,
    pub incident_truth: IncidentTruth,
    pub noisy: Vec<Noisy>,
    ghosts: Vec<u64>,
    rng: Rng,
    ota_cursor: usize,
}

fn multiplier(code: u16, d: &Device) -> f64 {
    if code != 0x81B8 {
        return 1.0;
    }
    HOT_81B8
        .iter()
        .find(|(m, fw, _)| d.model_spec().name == *m && fw.is_none_or(|f| f == d.firmware_name()))
        .map(|h| h.2)
        .unwrap_or(1.0)
}

/// The day of the incident, chosen before the stream (the migration plan's pacing cut
/// follows it).
pub fn incident_day(fleet: &Fleet, seed: u64) -> Day {
    let mut rng = Rng::fork(seed, "incident-day");
    let mut day = fleet.start + (fleet.days as Day * 55 / 100) + rng.range(-2, 2) as Day;
    while weekday(day) > 4 {
        day += 1;
    }
    day.min(fleet.end() - 1).max(fleet.start)
}

impl<'a> Stream<'a> {
    pub fn new(fleet: &'a Fleet, ota: &'a OtaPlan, seed: u64, incident_day: Day) -> Stream<'a> {
        let mut rng = Rng::fork(seed, "stream");
        // Classes: (code, model, firmware) groups of devices with one rate.
        let mut classes: Vec<Class> = Vec::new();
        let mut key_of: std::collections::BTreeMap<(u16, u8, u8), usize> = Default::default();
        for (i, d) in fleet.devices.iter().enumerate() {
            if !d.in_inventory() {
                continue;
            }
            for &(g, t, code, rate) in RATES {
                if g != d.generation || t != d.device_type {
                    continue;
                }
                let k = *key_of
                    .entry((code, d.model, d.firmware))
                    .or_insert_with(|| {
                        classes.push(Class {
                            code,
                            rate: rate * multiplier(code, d),
                            devices: Vec::new(),
                            installed: Vec::new(),
                        });
                        classes.len() - 1
                    });
                classes[k].devices.push(i as u32);
            }
        }
        for c in &mut classes {
            c.devices
                .sort_by_key(|&i| (fleet.devices[i as usize].installed, i));
            c.installed = c
                .devices
                .iter()
                .map(|&i| fleet.devices[i as usize].installed)
                .collect();
        }
        let mut hubs: Vec<u32> = (0..fleet.devices.len() as u32)
            .filter(|&i| fleet.devices[i as usize].device_type == Chf)
            .collect();
        hubs.sort_by_key(|&i| (fleet.devices[i as usize].installed, i));
        let hub_days = hubs
            .iter()
            .map(|&i| fleet.devices[i as usize].installed)
            .collect();
        // The incident: 40% of one region's hubs lose their connection for hours.
        let region = [Region::North, Region::Central, Region::South][rng.below(3) as usize];
        let start =
            day_start(incident_day) + rng.range(8, 12) * 3_600_000 + rng.range(0, 59) * 60_000;
        let end = start + rng.range(3, 8) * 3_600_000;
        let affected: Vec<u32> = hubs
            .iter()
            .copied()
            .filter(|&h| {
                let d = &fleet.devices[h as usize];
                d.region == region && d.installed < incident_day
            })
            .filter(|_| rng.chance(0.4))
            .collect();
        let devices_on_hubs = affected
            .iter()
            .map(|&h| premises_members(fleet, h).len())
            .sum();
        let incident_truth = IncidentTruth {
            region: region.name().into(),
            day: format_day(incident_day),
            start: crate::model::time::format_timestamp(start),
            end: crate::model::time::format_timestamp(end),
            hubs: affected.len(),
            devices_on_hubs,
            records: Default::default(),
        };
        // Noisy devices: a few meters raising one code hundreds of times a day.
        let n_noisy = (fleet.devices.len() / 20_000).max(1);
        let candidates: Vec<u32> = (0..fleet.devices.len() as u32)
            .filter(|&i| {
                let d = &fleet.devices[i as usize];
                d.device_type == Esme && d.installed < fleet.start
            })
            .collect();
        let mut noisy: Vec<Noisy> = Vec::new();
        while noisy.len() < n_noisy.min(candidates.len()) {
            let i = candidates[rng.below(candidates.len() as u64) as usize];
            if noisy.iter().any(|n| n.device == i) {
                continue;
            }
            let d = &fleet.devices[i as usize];
            noisy.push(Noisy {
                device: i,
                code: if d.generation == S1 { 0x81B8 } else { 0x8F84 },
                mean: rng.range(50, 150) as f64,
                records: 0,
                alerts: 0,
            });
        }
        noisy.sort_by_key(|n| n.device);
        // Devices that alert but are missing from the inventory.
        let n_ghosts = (fleet.devices.len() / 5000).max(2) as u64;
        let base = model_index("EDMI-ES2");
        let ghosts = (0..n_ghosts)
            .map(|k| {
                device_id(
                    super::fleet::MODELS[base].oui,
                    fleet.devices.len() as u64 + 2 + k,
                )
            })
            .collect();
        Stream {
            fleet,
            ota,
            classes,
            hubs,
            hub_days,
            incident: Incident {
                region,
                day: incident_day,
                start,
                end,
                hubs: affected,
            },
            incident_truth,
            noisy,
            ghosts,
            rng,
            ota_cursor: 0,
        }
    }

    pub fn ghost_count(&self) -> usize {
        self.ghosts.len()
    }

    fn at_hour(&mut self, day: Day) -> Millis {
        let h = self.rng.weighted(&HOUR_WEIGHTS) as i64;
        day_start(day) + h * 3_600_000 + self.rng.range(0, 3599) * 1000
    }

    fn rec(&self, ts: Millis, device: u32, code: AlertCode) -> Rec {
        let d = &self.fleet.devices[device as usize];
        Rec {
            ts,
            id: d.id,
            code,
            count: 1,
            message: 0,
            device_type: d.device_type,
            response: 0,
            region: d.in_inventory().then_some(d.region),
        }
    }

    /// Appends the records of `day` to `out`, sorted by time, with message ids assigned.
    pub fn day(&mut self, day: Day, out: &mut Vec<Rec>) {
        let wf = WEEKDAY_FACTOR[weekday(day) as usize];
        let first = out.len();
        for c in 0..self.classes.len() {
            let n = self.classes[c].installed.partition_point(|&d| d <= day);
            if n == 0 {
                continue;
            }
            let (code, rate) = (self.classes[c].code, self.classes[c].rate);
            let k = self.rng.poisson(n as f64 * rate * wf);
            for _ in 0..k {
                let dev = self.classes[c].devices[self.rng.below(n as u64) as usize];
                let ts = self.at_hour(day);
                // The new firmware halves the effect code on upgraded devices.
                if code == EFFECT_CODE
                    && self.ota.upgraded_at[dev as usize] <= ts
                    && !self.rng.chance(EFFECT_FACTOR)
                {
                    continue;
                }
                out.push(self.rec(ts, dev, AlertCode::device(code)));
            }
        }
        // Background DCC power-outage alerts on hubs.
        let n = self.hub_days.partition_point(|&d| d <= day);
        for _ in 0..self.rng.poisson(n as f64 * N24_RATE * wf) {
            let h = self.hubs[self.rng.below(n.max(1) as u64) as usize];
            let ts = self.at_hour(day);
            out.push(self.rec(ts, h, N24));
        }
        // Noisy devices.
        for k in 0..self.noisy.len() {
            let (dev, code, mean) = (self.noisy[k].device, self.noisy[k].code, self.noisy[k].mean);
            let m = self.rng.poisson(mean * wf);
            for _ in 0..m {
                let ts = self.at_hour(day);
                let mut r = self.rec(ts, dev, AlertCode::device(code));
                if self.rng.chance(0.3) {
                    r.count = self.rng.range(2, 20) as u32;
                }
                self.noisy[k].records += 1;
                self.noisy[k].alerts += r.count as u64;
                out.push(r);
            }
        }
        // Devices missing from the inventory.
        for g in 0..self.ghosts.len() {
            if self.rng.chance(0.2) {
                let ts = self.at_hour(day);
                let code = [0x8F84u16, 0x8F57, 0x81B8][self.rng.below(3) as usize];
                out.push(Rec {
                    ts,
                    id: self.ghosts[g],
                    code: AlertCode::device(code),
                    count: 1,
                    message: 0,
                    device_type: Esme,
                    response: 0,
                    region: None,
                });
            }
        }
        if day == self.incident.day {
            self.incident_records(out);
        }
        // The OTA campaign's alerts of the day.
        let end = day_start(day + 1);
        while let Some(e) = self.ota.events.get(self.ota_cursor) {
            if e.ts >= end {
                break;
            }
            self.ota_cursor += 1;
            if let Some(code) = e.stage.code(e.ok) {
                let mut r = self.rec(e.ts, e.device, AlertCode::device(code));
                r.response = response_code(e.stage, e.reason);
                r.message = ota_message(e.ts, e.message);
                out.push(r);
            }
        }
        let recs = &mut out[first..];
        recs.sort_by_key(|r| (r.ts, r.id, r.code.0, r.message));
        for (i, r) in recs.iter_mut().enumerate() {
            if r.message == 0 {
                r.message = (r.ts / 1000) as u64 * 1_000_000 + (i % 900_000) as u64;
            }
        }
    }

    fn incident_records(&mut self, out: &mut Vec<Rec>) {
        let Incident { start, end, .. } = self.incident;
        let hubs = std::mem::take(&mut self.incident.hubs);
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for &h in &hubs {
            let t = start + self.rng.range(0, 600) * 1000;
            out.push(self.rec(t, h, N24));
            *counts.entry("N24".into()).or_default() += 1;
            let t = end + self.rng.range(0, 900) * 1000;
            out.push(self.rec(t, h, AlertCode::device(0x8F12)));
            *counts.entry("8F12".into()).or_default() += 1;
            for m in premises_members(self.fleet, h) {
                if self.fleet.devices[m as usize].device_type != Esme {
                    continue;
                }
                if self.rng.chance(0.7) {
                    let t = start + self.rng.range(0, (end - start) / 1000 - 1) * 1000;
                    out.push(self.rec(t, m, AlertCode::device(0x8F84)));
                    *counts.entry("8F84".into()).or_default() += 1;
                }
                let t = end + self.rng.range(0, 900) * 1000;
                out.push(self.rec(t, m, AlertCode::device(0x8F36)));
                *counts.entry("8F36".into()).or_default() += 1;
            }
        }
        self.incident.hubs = hubs;
        self.incident_truth.records = counts;
    }
}

/// Message counter of an OTA alert: apart from the day's ordinary counters.
pub fn ota_message(ts: Millis, n: u64) -> u64 {
    (ts / 1000) as u64 * 1_000_000 + 900_000 + n % 100_000
}

/// The devices of a hub's premises (after the hub itself in the fleet).
pub fn premises_members(fleet: &Fleet, hub: u32) -> Vec<u32> {
    let p = fleet.devices[hub as usize].premises;
    (hub + 1..fleet.devices.len() as u32)
        .take_while(|&i| fleet.devices[i as usize].premises == p)
        .filter(|&i| fleet.devices[i as usize].hub != NO_HUB)
        .collect()
}
