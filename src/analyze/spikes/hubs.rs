//! The comms-hub cohort of a spike: the model of the hub each alerting device sits behind,
//! where the inventory links devices to hubs (a `comms_hub` column). A regional loss of
//! connection shows as many hub models in proportion; a faulty hub type as one.
//!
//! The group fold does not know hubs, so a second read of the inputs (through a `Reader`),
//! restricted to the flagged codes and to the days the spikes and their baselines cover,
//! counts alerts per group, day and hub model through a tap.

use super::explain::{CohortShare, verdict};
use super::find::Spike;
use crate::analyze::alerts::{AlertQuery, CodeFilter, Dim, GroupKey, Tap, TapFactory};
use crate::analyze::reader::Reader;
use crate::analyze::stats::median;
use crate::inventory::{DeviceInfo, Inventory};
use crate::model::Interner;
use crate::model::time::day_of;
use crate::model::{AlertCode, Day, DeviceId, Event};
use crate::source::Input;
use crate::source::named::{Field, read_named};
use rustc_hash::FxHashMap;
use std::path::Path;
use std::sync::Arc;

/// Each linked device's hub model, and the names.
pub struct HubModels {
    pub of_device: FxHashMap<u64, u16>,
    pub names: Interner,
}

/// Reads the inventory's `comms_hub` links; `None` when it has none.
pub fn read(path: &Path, inv: &Inventory) -> Option<HubModels> {
    let mut links: Vec<(u64, u64)> = Vec::new();
    let fields: &[Field] = &[
        ("device_id", &["device_id", "device", "eui", "deviceid"]),
        (
            "comms_hub",
            &["comms_hub", "hub", "comms_hub_id", "chf", "hub_id"],
        ),
    ];
    read_named(
        &Input::File(path.to_path_buf()),
        fields,
        &[0, 1],
        |_, values, _| {
            if let Ok(v) = values
                && let (Some(d), Some(h)) = (
                    DeviceId::parse(v[0].trim().as_bytes()),
                    DeviceId::parse(v[1].trim().as_bytes()),
                )
            {
                links.push((d.0, h.0));
            }
        },
    )
    .ok()?;
    if links.is_empty() {
        return None;
    }
    let mut names = Interner::default();
    let mut of_device = FxHashMap::default();
    for (d, h) in links {
        let model = inv
            .lookup(DeviceId(h))
            .map(|i| inv.model_name(i.model))
            .unwrap_or("");
        let model = if model.is_empty() {
            "(hub not in the inventory)"
        } else {
            model
        };
        of_device.insert(d, names.id(model));
    }
    Some(HubModels { of_device, names })
}

/// A device's attributes (and an alert's code) as a group key, to project on a grouping.
fn attributes(i: &DeviceInfo, code: Option<AlertCode>) -> GroupKey {
    GroupKey {
        region: Some(i.region),
        device_type: Some(i.device_type),
        generation: Some(i.generation),
        code,
        model: Some(i.model),
        firmware: Some(i.firmware),
        ..Default::default()
    }
}

/// Counts per (group, day, hub model), for the groups and days asked.
struct HubTap {
    hubs: Arc<HubModels>,
    by: Arc<Vec<Dim>>,
    counts: FxHashMap<(GroupKey, Day, u16), f64>,
}

impl Tap for HubTap {
    fn alert(&mut self, ev: &Event, code: AlertCode, known: Option<u64>, _: Day) {
        let (Some(d), Some(i)) = (ev.device, known.map(DeviceInfo::unpack)) else {
            return;
        };
        let Some(&hub) = self.hubs.of_device.get(&d.0) else {
            return;
        };
        let key = attributes(&i, Some(code)).project(&self.by);
        *self.counts.entry((key, day_of(ev.ts), hub)).or_default() += ev.count as f64;
    }

    fn merge_from(&mut self, other: Box<dyn Tap>) {
        if let Ok(o) = other.into_any().downcast::<HubTap>() {
            for (k, v) in o.counts {
                *self.counts.entry(k).or_default() += v;
            }
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// What `explain` needs besides the spikes and the hub links.
pub struct Setting<'a> {
    pub by: &'a [Dim],
    pub window: usize,
    /// The first day of the data: trailing windows start no earlier.
    pub first_day: Day,
    pub reader: &'a dyn Reader,
}

/// Adds the hub-model cohorts of the spikes `which` indexes (its excess over each hub model's trailing median, and
/// the hub model's share of the group's linked devices). Groups made of labels or categories
/// are left out (the tap sees codes, not labels).
pub fn explain(spikes: &mut [Spike], which: &[usize], hubs: HubModels, at: &Setting) {
    let Setting {
        by,
        window,
        first_day,
        reader,
    } = *at;
    let inv = reader.inventory();
    if which.is_empty() || by.iter().any(|d| matches!(d, Dim::Label | Dim::Category)) {
        return;
    }
    let codes: Vec<AlertCode> = {
        let mut c: Vec<AlertCode> = which.iter().filter_map(|&i| spikes[i].group.code).collect();
        c.sort();
        c.dedup();
        c
    };
    let days = || which.iter().map(|&i| spikes[i].check.day);
    let first = days().min().unwrap_or(0) - window as Day;
    let last = days().max().unwrap_or(0);
    let hubs = Arc::new(hubs);
    let (h, b) = (hubs.clone(), Arc::new(by.to_vec()));
    let query = AlertQuery {
        by: vec![],
        codes: (!codes.is_empty()).then(|| CodeFilter {
            codes,
            categories: vec![],
        }),
        since: Some(first),
        until: Some(last),
        distinct: false,
        tap: Some(TapFactory(Arc::new(move || {
            Box::new(HubTap {
                hubs: h.clone(),
                by: b.clone(),
                counts: FxHashMap::default(),
            })
        }))),
        ..Default::default()
    };
    let Some(tap) = reader.answer_one(query).tap_as::<HubTap>() else {
        return;
    };
    // Linked devices per group and hub model (the fleet share).
    let mut linked: FxHashMap<(GroupKey, u16), f64> = FxHashMap::default();
    let mut linked_total: FxHashMap<GroupKey, f64> = FxHashMap::default();
    let device_dims: Vec<Dim> = by.iter().copied().filter(|d| *d != Dim::Code).collect();
    for (&d, &hub) in &hubs.of_device {
        if let Some(i) = inv.lookup(DeviceId(d)) {
            let g = attributes(&i, None).project(&device_dims);
            *linked.entry((g, hub)).or_default() += 1.0;
            *linked_total.entry(g).or_default() += 1.0;
        }
    }
    let mut per_group: FxHashMap<GroupKey, FxHashMap<u16, Vec<(Day, f64)>>> = FxHashMap::default();
    for ((g, day, hub), n) in tap.counts {
        per_group
            .entry(g)
            .or_default()
            .entry(hub)
            .or_default()
            .push((day, n));
    }
    for &i in which {
        let s = &mut spikes[i];
        let Some(hubs_of) = per_group.get(&s.group) else {
            continue;
        };
        let fleet_key = GroupKey {
            code: None,
            ..s.group
        };
        let total = linked_total.get(&fleet_key).copied().unwrap_or(0.0);
        let from = (s.check.day - window as Day).max(first_day);
        let mut shares: Vec<CohortShare> = hubs_of
            .iter()
            .map(|(&hub, days)| {
                let today: f64 = days
                    .iter()
                    .filter(|x| x.0 == s.check.day)
                    .map(|x| x.1)
                    .sum();
                let mut history: Vec<f64> = (from..s.check.day)
                    .map(|d| days.iter().filter(|x| x.0 == d).map(|x| x.1).sum())
                    .collect();
                let excess = today - median(&mut history);
                CohortShare {
                    dimension: "comms hub model",
                    name: hubs.names.name(hub).to_string(),
                    excess,
                    share: if s.check.excess() > 0.0 {
                        excess / s.check.excess()
                    } else {
                        0.0
                    },
                    fleet_share: (total > 0.0)
                        .then(|| linked.get(&(fleet_key, hub)).copied().unwrap_or(0.0) / total),
                }
            })
            .filter(|c| c.excess > 0.0)
            .collect();
        shares.sort_by(|a, b| b.excess.total_cmp(&a.excess).then(a.name.cmp(&b.name)));
        shares.truncate(5);
        s.cohorts.extend(shares);
        s.verdict = verdict(&s.cohorts);
    }
}
