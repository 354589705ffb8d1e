//! Offenders: who is behind a code's volume. The devices that raise the most, how
//! concentrated the volume is, the rate per model and firmware version, and whether the volume
//! is at a steady state (Mann-Kendall on the daily rate per 1,000 devices).
//!
//! Two folds from one read (`queries`): by device, and by day x model x firmware. Concentration
//! is over the devices that alerted, not the installed base: the top 1% is the top 1% of the
//! alerting devices, rounded up to at least one device.

use crate::analyze::alerts::{AlertQuery, AlertReport, Dim};
use crate::analyze::trend::{Trend, mann_kendall};
use crate::inventory::{DenomDims, DenomKey, Denominators, DeviceInfo, Inventory};
use crate::model::{Day, DeviceId};
use std::collections::BTreeMap;

/// One of the top devices.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceRow {
    /// `None` for alerts without a device id.
    pub device: Option<DeviceId>,
    /// `None` when the device is not in the inventory.
    pub info: Option<DeviceInfo>,
    pub alerts: u64,
    pub records: u64,
    /// Of all the alerts.
    pub share: f64,
}

/// One model and firmware version.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelRow {
    pub model: u16,
    pub firmware: u16,
    /// Installed on the last day of the period, when known.
    pub installed: Option<u64>,
    pub alerting_devices: usize,
    pub alerts: u64,
    /// Of all the alerts.
    pub share: f64,
    /// Alerts per 1,000 device-days over the period, when the device-days are known.
    pub per_1000_per_day: Option<f64>,
    pub trend: Trend,
}

/// The answer.
pub struct Offenders {
    pub alerts: u64,
    pub alerting_devices: usize,
    pub installed: Option<u64>,
    /// Share of the alerts from the top 1% and top 10% of alerting devices (at least one).
    pub top1_share: f64,
    pub top10_share: f64,
    /// Of the daily rate per 1,000 devices over the whole selection.
    pub trend: Trend,
    /// The top devices, most alerts first.
    pub devices: Vec<DeviceRow>,
    /// Every model and firmware version that alerted, most alerts first.
    pub models: Vec<ModelRow>,
    pub period: Option<(Day, Day)>,
}

/// The two folds `analyse` takes: by device, and by day x model x firmware.
pub fn queries() -> [AlertQuery; 2] {
    [
        AlertQuery {
            by: vec![Dim::Device],
            distinct: false,
            ..Default::default()
        },
        AlertQuery {
            by: vec![Dim::Day, Dim::Model, Dim::Firmware],
            distinct: false,
            ..Default::default()
        },
    ]
}

/// Share of `total` from the largest `ceil(fraction * n)` of `sorted` (descending) values.
pub fn top_share(sorted: &[u64], fraction: f64, total: u64) -> f64 {
    if sorted.is_empty() || total == 0 {
        return 0.0;
    }
    let k = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[..k].iter().sum::<u64>() as f64 / total as f64
}

/// The answer from the two folds of `queries`; `top` devices are kept (0: all). The installed
/// bases count the devices of the report's selection only.
pub fn analyse(
    by_device: &AlertReport,
    by_day_model: &AlertReport,
    inv: &Inventory,
    top: usize,
) -> Offenders {
    let mut devices: Vec<(Option<u64>, u64, u64)> = by_device
        .rows
        .iter()
        .map(|r| (r.key.device, r.alerts, r.records))
        .collect();
    devices.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let counts: Vec<u64> = devices.iter().map(|d| d.1).collect();
    let total: u64 = counts.iter().sum();
    let share = |alerts: u64| alerts as f64 / total.max(1) as f64;
    let period = by_day_model.period;
    let top_devices = devices
        .iter()
        .take(if top == 0 { usize::MAX } else { top })
        .map(|&(device, alerts, records)| {
            let device = device.map(DeviceId);
            DeviceRow {
                device,
                info: device.and_then(|d| inv.lookup(d)),
                alerts,
                records,
                share: share(alerts),
            }
        })
        .collect();

    // Per model x firmware: alerting devices from the device fold, volume and daily series
    // from the day fold, device-days from the inventory.
    let mut alerting: BTreeMap<(u16, u16), usize> = BTreeMap::new();
    for (d, _, _) in &devices {
        if let Some(i) = d.and_then(|d| inv.lookup(DeviceId(d))) {
            *alerting.entry((i.model, i.firmware)).or_default() += 1;
        }
    }
    let (first, last) = period.unwrap_or((0, -1));
    let days = (last - first + 1).max(0) as usize;
    let mut series: BTreeMap<(u16, u16), (u64, Vec<f64>)> = BTreeMap::new();
    let mut overall = vec![0.0; days];
    for r in &by_day_model.rows {
        let (Some(day), Some(m), Some(f)) = (r.key.day, r.key.model, r.key.firmware) else {
            continue;
        };
        let i = (day - first) as usize;
        let e = series.entry((m, f)).or_insert_with(|| (0, vec![0.0; days]));
        e.0 += r.alerts;
        e.1[i] += r.alerts as f64;
        overall[i] += r.alerts as f64;
    }
    let selected = &by_day_model.scope.devices;
    let model_dims = DenomDims {
        model: true,
        firmware: true,
        ..Default::default()
    };
    let denoms = Denominators::build_filtered(inv, model_dims, selected);
    let fleet = Denominators::build_filtered(inv, DenomDims::default(), selected);
    let per_1000 = |counts: &[f64], key: &DenomKey, d: &Denominators| -> Vec<f64> {
        counts
            .iter()
            .enumerate()
            .map(|(i, &c)| match d.installed(key, first + i as Day) {
                Some(n) if n > 0 => c * 1000.0 / n as f64,
                _ => c,
            })
            .collect()
    };
    let mut rows: Vec<_> = series.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let models = rows
        .into_iter()
        .map(|((model, firmware), (alerts, counts))| {
            let key = DenomKey {
                model: Some(model),
                firmware: Some(firmware),
                ..Default::default()
            };
            let device_days = period.and_then(|(a, b)| denoms.device_days(&key, a, b));
            ModelRow {
                model,
                firmware,
                installed: days
                    .checked_sub(1)
                    .and_then(|_| denoms.installed(&key, last)),
                alerting_devices: alerting.get(&(model, firmware)).copied().unwrap_or(0),
                alerts,
                share: share(alerts),
                per_1000_per_day: device_days
                    .filter(|&d| d > 0)
                    .map(|d| alerts as f64 * 1000.0 / d as f64),
                trend: mann_kendall(&per_1000(&counts, &key, &denoms)),
            }
        })
        .collect();
    Offenders {
        alerts: total,
        alerting_devices: devices.len(),
        installed: (days > 0)
            .then(|| fleet.installed(&DenomKey::default(), last))
            .flatten(),
        top1_share: top_share(&counts, 0.01, total),
        top10_share: top_share(&counts, 0.10, total),
        trend: mann_kendall(&per_1000(&overall, &DenomKey::default(), &fleet)),
        devices: top_devices,
        models,
        period,
    }
}

#[cfg(test)]
mod tests {
    use super::top_share;

    #[test]
    fn top_shares_round_up_to_whole_devices() {
        // 20 devices: top 1% is 1 device, top 10% is 2.
        let mut v = vec![100, 50];
        v.extend(std::iter::repeat_n(5, 18));
        let total: u64 = v.iter().sum();
        assert_eq!(total, 240);
        assert_eq!(top_share(&v, 0.01, total), 100.0 / 240.0);
        assert_eq!(top_share(&v, 0.10, total), 150.0 / 240.0);
        assert_eq!(top_share(&[], 0.1, 0), 0.0);
    }

    #[test]
    fn a_single_device_is_the_whole_top() {
        // 3 devices: ceil(0.03) and ceil(0.3) are both one device.
        assert_eq!(top_share(&[6, 3, 1], 0.01, 10), 0.6);
        assert_eq!(top_share(&[6, 3, 1], 0.10, 10), 0.6);
        // Half of 3 devices rounds up to 2.
        assert_eq!(top_share(&[6, 3, 1], 0.5, 10), 0.9);
    }
}
