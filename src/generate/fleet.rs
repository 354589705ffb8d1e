//! The synthetic fleet: premises, their devices, models, firmware and install dates.
//!
//! Every number here is an assumption written down in `docs/generator.md`; the figures it is
//! grounded in are in `../shared/DOMAIN.md`.

use super::rng::Rng;
use crate::model::{Day, DeviceType, Generation, Region};

/// A device model: its maker's OUI (the top 24 bits of its ids) and firmware versions.
pub struct ModelSpec {
    pub name: &'static str,
    pub device_type: DeviceType,
    pub generation: Generation,
    pub oui: u64,
    /// Relative share among models of the same type and generation.
    pub share: f64,
    /// Firmware versions and their shares at the start of the period.
    pub firmware: &'static [(&'static str, f64)],
}

use DeviceType::*;
use Generation::{Smets1 as S1, Smets2 as S2};

pub const MODELS: &[ModelSpec] = &[
    m(
        "EDMI-ES2",
        Esme,
        S2,
        0x00DB12,
        0.35,
        &[("2.0.1", 0.6), ("2.1.0", 0.4)],
    ),
    m(
        "LGE-E470",
        Esme,
        S2,
        0x000D6F,
        0.30,
        &[("1.4.2", 0.5), ("1.5.0", 0.5)],
    ),
    m(
        "SEC-LIB110",
        Esme,
        S2,
        0x00124B,
        0.25,
        &[("3.0.0", 0.7), ("3.0.2", 0.3)],
    ),
    m("ARO-AM2", Esme, S2, 0x70B3D5, 0.10, &[("1.0.9", 1.0)]),
    m("EDMI-GS2", Gsme, S2, 0x00DB13, 0.45, &[("2.0.0", 1.0)]),
    m(
        "SEC-G4",
        Gsme,
        S2,
        0x00124C,
        0.35,
        &[("4.1.0", 0.8), ("4.2.0", 0.2)],
    ),
    m("LGE-G470", Gsme, S2, 0x000D70, 0.20, &[("1.1.0", 1.0)]),
    m(
        "TOSHIBA-CH1",
        Chf,
        S2,
        0xBC33AC,
        0.50,
        &[("1.2.3", 0.7), ("1.3.0", 0.3)],
    ),
    m("WNC-CH2", Chf, S2, 0x00B052, 0.50, &[("2.0.4", 1.0)]),
    m("TOSHIBA-GPF1", Gpf, S2, 0xBC33AD, 0.50, &[("1.2.3", 1.0)]),
    m("WNC-GPF2", Gpf, S2, 0x00B053, 0.50, &[("2.0.4", 1.0)]),
    m("GEO-TRIO", Ihd, S2, 0x0022A3, 0.60, &[("5.0", 1.0)]),
    m("CHAMELEON-IHD6", Ihd, S2, 0x0015BC, 0.40, &[("6.1", 1.0)]),
    m("GEO-PPMID", Ppmid, S2, 0x0022A4, 1.00, &[("1.0", 1.0)]),
    m(
        "S1-ELSTER-AS300",
        Esme,
        S1,
        0x001A8C,
        0.40,
        &[("1.2", 0.6), ("1.3", 0.4)],
    ),
    m("S1-SECURE-LIB", Esme, S1, 0x00124D, 0.35, &[("7.4", 1.0)]),
    m("S1-EDMI-MK10", Esme, S1, 0x00DB14, 0.25, &[("10.2", 1.0)]),
    m("S1-SECURE-G4", Gsme, S1, 0x00124E, 0.60, &[("7.1", 1.0)]),
    m("S1-ELSTER-BK", Gsme, S1, 0x001A8D, 0.40, &[("2.2", 1.0)]),
];

const fn m(
    name: &'static str,
    device_type: DeviceType,
    generation: Generation,
    oui: u64,
    share: f64,
    firmware: &'static [(&'static str, f64)],
) -> ModelSpec {
    ModelSpec {
        name,
        device_type,
        generation,
        oui,
        share,
        firmware,
    }
}

pub fn model_index(name: &str) -> usize {
    MODELS
        .iter()
        .position(|m| m.name == name)
        .expect("known model")
}

/// SMETS1 migration cohorts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cohort {
    Ioc,
    Moc,
    MocSecure,
    Foc,
}

impl Cohort {
    pub const ALL: [Cohort; 4] = [Cohort::Ioc, Cohort::Moc, Cohort::MocSecure, Cohort::Foc];
    pub fn name(self) -> &'static str {
        match self {
            Cohort::Ioc => "IOC",
            Cohort::Moc => "MOC",
            Cohort::MocSecure => "MOC Secure",
            Cohort::Foc => "FOC",
        }
    }
}

/// No hub (SMETS1 devices, and hubs themselves).
pub const NO_HUB: u32 = u32::MAX;
/// A SMETS1 device not (yet) migrated: not in the DCC inventory.
pub const NOT_MIGRATED: Day = Day::MAX;

#[derive(Clone, Debug)]
pub struct Device {
    pub id: u64,
    pub device_type: DeviceType,
    pub region: Region,
    pub generation: Generation,
    pub model: u8,
    /// Index into the model's firmware list (the version at the start of the period).
    pub firmware: u8,
    /// The day the device joined the DCC: installed (SMETS2) or migrated (SMETS1).
    pub installed: Day,
    /// Index of the premises' communications hub (CHF), or `NO_HUB`.
    pub hub: u32,
    pub premises: u32,
    pub cohort: Option<Cohort>,
}

impl Device {
    pub fn model_spec(&self) -> &'static ModelSpec {
        &MODELS[self.model as usize]
    }
    pub fn firmware_name(&self) -> &'static str {
        self.model_spec().firmware[self.firmware as usize].0
    }
    pub fn in_inventory(&self) -> bool {
        self.installed != NOT_MIGRATED
    }
}

pub struct Fleet {
    pub devices: Vec<Device>,
    pub start: Day,
    pub days: u32,
}

/// Share of premises with first-generation meters (5.9M migrated of roughly 30M smart premises).
const SMETS1_SHARE: f64 = 0.2;
/// Share of SMETS2 premises installed before the period starts; the rest are installed during
/// it, at a rate rising linearly (installations rise month on month).
const INSTALLED_BEFORE: f64 = 0.85;

/// A bijection on 40-bit numbers, so ids from consecutive indexes look random yet never collide.
fn scramble40(i: u64) -> u64 {
    const MASK: u64 = (1 << 40) - 1;
    let mut x = i & MASK;
    x = x.wrapping_mul(0x9E_3779_B97F) & MASK; // odd multiplier: invertible mod 2^40
    x ^= x >> 19;
    x = x.wrapping_mul(0x5B_D1E9_955D) & MASK;
    x ^= x >> 21;
    x
}

/// Device ids: the model's OUI, then a scrambled serial.
pub fn device_id(oui: u64, serial: u64) -> u64 {
    (oui << 40) | scramble40(serial)
}

fn pick_model(rng: &mut Rng, t: DeviceType, g: Generation) -> u8 {
    let candidates: Vec<usize> = (0..MODELS.len())
        .filter(|&i| MODELS[i].device_type == t && MODELS[i].generation == g)
        .collect();
    let w: Vec<f64> = candidates.iter().map(|&i| MODELS[i].share).collect();
    candidates[rng.weighted(&w)] as u8
}

fn pick_firmware(rng: &mut Rng, model: u8) -> u8 {
    let w: Vec<f64> = MODELS[model as usize]
        .firmware
        .iter()
        .map(|f| f.1)
        .collect();
    rng.weighted(&w) as u8
}

impl Fleet {
    /// Builds premises until the fleet holds about `target` devices (SMETS1 devices included,
    /// whether or not they migrate). SMETS1 install days are set later by the migration plan.
    pub fn build(seed: u64, target: usize, start: Day, days: u32) -> Fleet {
        let mut rng = Rng::fork(seed, "fleet");
        let mut devices: Vec<Device> = Vec::with_capacity(target + 8);
        let mut premises = 0u32;
        while devices.len() < target {
            let smets1 = rng.chance(SMETS1_SHARE);
            let gas = rng.chance(0.85);
            let p = premises;
            premises += 1;
            if smets1 {
                let w = [0.15, 0.35, 0.15, 0.35];
                let cohort = Cohort::ALL[rng.weighted(&w)];
                let mut types = vec![Esme];
                if gas {
                    types.push(Gsme);
                }
                for t in types {
                    let model = pick_model(&mut rng, t, S1);
                    devices.push(Device {
                        id: device_id(MODELS[model as usize].oui, devices.len() as u64 + 1),
                        device_type: t,
                        region: Region::Smets1,
                        generation: S1,
                        model,
                        firmware: pick_firmware(&mut rng, model),
                        installed: NOT_MIGRATED,
                        hub: NO_HUB,
                        premises: p,
                        cohort: Some(cohort),
                    });
                }
                continue;
            }
            let installed = if rng.chance(INSTALLED_BEFORE) {
                start - rng.range(1, 5 * 365) as Day
            } else {
                // Density rising linearly over the period: t = sqrt(u).
                start + (rng.f64().sqrt() * days as f64) as Day
            };
            let recent = installed > start - 365;
            let base =
                [Region::North, Region::Central, Region::South][rng.weighted(&[0.30, 0.35, 0.35])];
            let region = if rng.chance(if recent { 0.5 } else { 0.05 }) {
                match base {
                    Region::North => Region::North4G,
                    Region::Central => Region::Central4G,
                    _ => Region::South4G,
                }
            } else {
                base
            };
            let mut types = vec![Chf, Esme];
            if gas {
                types.extend([Gsme, Gpf]);
            }
            if rng.chance(0.9) {
                types.push(Ihd);
            }
            if rng.chance(0.03) {
                types.push(Ppmid);
            }
            let hub = devices.len() as u32;
            for t in types {
                let model = pick_model(&mut rng, t, S2);
                devices.push(Device {
                    id: device_id(MODELS[model as usize].oui, devices.len() as u64 + 1),
                    device_type: t,
                    region,
                    generation: S2,
                    model,
                    firmware: pick_firmware(&mut rng, model),
                    installed,
                    hub: if t == Chf { NO_HUB } else { hub },
                    premises: p,
                    cohort: None,
                });
            }
        }
        Fleet {
            devices,
            start,
            days,
        }
    }

    pub fn end(&self) -> Day {
        self.start + self.days as Day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_proportions_plausible() {
        let f = Fleet::build(3, 20_000, 19_723, 30);
        let mut ids: Vec<u64> = f.devices.iter().map(|d| d.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), f.devices.len());
        let s1 = f.devices.iter().filter(|d| d.generation == S1).count() as f64;
        let share = s1 / f.devices.len() as f64;
        assert!((0.05..0.2).contains(&share), "SMETS1 share {share}");
        // Every SMETS2 non-hub device points at a CHF of its own premises.
        for d in f.devices.iter().filter(|d| d.hub != NO_HUB) {
            let h = &f.devices[d.hub as usize];
            assert_eq!((h.device_type, h.premises), (Chf, d.premises));
        }
    }

    #[test]
    fn scramble_is_a_bijection_on_a_sample() {
        let mut v: Vec<u64> = (0..100_000).map(scramble40).collect();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), 100_000);
    }
}
