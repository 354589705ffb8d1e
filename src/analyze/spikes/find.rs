//! Finding spikes in the alerts: the days on which a group's alert count rose well above its
//! own baseline, merged into episodes (consecutive flagged days of one group), ranked by
//! excess, each explained by its cohorts.
//!
//! One read serves every step. Its tap counts each device's alerts per day and group x cohort
//! (model, firmware, device type, generation), so the groups' daily series are its roll-up with
//! each device's day capped at `SpikeParams::device_cap` alerts, the distinct alerting devices
//! are exact, and a flagged day is explained from the same counts.
//!
//! Memory: one counter per alerting device, day and code (about 40 bytes each; the 200,000
//! device demo fleet's 60 days hold about 900,000).

use super::explain::{COHORTS, CohortShare, Context, cohorts, verdict};
use super::known::{CampaignRun, campaign_of};
use super::{DailySeries, DayCheck, SpikeParams, check};
use crate::analyze::alerts::{
    AlertQuery, AlertReport, AlertRow, CodeFilter, Dim, GroupKey, Tap, TapFactory, denom_dims,
};
use crate::analyze::labels::{BoundLabels, Labels};
use crate::analyze::reader::Reader;
use crate::inventory::{Denominators, DeviceInfo, Inventory};
use crate::model::{AlertCode, Clock, Day, Event};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Stands for the device of records that name none: never capped, never a distinct device.
const NO_DEVICE: u64 = u64::MAX;

/// One flagged day of one group.
pub struct Spike {
    pub group: GroupKey,
    /// The verdict on the day's capped count.
    pub check: DayCheck,
    /// Alerts that day (uncapped).
    pub alerts: f64,
    /// Distinct alerting devices that day.
    pub devices: u64,
    pub installed: Option<u64>,
    pub cohorts: Vec<CohortShare>,
    pub verdict: String,
}

/// Consecutive flagged days of one group.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub group: GroupKey,
    pub first_day: Day,
    pub last_day: Day,
    /// Its days among `Found::spikes` (consecutive indexes).
    pub spikes: std::ops::Range<usize>,
    /// The day with the largest excess (an index into `Found::spikes`): the explanation's.
    pub peak: usize,
    /// Alerts over the episode's days (uncapped).
    pub alerts: f64,
    /// The capped counts judged, the counts expected, and their difference, summed over the days.
    pub counted: f64,
    pub expected: f64,
    pub excess: f64,
    /// Distinct devices that raised the group's alerts on any of the days.
    pub devices: u64,
    /// The campaign whose run it falls in, for campaign codes (a known event).
    pub campaign: Option<String>,
}

impl Episode {
    pub fn days(&self) -> usize {
        (self.last_day - self.first_day + 1) as usize
    }
}

/// Everything found: the groups' (capped) series, the flagged days in group and day order,
/// and the episodes: incidents ranked by excess, campaign episodes apart.
pub struct Found {
    pub series: Vec<(GroupKey, DailySeries)>,
    pub spikes: Vec<Spike>,
    pub episodes: Vec<Episode>,
    pub campaign_episodes: Vec<Episode>,
    pub judged: usize,
    pub flagged_groups: usize,
    /// Alerts taken out by `--exclude-codes` / `--exclude-category`.
    pub excluded_alerts: u64,
    /// Alerts beyond the per-device daily cap (not counted in the series).
    pub over_cap_alerts: u64,
}

/// How `fold` reads and `find` judges.
#[derive(Clone, Debug)]
pub struct Setting {
    pub params: SpikeParams,
    /// Codes and categories taken out before anything is counted.
    pub exclude: Option<CodeFilter>,
    /// Reclassification rules (for groups by label or category).
    pub labels: Arc<Labels>,
    /// The clock days are cut by (the run's `--tz`).
    pub clock: Arc<Clock>,
    /// Known campaign runs: their firmware codes' episodes are listed apart.
    pub campaigns: Vec<CampaignRun>,
}

impl Default for Setting {
    fn default() -> Self {
        Setting {
            params: SpikeParams::default(),
            exclude: None,
            labels: Arc::new(Labels::none()),
            clock: Arc::new(Clock::default()),
            campaigns: Vec::new(),
        }
    }
}

/// Per device, day and group x cohort key: the alerts.
struct CapTap {
    /// The group dimensions, the cohort dimensions and the code.
    dims: Arc<Vec<Dim>>,
    labels: Arc<BoundLabels>,
    clock: Arc<Clock>,
    exclude: Option<Arc<CodeFilter>>,
    index: FxHashMap<GroupKey, u32>,
    keys: Vec<GroupKey>,
    counts: FxHashMap<(u64, Day, u32), u32>,
    excluded: u64,
}

impl CapTap {
    fn key(&mut self, key: GroupKey) -> u32 {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.keys.len() as u32;
        self.index.insert(key, i);
        self.keys.push(key);
        i
    }
}

impl Tap for CapTap {
    fn alert(&mut self, ev: &Event, code: AlertCode, known: Option<u64>, _: Day) {
        if self.exclude.as_ref().is_some_and(|f| f.matches(code)) {
            self.excluded += ev.count as u64;
            return;
        }
        let i = known
            .map(DeviceInfo::unpack)
            .unwrap_or_else(|| DeviceInfo::from_record(&ev.attrs));
        let dims = &self.dims;
        let mut key = GroupKey {
            region: Some(i.region),
            device_type: Some(i.device_type),
            generation: Some(i.generation),
            code: Some(code),
            model: Some(i.model),
            firmware: Some(i.firmware),
            ..Default::default()
        }
        .project(dims);
        if dims.contains(&Dim::Label) || dims.contains(&Dim::Category) {
            let (label, category) = self.labels.classify(code, i.generation, i.model);
            key.label = dims.contains(&Dim::Label).then_some(label);
            key.category = dims.contains(&Dim::Category).then_some(category);
        }
        let k = self.key(key);
        let device = ev.device.map_or(NO_DEVICE, |d| d.0);
        *self
            .counts
            .entry((device, self.clock.day(ev.ts), k))
            .or_default() += ev.count;
    }

    fn merge_from(&mut self, other: Box<dyn Tap>) {
        if let Ok(o) = other.into_any().downcast::<CapTap>() {
            let remap: Vec<u32> = o.keys.iter().map(|k| self.key(*k)).collect();
            for ((d, day, k), n) in o.counts {
                *self.counts.entry((d, day, remap[k as usize])).or_default() += n;
            }
            self.excluded += o.excluded;
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// What the read gives `find`: the run's report (totals, period, selection) and the
/// per-device counts.
pub struct Folded {
    pub report: AlertReport,
    /// (group x cohort key index, day, device, alerts), sorted.
    entries: Vec<(u32, Day, u64, u32)>,
    keys: Vec<GroupKey>,
    excluded: u64,
}

/// The read behind spikes: the alerts by day, and per device, day and group x cohort key.
pub fn fold(reader: &dyn Reader, by: &[Dim], at: &Setting) -> Folded {
    let mut dims: Vec<Dim> = Vec::new();
    for &d in by
        .iter()
        .chain(COHORTS.iter().flat_map(|c| c.1.iter()))
        .chain([Dim::Code].iter())
    {
        if !dims.contains(&d) {
            dims.push(d);
        }
    }
    let dims = Arc::new(dims);
    let labels = Arc::new(at.labels.bind(reader.inventory()));
    let exclude = at.exclude.clone().map(Arc::new);
    let clock = at.clock.clone();
    let query = AlertQuery {
        by: vec![Dim::Day],
        distinct: false,
        labels: at.labels.clone(),
        tap: Some(TapFactory(Arc::new(move || {
            Box::new(CapTap {
                dims: dims.clone(),
                labels: labels.clone(),
                clock: clock.clone(),
                exclude: exclude.clone(),
                index: FxHashMap::default(),
                keys: Vec::new(),
                counts: FxHashMap::default(),
                excluded: 0,
            })
        }))),
        ..Default::default()
    };
    let mut answer = reader.answer_one(query);
    let tap = answer.tap_as::<CapTap>();
    let (mut entries, keys, excluded) = match tap {
        Some(t) => {
            let t = *t;
            let entries: Vec<(u32, Day, u64, u32)> = t
                .counts
                .into_iter()
                .map(|((d, day, k), n)| (k, day, d, n))
                .collect();
            (entries, t.keys, t.excluded)
        }
        None => (Vec::new(), Vec::new(), 0),
    };
    entries.sort_unstable();
    Folded {
        report: answer.report,
        entries,
        keys,
        excluded,
    }
}

/// One group's days: capped counts (the series), alerts, distinct devices.
struct Group {
    series: DailySeries,
    alerts: Vec<f64>,
    devices: Vec<u64>,
    /// Capped alerts per group x cohort key and day, as fold rows for `explain`.
    rows: Vec<AlertRow>,
    /// The devices behind each day (sorted), for the episodes' distinct count.
    day_devices: Vec<Vec<u64>>,
}

/// Rolls the counts up to the groups' daily series (each device's day capped), judges them,
/// explains the flagged days and merges them into episodes. The installed bases count the
/// devices of the report's selection only.
pub fn find(folded: &Folded, inv: &Inventory, by: &[Dim], at: &Setting) -> Found {
    let p = &at.params;
    let report = &folded.report;
    let mut found = Found {
        series: Vec::new(),
        spikes: Vec::new(),
        episodes: Vec::new(),
        campaign_episodes: Vec::new(),
        judged: 0,
        flagged_groups: 0,
        excluded_alerts: folded.excluded,
        over_cap_alerts: 0,
    };
    let Some((first, last)) = report.period else {
        return found;
    };
    let devices = &report.scope.devices;
    let days = (last - first + 1) as usize;
    let cap = if p.device_cap == 0 {
        u32::MAX
    } else {
        p.device_cap
    };
    let mut groups: FxHashMap<GroupKey, Group> = FxHashMap::default();
    // Entries are sorted by key, day, device: one pass sums each (key, day) into a row.
    let mut row: Option<(u32, Day, f64)> = None;
    let flush_row = |groups: &mut FxHashMap<GroupKey, Group>, r: Option<(u32, Day, f64)>| {
        if let Some((k, day, n)) = r {
            let key = folded.keys[k as usize];
            if let Some(g) = groups.get_mut(&key.project(by)) {
                g.rows.push(AlertRow {
                    key: GroupKey {
                        day: Some(day),
                        ..key
                    },
                    alerts: n as u64,
                    records: 0,
                    devices: 0,
                    devices_exact: true,
                    denominator: None,
                    per_1000: None,
                });
            }
        }
    };
    for &(k, day, device, n) in &folded.entries {
        if day < first || day > last {
            continue;
        }
        let t = (day - first) as usize;
        let key = folded.keys[k as usize];
        let g = groups.entry(key.project(by)).or_insert_with(|| Group {
            series: DailySeries::new(first, days),
            alerts: vec![0.0; days],
            devices: vec![0; days],
            rows: Vec::new(),
            day_devices: vec![Vec::new(); days],
        });
        let counted = if device == NO_DEVICE { n } else { n.min(cap) };
        found.over_cap_alerts += (n - counted) as u64;
        g.series.counts[t] += counted as f64;
        g.alerts[t] += n as f64;
        if device != NO_DEVICE {
            g.day_devices[t].push(device);
        }
        match &mut row {
            Some((rk, rd, sum)) if *rk == k && *rd == day => *sum += counted as f64,
            _ => {
                flush_row(&mut groups, row.take());
                row = Some((k, day, counted as f64));
            }
        }
    }
    flush_row(&mut groups, row.take());
    let denoms = Denominators::build_filtered(inv, denom_dims(by), devices);
    let mut series: Vec<(GroupKey, Group)> = groups
        .into_iter()
        .map(|(key, mut g)| {
            let dk = key.denom_key();
            for (i, slot) in g.series.installed.iter_mut().enumerate() {
                *slot = denoms.installed(&dk, first + i as Day);
            }
            for (i, d) in g.day_devices.iter_mut().enumerate() {
                d.sort_unstable();
                d.dedup();
                g.devices[i] = d.len() as u64;
            }
            g.rows.sort_by_key(|r| r.key);
            (key, g)
        })
        .collect();
    series.sort_by_key(|x| x.0);
    // The installed base per group x cohort, built at the first flagged day (a pass over the
    // inventory per cohort dimension: not worth it when nothing is flagged).
    let mut cohort_denoms: Option<Vec<Denominators>> = None;
    let mut episodes: Vec<Episode> = Vec::new();
    for (key, g) in &series {
        let checks = check(&g.series, p);
        found.judged += checks.len();
        let before = found.spikes.len();
        let rows: Vec<&AlertRow> = g.rows.iter().collect();
        for c in checks.into_iter().filter(|c| c.flagged) {
            let t = (c.day - first) as usize;
            let cohort_denoms = cohort_denoms.get_or_insert_with(|| {
                COHORTS
                    .iter()
                    .map(|(_, dims)| {
                        let all: Vec<Dim> = by.iter().chain(dims.iter()).copied().collect();
                        Denominators::build_filtered(inv, denom_dims(&all), devices)
                    })
                    .collect()
            });
            let ctx = Context {
                by,
                first,
                window: p.window,
                installed: g.series.installed[t],
                cohort_denoms,
                inv,
            };
            let cohorts = cohorts(&c, &rows, &ctx);
            let verdict = verdict(&cohorts);
            let i = found.spikes.len();
            found.spikes.push(Spike {
                group: *key,
                check: c,
                alerts: g.alerts[t],
                devices: g.devices[t],
                installed: g.series.installed[t],
                cohorts,
                verdict,
            });
            match episodes.last_mut() {
                Some(e) if e.group == *key && e.last_day + 1 == c.day => {
                    e.last_day = c.day;
                    e.spikes.end = i + 1;
                }
                _ => episodes.push(Episode {
                    group: *key,
                    first_day: c.day,
                    last_day: c.day,
                    spikes: i..i + 1,
                    peak: i,
                    alerts: 0.0,
                    counted: 0.0,
                    expected: 0.0,
                    excess: 0.0,
                    devices: 0,
                    campaign: None,
                }),
            }
        }
        found.flagged_groups += usize::from(found.spikes.len() > before);
        // Sum up this group's episodes.
        for e in episodes.iter_mut().filter(|e| e.group == *key) {
            let days = &found.spikes[e.spikes.clone()];
            e.alerts = days.iter().map(|s| s.alerts).sum();
            e.counted = days.iter().map(|s| s.check.count).sum();
            e.expected = days.iter().map(|s| s.check.expected).sum();
            e.excess = days.iter().map(|s| s.check.excess()).sum();
            e.peak = e.spikes.start
                + days
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.check.excess().total_cmp(&b.1.check.excess()))
                    .map_or(0, |x| x.0);
            let mut all: Vec<u64> = (e.first_day..=e.last_day)
                .flat_map(|d| g.day_devices[(d - first) as usize].iter().copied())
                .collect();
            all.sort_unstable();
            all.dedup();
            e.devices = all.len() as u64;
            e.campaign =
                campaign_of(&at.campaigns, key, e.first_day, e.last_day).map(|r| r.name.clone());
        }
    }
    found.series = series.into_iter().map(|(k, g)| (k, g.series)).collect();
    let rank = |a: &Episode, b: &Episode| {
        b.excess
            .total_cmp(&a.excess)
            .then(a.group.cmp(&b.group))
            .then(a.first_day.cmp(&b.first_day))
    };
    let (mut campaign, mut incidents): (Vec<Episode>, Vec<Episode>) =
        episodes.into_iter().partition(|e| e.campaign.is_some());
    incidents.sort_by(rank);
    campaign.sort_by(rank);
    found.episodes = incidents;
    found.campaign_episodes = campaign;
    found
}
