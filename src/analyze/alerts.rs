//! Alert counts and rates per group: the fold behind `fleetwatch alerts`.
//!
//! Each worker folds events into its own map from a packed group key to counters; the maps
//! merge at the end. A group is any combination of day, region, device type, generation,
//! code (or category), model and firmware. Device attributes come from the inventory; devices
//! it lacks are kept under `Unknown` (or the attributes the record carries) and counted.

use super::dense::{DenseGroups, DenseKey, Slot};
use super::distinct::Distinct;
pub use super::group::{Dim, GroupKey, denom_dims};
use super::labels::{BoundLabels, Labels};
use super::totals::Totals;
use crate::model::{Reject, Rejects};

use crate::catalogue;
use crate::decode::Sink;
use crate::inventory::{
    BatchScratch, DenomDims, Denominators, DeviceFilter, DeviceInfo, Inventory,
};
use crate::model::{AlertCode, Clock, Day, Event};
use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;

/// Puts each alert in a class (0..=3) that splits its group: see `AlertQuery::split`.
pub trait Split: Send + Sync + std::fmt::Debug {
    fn class(&self, ev: &Event, device: Option<u64>, info: &DeviceInfo, code: AlertCode) -> u8;
}

/// Sees every alert a fold accepts (after the filters and duplicate detection), with the
/// device's inventory attributes when known: `known` is a packed `DeviceInfo`
/// (`DeviceInfo::unpack`), its firmware the version the device ran at the alert's time; `day`
/// the alert's day on the run's clock (the fold has cut it already). Packed,
/// it travels in a register: a `DeviceInfo` built on the stack and read back through a
/// reference made the export's tap wait for the stores to land (a quarter of its time).
/// Each worker has its own; they merge at the end.
/// (A duplicate split across two workers' chunks is seen by both: taps that count must
/// tolerate it, as the OTA funnel does by keeping each device's events once.)
pub trait Tap: Send {
    fn alert(&mut self, ev: &Event, code: AlertCode, known: Option<u64>, day: Day);
    fn merge_from(&mut self, other: Box<dyn Tap>);
    /// The input the alerts that follow come from (an index into the run's input names).
    fn set_source(&mut self, _source: usize) {}
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any>;
}

/// Makes each worker's tap.
#[derive(Clone)]
pub struct TapFactory(pub Arc<dyn Fn() -> Box<dyn Tap> + Send + Sync>);

impl std::fmt::Debug for TapFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TapFactory")
    }
}

/// Which codes a query keeps: explicit codes and/or whole categories.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodeFilter {
    pub codes: Vec<AlertCode>,
    pub categories: Vec<u8>,
}

impl CodeFilter {
    pub fn parse(s: &str) -> Result<CodeFilter, String> {
        let mut f = CodeFilter::default();
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if let Some(c) = AlertCode::parse(p.as_bytes()) {
                f.codes.push(c);
            } else if let Some(i) = catalogue::category_names()
                .iter()
                .position(|n| n.eq_ignore_ascii_case(p))
            {
                f.categories.push(i as u8);
            } else {
                return Err(format!(
                    "`{p}` is neither an alert code (81B8, N24) nor a category ({})",
                    catalogue::category_names().join(", ")
                ));
            }
        }
        Ok(f)
    }

    #[inline]
    pub fn matches(&self, code: AlertCode) -> bool {
        self.codes.contains(&code) || self.categories.contains(&catalogue::category_id(code))
    }
}

/// The filter as it parses back: `81B8,supply`.
impl std::fmt::Display for CodeFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = catalogue::category_names();
        let codes = self.codes.iter().map(|c| c.to_string());
        let cats = self.categories.iter().map(|&i| names[i as usize].clone());
        f.write_str(&codes.chain(cats).collect::<Vec<_>>().join(","))
    }
}

crate::keyword_enum!(
    /// When two records are the same alert delivered twice.
    pub enum Dedup {
        Auto = "auto": "records with a message id (every DUIS message has one): same device, code, time and id",
        On = "on": "also records without a message id: same device, code and time",
        Off = "off": "count every record",
    }
);

/// What the user selected with the shared filters (`--since/--until`, `--codes`, `--region`,
/// `--type`, `--gen`, `--model`, `--firmware`), bound to the inventory. The engine stamps it on
/// every query it runs, so every fold of a command, and every denominator, sees the same days,
/// codes and devices. It narrows a query's own `codes`, `since` and `until`; it never widens them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub since: Option<Day>,
    pub until: Option<Day>,
    pub codes: Option<CodeFilter>,
    pub devices: DeviceFilter,
    /// The clock days and hours are cut by (`--tz`; UTC by default).
    pub clock: Arc<Clock>,
}

impl Scope {
    /// Whether the scope keeps everything.
    pub fn is_all(&self) -> bool {
        self.since.is_none()
            && self.until.is_none()
            && self.codes.is_none()
            && self.devices.is_all()
    }

    /// Whether a code passes the scope's code filter.
    #[inline]
    pub fn keeps_code(&self, code: AlertCode) -> bool {
        self.codes.as_ref().is_none_or(|f| f.matches(code))
    }
}

/// The default redelivery window (`AlertQuery::dedup_window`): DUIS redelivers within days.
pub const DEDUP_WINDOW_DAYS: Day = 7;

/// Remembered identities below which the window is not enforced (small inputs stay exact).
const PRUNE_MIN: usize = 1 << 16;

/// What `alerts` computes.
#[derive(Clone, Debug)]
pub struct AlertQuery {
    pub by: Vec<Dim>,
    pub codes: Option<CodeFilter>,
    pub since: Option<Day>,
    pub until: Option<Day>,
    pub dedup: Dedup,
    /// Days of event time a record's identity is remembered for duplicate detection: a repeat
    /// whose time is more than this before the newest record read is counted as a new record.
    /// Memory is set by the traffic of the window, not by the input.
    pub dedup_window: Day,
    /// Count distinct alerting devices per group. Off, each record skips a random access into
    /// a per-group sketch: the counts and rates come out the same, faster on big inputs.
    pub distinct: bool,
    /// Reclassification rules behind `Dim::Label` (and `Dim::Category` when they set one).
    pub labels: Arc<Labels>,
    /// Splits every group into classes (`GroupKey::class`): what-if splits by whether a
    /// remediation rule matches; the OTA firmware effect by upgrade state.
    pub split: Option<Arc<dyn Split>>,
    /// Sees every accepted alert, for analyses that need more than group counts.
    pub tap: Option<TapFactory>,
    /// The user's selection (set by the engine: see `Scope`).
    pub scope: Scope,
    /// Grouped by day, add a row of 0 alerts for each day a group had installed devices and
    /// no alert (a time series without gaps, so that averages taken elsewhere are right).
    pub zeros: bool,
}

impl Default for AlertQuery {
    fn default() -> Self {
        AlertQuery {
            by: vec![
                Dim::Day,
                Dim::Region,
                Dim::DeviceType,
                Dim::Generation,
                Dim::Code,
            ],
            codes: None,
            since: None,
            until: None,
            dedup: Dedup::Auto,
            dedup_window: DEDUP_WINDOW_DAYS,
            distinct: true,
            labels: Arc::new(Labels::none()),
            split: None,
            tap: None,
            scope: Scope::default(),
            zeros: false,
        }
    }
}

impl AlertQuery {
    pub fn has(&self, d: Dim) -> bool {
        self.by.contains(&d)
    }

    pub fn denom_dims(&self) -> DenomDims {
        denom_dims(&self.by)
    }

    /// The first day kept: the later of the query's and the scope's.
    pub fn first_day(&self) -> Option<Day> {
        self.since.max(self.scope.since)
    }

    /// The last day kept: the earlier of the query's and the scope's.
    pub fn last_day(&self) -> Option<Day> {
        match (self.until, self.scope.until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct GroupStat {
    /// Occurrences: throttled records count for their `ThrottledAlertCount`.
    pub alerts: u64,
    /// Records (messages or rows) behind them.
    pub records: u64,
    pub devices: Distinct,
}

/// One worker's (and, after merging, the run's) state.
pub struct AlertFold<'a> {
    q: &'a AlertQuery,
    /// The label rules bound to the inventory; consulted when `classify` is set.
    bound: BoundLabels,
    classify: bool,
    inv: &'a Inventory,
    /// Group numbers by index for the usual key shapes; the hash map `index` for the rest.
    dense: Option<DenseGroups>,
    index: FxHashMap<u128, u32>,
    keys: Vec<GroupKey>,
    stats: Vec<GroupStat>,
    /// Fingerprint of each deduplicated record -> (group, occurrences, with `UNKNOWN_FLAG` set
    /// when the device is not in the inventory; its day). Pruned to the redelivery window.
    seen: FxHashMap<u64, (u32, u32, Day)>,
    /// The newest day of a remembered record, and the size at which the window is enforced.
    newest_seen: Day,
    prune_at: usize,
    unknown_devices: FxHashSet<u64>,
    tap: Option<Box<dyn Tap>>,
    pub totals: Totals,
    pub rejects: Rejects,
    /// Index of the source being decoded, for rejects.
    pub source: usize,
    min_day: Day,
    max_day: Day,
    /// The days kept (`AlertQuery::first_day`, `last_day`).
    since: Option<Day>,
    until: Option<Day>,
    /// Whether the scope keeps every device (no attribute check per record then).
    all_devices: bool,
    /// Whether `lean_group` finds the groups: every device in scope, no firmware history, and
    /// a query the dense index serves.
    lean: bool,
    /// Whether devices changed firmware during the period (`Inventory::history`): each alert's
    /// firmware is then the version its device ran at the alert's time.
    versioned: bool,
    /// Events waiting to be folded. Their devices are looked up together, in the order of
    /// their inventory slots (`DeviceTable::get_batch`), then folded in arrival order.
    batch: Vec<Event>,
    /// The batch's device ids, what the inventory holds for each, and the lookup's buffers.
    batch_devices: Vec<Option<u64>>,
    looked_up: Vec<Option<u64>>,
    lookup: BatchScratch,
    /// The query's dimensions as a bit set (`AlertQuery::has` searches a list).
    dims: DimSet,
    /// (group, device) of each accepted record whose device is still to be counted in its
    /// group (`settle`), and the buffer they are bucketed into.
    pending: Vec<(u32, u64)>,
    sorted: Vec<(u32, u64)>,
    /// Threads for the work after the read (merging, counting): the run's workers.
    threads: usize,
}

/// Distinct-device updates settled together: enough that each of a day's groups gets many
/// (a sketch is 32 cache lines), few enough to stay about 1 MB.
const PENDING: usize = 1 << 16;

/// A set of dimensions, one bit each: what the fold asks of every event.
#[derive(Clone, Copy, Debug, Default)]
struct DimSet(u16);

impl DimSet {
    fn of(by: &[Dim]) -> DimSet {
        DimSet(by.iter().fold(0, |m, &d| m | 1 << d as u16))
    }

    #[inline]
    fn has(self, d: Dim) -> bool {
        self.0 & 1 << d as u16 != 0
    }
}

/// Events per batch: enough that a batch's lookups, taken in slot order, walk the inventory
/// table from one end to the other in small steps (about 12 KB apart in a 5,000,000-device
/// table), few enough that the batch stays in L2 (about 80 bytes an event). Measured on the
/// reference job: 1,024 and 32,768 gained less, and 128 was 1.09x slower than the way before
/// (each slot prefetched as its event arrived, batches of 128 folded in arrival order).
const BATCH: usize = 1 << 13;

/// Marks a remembered record whose device the inventory lacks.
const UNKNOWN_FLAG: u32 = 1 << 31;

/// Raw bytes of a rejected record kept in the quarantine file.
pub const REJECT_RAW_MAX: usize = 4096;

impl<'a> AlertFold<'a> {
    pub fn new(q: &'a AlertQuery, inv: &'a Inventory) -> Self {
        let dense = DenseGroups::new(&q.by, q.split.is_some());
        AlertFold {
            lean: dense.is_some() && q.scope.devices.is_all() && inv.history.is_empty(),
            q,
            bound: q.labels.bind(inv),
            classify: q.has(Dim::Label) || (q.has(Dim::Category) && !q.labels.is_empty()),
            tap: q.tap.as_ref().map(|f| (f.0)()),
            inv,
            dense,
            index: FxHashMap::default(),
            keys: Vec::new(),
            stats: Vec::new(),
            seen: FxHashMap::default(),
            newest_seen: Day::MIN,
            prune_at: PRUNE_MIN,
            unknown_devices: FxHashSet::default(),
            totals: Totals::default(),
            rejects: Rejects::new(),
            source: 0,
            min_day: Day::MAX,
            max_day: Day::MIN,
            since: q.first_day(),
            until: q.last_day(),
            threads: 1,
            all_devices: q.scope.devices.is_all(),
            versioned: !inv.history.is_empty(),
            batch: Vec::with_capacity(BATCH),
            batch_devices: Vec::with_capacity(BATCH),
            looked_up: Vec::with_capacity(BATCH),
            lookup: BatchScratch::default(),
            dims: DimSet::of(&q.by),
            pending: Vec::new(),
            sorted: Vec::new(),
        }
    }

    /// The input the events that follow come from. The events still waiting in the batch are
    /// folded first, so a tap sees each alert with its own input.
    pub fn set_source(&mut self, source: usize) {
        if source != self.source {
            self.flush();
            self.source = source;
        }
        if let Some(tap) = &mut self.tap {
            tap.set_source(source);
        }
    }

    fn group(&mut self, key: GroupKey) -> u32 {
        match self
            .dense
            .as_mut()
            .and_then(|d| d.find(DenseKey::from(&key)))
        {
            Some((_, Some(i))) => i,
            Some((slot, None)) => self.add_dense_group(slot, key),
            None => self.hashed_group(key),
        }
    }

    /// Numbers a new group in the slot the dense index gave for it.
    fn add_dense_group(&mut self, slot: Slot, key: GroupKey) -> u32 {
        let i = self.stats.len() as u32;
        if let Some(dense) = &mut self.dense {
            dense.set(slot, i);
        }
        self.keys.push(key);
        self.stats.push(GroupStat::default());
        i
    }

    /// The number of a group the dense index does not hold.
    fn hashed_group(&mut self, key: GroupKey) -> u32 {
        let packed = key.pack();
        if let Some(&i) = self.index.get(&packed) {
            return i;
        }
        let i = self.stats.len() as u32;
        self.index.insert(packed, i);
        self.keys.push(key);
        self.stats.push(GroupStat::default());
        i
    }

    /// The group key of a record (the dimensions not grouped by are `None`).
    fn key_of(
        &self,
        ev: &Event,
        day: Day,
        device: Option<u64>,
        info: &DeviceInfo,
        code: AlertCode,
    ) -> GroupKey {
        let q = self.q;
        let dims = self.dims;
        let mut key = GroupKey {
            day: (dims.has(Dim::Day) || dims.has(Dim::Hour)).then_some(day),
            hour: dims.has(Dim::Hour).then(|| q.scope.clock.hour(ev.ts)),
            region: dims.has(Dim::Region).then_some(info.region),
            device_type: dims.has(Dim::DeviceType).then_some(info.device_type),
            generation: dims.has(Dim::Generation).then_some(info.generation),
            code: dims.has(Dim::Code).then_some(code),
            category: None,
            model: dims.has(Dim::Model).then_some(info.model),
            firmware: dims.has(Dim::Firmware).then_some(info.firmware),
            label: None,
            class: q.split.as_ref().map(|r| r.class(ev, device, info, code)),
            device: if dims.has(Dim::Device) { device } else { None },
        };
        if self.classify {
            let (label, category) = self.bound.classify(code, info.generation, info.model);
            key.label = dims.has(Dim::Label).then_some(label);
            key.category = dims.has(Dim::Category).then_some(category);
        } else if dims.has(Dim::Category) {
            key.category = Some(catalogue::category_id(code));
        }
        key
    }

    /// The group number of a record. Where the dense index serves the query only the parts it
    /// reads are gathered, and the whole key is built for a new group alone; the key it would
    /// build holds nothing else (`DenseGroups::new` refuses every other dimension).
    #[inline]
    fn group_of(
        &mut self,
        ev: &Event,
        day: Day,
        device: Option<u64>,
        info: &DeviceInfo,
        code: AlertCode,
    ) -> u32 {
        let dims = self.dims;
        let found = self.dense.as_mut().and_then(|d| {
            d.find(DenseKey {
                day: dims.has(Dim::Day).then_some(day),
                region: dims.has(Dim::Region).then_some(info.region),
                device_type: dims.has(Dim::DeviceType).then_some(info.device_type),
                generation: dims.has(Dim::Generation).then_some(info.generation),
                code: dims.has(Dim::Code).then_some(code),
            })
        });
        match found {
            Some((_, Some(i))) => i,
            Some((slot, None)) => {
                let key = self.key_of(ev, day, device, info, code);
                self.add_dense_group(slot, key)
            }
            None => {
                let key = self.key_of(ev, day, device, info, code);
                self.hashed_group(key)
            }
        }
    }

    /// What the inventory holds for a record's device, its firmware the version the device
    /// ran at the record's time when the inventory has a firmware history.
    #[inline]
    fn known(&self, ev: &Event, device: Option<u64>, slot: Option<u64>) -> Option<DeviceInfo> {
        let mut known = slot.map(DeviceInfo::unpack);
        if self.versioned
            && let (Some(d), Some(i)) = (device, known.as_mut())
        {
            // The version the device ran when it raised the alert, not the inventory's.
            i.firmware = self.inv.history.version_at(d, ev.ts, i.firmware);
        }
        known
    }

    /// A record's device as grouped: the inventory's, else what the record says of itself.
    #[inline]
    fn info(&self, ev: &Event, device: Option<u64>, slot: Option<u64>) -> DeviceInfo {
        self.known(ev, device, slot)
            .unwrap_or_else(|| DeviceInfo::from_record(&ev.attrs))
    }

    /// The group of a record, or `None` when its device is outside the query's scope.
    fn scoped_group(
        &mut self,
        ev: &Event,
        day: Day,
        device: Option<u64>,
        slot: Option<u64>,
        code: AlertCode,
    ) -> Option<u32> {
        let info = self.info(ev, device, slot);
        if !self.all_devices && !self.q.scope.devices.matches(&info) {
            return None;
        }
        Some(self.group_of(ev, day, device, &info, code))
    }

    /// `scoped_group` where every device is in scope, the firmware is the inventory's and the
    /// dense index serves the query (`lean`): the group is found from the attribute bits of
    /// the packed inventory value, and a `DeviceInfo` is built only for a new group.
    #[inline]
    fn lean_group(
        &mut self,
        ev: &Event,
        day: Day,
        device: Option<u64>,
        slot: Option<u64>,
        code: AlertCode,
    ) -> u32 {
        let (r, t, g) = match slot {
            Some(v) => DeviceInfo::attr_indices(v),
            None => {
                let i = DeviceInfo::from_record(&ev.attrs);
                (
                    i.region as usize,
                    i.device_type as usize,
                    i.generation as usize,
                )
            }
        };
        let dims = self.dims;
        let found = self.dense.as_mut().and_then(|d| {
            d.find_indexed(
                dims.has(Dim::Day).then_some(day),
                dims.has(Dim::Code).then_some(code),
                r,
                t,
                g,
            )
        });
        match found {
            Some((_, Some(i))) => i,
            _ => {
                let info = self.info(ev, device, slot);
                self.group_of(ev, day, device, &info, code)
            }
        }
    }

    /// Folds one event; `slot` is what the inventory holds for its device (`None`: no device,
    /// or one the inventory lacks).
    #[inline]
    fn fold(&mut self, ev: &Event, slot: Option<u64>) {
        let t = &mut self.totals;
        t.read += 1;
        if !ev.kind.is_alert() {
            t.non_alert += 1;
            return;
        }
        let Some(code) = ev.code else {
            t.non_alert += 1;
            return;
        };
        let day = self.q.scope.clock.day(ev.ts);
        let in_range = self.since.is_none_or(|s| day >= s) && self.until.is_none_or(|u| day <= u);
        if in_range {
            // The period is the data's, whatever the code and device filters keep: a rate over
            // North's alerts divides by North's devices over the same days as every region's.
            self.min_day = self.min_day.min(day);
            self.max_day = self.max_day.max(day);
        }
        if !in_range
            || self.q.codes.as_ref().is_some_and(|f| !f.matches(code))
            || !self.q.scope.keeps_code(code)
        {
            t.out_of_scope += 1;
            return;
        }
        let device = ev.device.map(|d| d.0);
        let g = if self.lean {
            self.lean_group(ev, day, device, slot, code)
        } else {
            match self.scoped_group(ev, day, device, slot, code) {
                Some(g) => g,
                None => {
                    self.totals.out_of_scope += 1;
                    return;
                }
            }
        };
        let q = self.q;
        let dedup = match q.dedup {
            Dedup::Off => false,
            Dedup::Auto => ev.message_id != 0,
            Dedup::On => true,
        };
        if dedup {
            let fp = fingerprint(ev, code);
            if self.seen.contains_key(&fp) {
                self.totals.duplicates += 1;
                return;
            }
            self.seen.insert(
                fp,
                (
                    g,
                    ev.count.min(UNKNOWN_FLAG - 1) | if slot.is_none() { UNKNOWN_FLAG } else { 0 },
                    day,
                ),
            );
            self.newest_seen = self.newest_seen.max(day);
            if self.seen.len() >= self.prune_at {
                self.prune_seen();
            }
        }
        if self.tap.is_some() {
            let known = match self.versioned {
                true => self.known(ev, device, slot).map(DeviceInfo::pack),
                false => slot,
            };
            if let Some(tap) = &mut self.tap {
                tap.alert(ev, code, known, day);
            }
        }
        self.totals.accepted_alerts += 1;
        self.totals.alerts += ev.count as u64;
        if slot.is_none() {
            self.totals.unknown_device_records += 1;
            if let Some(d) = device {
                self.unknown_devices.insert(d);
            }
        }
        let s = &mut self.stats[g as usize];
        s.alerts += ev.count as u64;
        s.records += 1;
        if q.distinct {
            self.pending.push((g, device.unwrap_or(u64::MAX)));
        }
    }

    /// Inserts the devices waiting in `pending` into their groups' distinct counters, group
    /// after group. Records arrive in random group order, and each insert used to touch a
    /// random line of the day's few hundred sketches (about 700 KB, more than L2 holds);
    /// bucketed by group (a counting sort on the low bits of the group index, which numbers
    /// a day's groups consecutively) each sketch is read into L1 once per batch. A distinct
    /// count does not depend on the order of its inserts (see `Distinct`), so the figures
    /// are the same.
    fn settle(&mut self) {
        const BUCKETS: usize = 1024;
        if self.pending.is_empty() {
            return;
        }
        let mut start = vec![0u32; BUCKETS + 1];
        for &(g, _) in &self.pending {
            start[(g as usize & (BUCKETS - 1)) + 1] += 1;
        }
        for i in 0..BUCKETS {
            start[i + 1] += start[i];
        }
        self.sorted.clear();
        self.sorted.resize(self.pending.len(), (0, 0));
        for &(g, d) in &self.pending {
            let b = g as usize & (BUCKETS - 1);
            self.sorted[start[b] as usize] = (g, d);
            start[b] += 1;
        }
        for &(g, d) in &self.sorted {
            self.stats[g as usize].devices.insert(d);
        }
        self.pending.clear();
    }

    /// Forgets identities more than the redelivery window older than the newest one.
    fn prune_seen(&mut self) {
        let horizon = self.newest_seen.saturating_sub(self.q.dedup_window);
        self.seen.retain(|_, v| v.2 >= horizon);
        self.prune_at = (self.seen.len() * 2).max(PRUNE_MIN);
    }

    /// Folds the events still waiting in the batch.
    pub fn flush(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        self.batch_devices.clear();
        self.batch_devices
            .extend(batch.iter().map(|ev| ev.device.map(|d| d.0)));
        let mut looked_up = std::mem::take(&mut self.looked_up);
        self.inv
            .devices
            .get_batch(&self.batch_devices, &mut looked_up, &mut self.lookup);
        for (ev, &slot) in batch.iter().zip(&looked_up) {
            self.fold(ev, slot);
        }
        self.looked_up = looked_up;
        self.batch = batch;
        self.batch.clear();
        // A batch adds at most `BATCH`: `pending` never grows past `PENDING`.
        if self.pending.len() > PENDING - BATCH {
            self.settle();
        }
    }

    /// Folds another worker's state into this one, the groups' counts on `threads` threads
    /// (the distinct-device sets are most of the work, and it comes when every worker is
    /// done). A record both workers saw (a duplicate split across chunks) is taken out of the
    /// counts once here.
    pub fn merge(&mut self, mut other: AlertFold<'a>, threads: usize) {
        self.flush();
        other.flush();
        self.settle();
        other.settle();
        let remap: Vec<u32> = other.keys.iter().map(|k| self.group(*k)).collect();
        // Their groups by our numbers: distinct keys, so each of ours takes at most one.
        let mut theirs: Vec<Option<GroupStat>> = Vec::with_capacity(self.stats.len());
        theirs.resize_with(self.stats.len(), || None);
        for (i, s) in other.stats.into_iter().enumerate() {
            theirs[remap[i] as usize] = Some(s);
        }
        merge_stats(&mut self.stats, theirs, threads);
        self.threads = self.threads.max(threads);
        let mut t = other.totals;
        for (fp, (g, count, day)) in other.seen {
            let g = remap[g as usize];
            match self.seen.entry(fp) {
                std::collections::hash_map::Entry::Occupied(_) => {
                    if count & UNKNOWN_FLAG != 0 {
                        t.unknown_device_records -= 1;
                    }
                    let count = count & !UNKNOWN_FLAG;
                    let s = &mut self.stats[g as usize];
                    s.alerts -= count as u64;
                    s.records -= 1;
                    t.accepted_alerts -= 1;
                    t.alerts -= count as u64;
                    t.duplicates += 1;
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((g, count, day));
                }
            }
        }
        self.totals.add(&t);
        self.newest_seen = self.newest_seen.max(other.newest_seen);
        if self.seen.len() >= self.prune_at {
            self.prune_seen();
        }
        self.unknown_devices.extend(other.unknown_devices);
        if let (Some(mine), Some(theirs)) = (&mut self.tap, other.tap) {
            mine.merge_from(theirs);
        }
        self.rejects.append(other.rejects);
        self.min_day = self.min_day.min(other.min_day);
        self.max_day = self.max_day.max(other.max_day);
    }

    /// Finishes the run: rows sorted by key, with denominators and rates.
    /// Finishes the run and hands back the tap (see `AlertQuery::tap`).
    pub fn finish_with_tap(mut self) -> (AlertReport, Option<Box<dyn Tap>>) {
        // The events still in the batch go through the tap before it is handed back.
        self.flush();
        let tap = self.tap.take();
        (self.finish(), tap)
    }

    pub fn finish(mut self) -> AlertReport {
        self.flush();
        self.settle();
        self.totals.unknown_devices = self.unknown_devices.len() as u64;
        let denoms =
            Denominators::build_filtered(self.inv, self.q.denom_dims(), &self.q.scope.devices);
        let period = match (self.since, self.until) {
            (Some(s), Some(u)) => Some((s, u)),
            _ if self.min_day > self.max_day => None,
            (s, u) => Some((s.unwrap_or(self.min_day), u.unwrap_or(self.max_day))),
        };
        let mut stats = self.stats;
        let devices = count_devices(&mut stats, self.threads);
        let mut rows: Vec<AlertRow> = self
            .keys
            .iter()
            .zip(stats)
            .zip(devices)
            .filter(|((_, s), _)| s.records > 0)
            .map(|((k, s), (devices, devices_exact))| {
                let dk = k.denom_key();
                let denominator = match (k.day, period) {
                    // A rate per 1,000 devices means nothing for one device.
                    _ if k.device.is_some() => None,
                    (Some(d), _) => denoms.installed(&dk, d),
                    (None, Some((from, to))) => denoms.device_days(&dk, from, to),
                    (None, None) => None,
                };
                let per_1000 = denominator
                    .filter(|&d| d > 0)
                    .map(|d| s.alerts as f64 * 1000.0 / d as f64);
                AlertRow {
                    key: *k,
                    alerts: s.alerts,
                    records: s.records,
                    devices,
                    devices_exact,
                    denominator,
                    per_1000,
                }
            })
            .collect();
        if self.q.zeros
            && let Some(period) = period
        {
            let zeros = zero_rows(&rows, &self.q.by, &denoms, period);
            rows.extend(zeros);
        }
        rows.sort_by_key(|r| r.key);
        AlertReport {
            by: self.q.by.clone(),
            rows,
            totals: self.totals,
            rejects: self.rejects,
            period,
            distinct: self.q.distinct,
            labels: self.q.labels.clone(),
            scope: self.q.scope.clone(),
        }
    }
}

/// Each group's distinct-device count and whether it is exact, on up to `threads` threads
/// (an estimate reads 2,048 registers; a report can have tens of thousands). The sets are
/// dropped where they are counted.
fn count_devices(stats: &mut [GroupStat], threads: usize) -> Vec<(u64, bool)> {
    let count = |stats: &mut [GroupStat]| -> Vec<(u64, bool)> {
        stats
            .iter_mut()
            .map(|s| {
                let d = std::mem::take(&mut s.devices);
                (d.count(), d.is_exact())
            })
            .collect()
    };
    let threads = threads.clamp(1, (stats.len() / MIN_PER_THREAD).max(1));
    if threads == 1 {
        return count(stats);
    }
    let per = stats.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = stats
            .chunks_mut(per)
            .map(|c| s.spawn(move || count(c)))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("a counting thread panicked"))
            .collect()
    })
}

/// Below this many groups a thread costs more than it saves.
const MIN_PER_THREAD: usize = 2048;

/// Adds `theirs[i]` (where there is one) into `mine[i]`, in runs of groups on up to
/// `threads` threads. What a group holds after does not depend on the split.
fn merge_stats(mine: &mut [GroupStat], mut theirs: Vec<Option<GroupStat>>, threads: usize) {
    let add = |mine: &mut [GroupStat], theirs: &mut [Option<GroupStat>]| {
        for (m, t) in mine.iter_mut().zip(theirs) {
            if let Some(s) = t.take() {
                m.alerts += s.alerts;
                m.records += s.records;
                m.devices.merge(s.devices);
            }
        }
    };
    let threads = threads.clamp(1, (mine.len() / MIN_PER_THREAD).max(1));
    if threads == 1 {
        add(mine, &mut theirs);
        return;
    }
    let per = mine.len().div_ceil(threads);
    std::thread::scope(|s| {
        for (m, t) in mine.chunks_mut(per).zip(theirs.chunks_mut(per)) {
            s.spawn(move || add(m, t));
        }
    });
}

/// The rows of 0 alerts that make each group's daily series complete over `period`: for every
/// group seen on some day (and, grouped by device attributes only, every group with installed
/// devices), each day it has installed devices and no row. Nothing without a day dimension, a
/// device dimension or a split (their groups are not series of days).
fn zero_rows(
    rows: &[AlertRow],
    by: &[Dim],
    denoms: &Denominators,
    (from, to): (Day, Day),
) -> Vec<AlertRow> {
    if !by.contains(&Dim::Day)
        || by.contains(&Dim::Device)
        || rows.iter().any(|r| r.key.class.is_some())
    {
        return Vec::new();
    }
    let present: FxHashSet<GroupKey> = rows.iter().map(|r| r.key).collect();
    let mut groups: FxHashSet<GroupKey> = rows
        .iter()
        .map(|r| GroupKey { day: None, ..r.key })
        .collect();
    let attributes_only = by.iter().all(|d| {
        matches!(
            d,
            Dim::Day | Dim::Region | Dim::DeviceType | Dim::Generation | Dim::Model | Dim::Firmware
        )
    });
    if attributes_only {
        groups.extend(denoms.keys().map(|k| GroupKey {
            region: k.region,
            device_type: k.device_type,
            generation: k.generation,
            model: k.model,
            firmware: k.firmware,
            ..Default::default()
        }));
    }
    let mut out = Vec::new();
    for g in groups {
        for day in from..=to {
            let key = GroupKey {
                day: Some(day),
                ..g
            };
            if present.contains(&key) {
                continue;
            }
            let denominator = denoms.installed(&key.denom_key(), day);
            if denominator.is_some_and(|n| n > 0) {
                out.push(AlertRow {
                    key,
                    alerts: 0,
                    records: 0,
                    devices: 0,
                    devices_exact: true,
                    denominator,
                    per_1000: Some(0.0),
                });
            }
        }
    }
    out
}

/// Several folds fed by one read of the inputs: every event goes to each fold. Rejects go to
/// the first only, whose totals are the run's (the others' count no rejects).
pub struct Folds<'a>(pub Vec<AlertFold<'a>>);

impl Sink for Folds<'_> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        for f in &mut self.0 {
            f.event(ev);
        }
    }

    fn reject(&mut self, line: u64, offset: u64, reason: String, raw: &[u8]) {
        if let Some(f) = self.0.first_mut() {
            f.reject(line, offset, reason, raw);
        }
    }
}

/// Identity of a record for duplicate detection: device, code, time and message id.
fn fingerprint(ev: &Event, code: AlertCode) -> u64 {
    let mut h = super::distinct::mix64(ev.device.map(|d| d.0).unwrap_or(0));
    h = super::distinct::mix64(h ^ ev.ts as u64);
    h = super::distinct::mix64(h ^ code.0 as u64);
    super::distinct::mix64(h ^ ev.message_id)
}

impl Sink for AlertFold<'_> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        self.batch.push(*ev);
        if self.batch.len() == BATCH {
            self.flush();
        }
    }

    fn reject(&mut self, line: u64, offset: u64, reason: String, raw: &[u8]) {
        self.totals.read += 1;
        self.totals.rejected += 1;
        self.rejects.push(Reject {
            source: self.source,
            line,
            offset,
            reason,
            raw: raw[..raw.len().min(REJECT_RAW_MAX)].to_vec(),
        });
    }
}

/// One output row.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertRow {
    pub key: GroupKey,
    pub alerts: u64,
    pub records: u64,
    pub devices: u64,
    pub devices_exact: bool,
    /// Installed devices that day (grouped by day) or device-days over the period.
    pub denominator: Option<u64>,
    /// Alerts per 1,000 devices per day.
    pub per_1000: Option<f64>,
}

/// The finished answer of `alerts`.
#[derive(Clone, Debug)]
pub struct AlertReport {
    pub by: Vec<Dim>,
    pub rows: Vec<AlertRow>,
    pub totals: Totals,
    /// Rejected records, in bounded memory (see [`Rejects`]); written in (source, line)
    /// order.
    pub rejects: Rejects,
    pub period: Option<(Day, Day)>,
    /// Whether `devices` was counted (see [`AlertQuery::distinct`]).
    pub distinct: bool,
    /// The label and category names behind `GroupKey::label` and `GroupKey::category`.
    pub labels: Arc<Labels>,
    /// The selection the report was computed over (its denominators count only these devices).
    pub scope: Scope,
}

impl AlertReport {
    /// A report of no alerts, for runs whose only inputs are side files.
    pub fn empty() -> AlertReport {
        AlertReport {
            by: vec![],
            rows: vec![],
            totals: Totals::default(),
            rejects: Rejects::new(),
            period: None,
            distinct: false,
            labels: Default::default(),
            scope: Scope::default(),
        }
    }

    /// Counts a side input's rejects (outcome records, migration logs) in the run's totals and
    /// quarantine file.
    pub fn add_rejects(&mut self, rejects: Vec<Reject>) {
        let n = rejects.len() as u64;
        self.totals.read += n;
        self.totals.rejected += n;
        self.rejects.extend(rejects);
    }

    /// Whether rows are days (or hours): their denominators are the day's installed devices,
    /// not device-days over the period.
    pub fn by_day(&self) -> bool {
        self.by.contains(&Dim::Day) || self.by.contains(&Dim::Hour)
    }
}

/// A `--by` list, parsed with `Dim::parse_list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupBy(pub Vec<Dim>);

impl std::str::FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Dim::parse_list(s).map(GroupBy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::DeviceTable;
    use crate::model::DeviceId;
    use crate::model::{DeviceType, Generation, Region};

    fn ev(day: i64, id: u64) -> Event {
        let mut e = Event::alert(day * 86_400_000, DeviceId(id), AlertCode::device(0x8F35));
        e.message_id = id;
        e
    }

    #[test]
    fn dedup_remembers_a_window_of_event_time() {
        let q = AlertQuery {
            by: vec![Dim::Code],
            ..Default::default()
        };
        let inv = Inventory::default();
        let mut f = AlertFold::new(&q, &inv);
        f.prune_at = 4;
        // Day 100: ids 1, 2; a week and a day later: ids 3, 4 (the window is enforced here).
        for (day, id) in [(100, 1), (100, 2), (108, 3), (108, 4)] {
            f.event(&ev(day, id));
        }
        f.flush();
        assert_eq!(
            f.seen.len(),
            2,
            "day 100 is outside the 7-day window of day 108"
        );
        // A repeat inside the window is a duplicate; one older than it counts as new.
        f.event(&ev(108, 3));
        f.event(&ev(100, 1));
        let r = f.finish();
        assert_eq!((r.totals.duplicates, r.totals.accepted_alerts), (1, 5));
    }

    proptest::proptest! {
        /// The dense index gives every key the number the hash map gives it, whatever the
        /// dimensions and the order keys come in (codes beyond `MAX_CODES` included).
        #[test]
        fn dense_groups_number_keys_as_the_hash_map_does(
            dims in proptest::sample::subsequence(
                vec![Dim::Day, Dim::Region, Dim::DeviceType, Dim::Generation, Dim::Code], 0..=5),
            keys in proptest::collection::vec(
                (0i32..5, 0usize..8, 0usize..10, 0usize..3, 0u32..400), 0..600),
        ) {
            let q = AlertQuery { by: dims.clone(), ..Default::default() };
            let inv = Inventory::default();
            let mut dense = AlertFold::new(&q, &inv);
            proptest::prop_assert!(dense.dense.is_some());
            let mut hashed = AlertFold::new(&q, &inv);
            hashed.dense = None;
            let has = |d| dims.contains(&d);
            for (day, r, t, g, c) in keys {
                // Codes spread over device, DCC `N` and `AD` codes; many, to pass the cap.
                let code = AlertCode((c % 3) << 16 | (c * 7919 % 65_536));
                let key = GroupKey {
                    day: has(Dim::Day).then_some(19_000 + day),
                    region: has(Dim::Region).then_some(Region::ALL[r]),
                    device_type: has(Dim::DeviceType).then_some(DeviceType::ALL[t]),
                    generation: has(Dim::Generation).then_some(Generation::ALL[g]),
                    code: has(Dim::Code).then_some(code),
                    ..Default::default()
                };
                proptest::prop_assert_eq!(dense.group(key), hashed.group(key));
            }
            proptest::prop_assert_eq!(&dense.keys, &hashed.keys);
        }
    }

    /// Events over enough groups that merging and counting fan out to threads, split over
    /// two workers: the same rows (counts, distinct devices, exactness) as one worker that
    /// saw everything, whatever the threads.
    #[test]
    fn merging_on_threads_gives_what_one_worker_gives() {
        let q = AlertQuery {
            by: vec![Dim::Day, Dim::Code],
            distinct: true,
            ..Default::default()
        };
        let inv = Inventory::default();
        let mut events = Vec::new();
        for g in 0..6_000u64 {
            // Most groups have a few devices; every 50th passes the exact limit.
            let devices = if g % 50 == 0 { 700 } else { 1 + g % 5 };
            for d in 0..devices {
                let mut e = Event::alert(
                    (19_000 + (g % 1_000) as i64) * 86_400_000,
                    DeviceId(d * 0x9E37_79B9 + g),
                    AlertCode::device(0x8F00 + (g / 1_000) as u16),
                );
                e.message_id = 0;
                events.push(e);
            }
        }
        let rows = |r: AlertReport| -> Vec<(GroupKey, u64, u64, u64, bool)> {
            r.rows
                .iter()
                .map(|r| (r.key, r.alerts, r.records, r.devices, r.devices_exact))
                .collect()
        };
        let mut one = AlertFold::new(&q, &inv);
        events.iter().for_each(|e| one.event(e));
        let want = rows(one.finish());
        assert_eq!(want.len(), 6_000);
        assert!(want.iter().any(|r| !r.4), "some groups are estimated");
        for threads in [1, 2, 3] {
            let (mut a, mut b) = (AlertFold::new(&q, &inv), AlertFold::new(&q, &inv));
            for (i, e) in events.iter().enumerate() {
                if i % 3 == 0 { b.event(e) } else { a.event(e) }
            }
            a.merge(b, threads);
            assert_eq!(rows(a.finish()), want, "{threads} threads");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]
        /// The lean path (groups found from the packed inventory value's bits) gives every
        /// group the figures the general path gives it: devices known and unknown, with and
        /// without attributes of their own, no device at all, and more codes than the dense
        /// index numbers (those groups go to the hash map on both paths).
        #[test]
        fn the_lean_path_folds_what_the_general_path_folds(
            events in proptest::collection::vec(
                (0u64..40, 0u16..300, 0i64..4, 0u8..4, 0u8..20, 1u32..4), 1..1_500),
            shape in 0usize..4,
        ) {
            let by = [
                vec![Dim::Day, Dim::Region, Dim::Code, Dim::DeviceType],
                vec![Dim::Region, Dim::Generation],
                vec![Dim::Code],
                vec![Dim::Day, Dim::Region, Dim::DeviceType, Dim::Generation, Dim::Code],
            ][shape].clone();
            let q = AlertQuery { by, distinct: true, ..Default::default() };
            // Devices 0..30 are in the inventory with varied attributes; 30..40 are not.
            let entries: Vec<(u64, u64)> = (0..30u64)
                .map(|d| {
                    let info = DeviceInfo {
                        region: Region::from_index((d % 7) as u8),
                        device_type: DeviceType::from_index((d % 5) as u8),
                        generation: Generation::from_index((d % 3) as u8),
                        model: (d % 4) as u16,
                        firmware: (d % 2) as u16,
                        installed: None,
                    };
                    (d, info.pack())
                })
                .collect();
            let inv = Inventory { devices: DeviceTable::build(&entries).0, ..Default::default() };
            let events: Vec<Event> = events
                .iter()
                .map(|&(d, code, day, attrs, region, count)| {
                    let mut e = Event::alert(
                        (19_000 + day) * 86_400_000 + d as i64,
                        DeviceId(d),
                        AlertCode::device(0x8000 + code),
                    );
                    e.count = count;
                    if d == 39 {
                        e.device = None;
                    }
                    if attrs > 1 {
                        e.attrs.region = Some(Region::from_index(region));
                        e.attrs.device_type = Some(DeviceType::from_index(region % 6));
                        e.attrs.generation = Some(Generation::from_index(attrs - 2));
                    }
                    e
                })
                .collect();
            let run = |lean: bool| {
                let mut f = AlertFold::new(&q, &inv);
                proptest::prop_assert!(f.lean, "the query is one the lean path serves");
                f.lean = lean;
                events.iter().for_each(|e| f.event(e));
                let r = f.finish();
                let mut rows: Vec<_> = r
                    .rows
                    .iter()
                    .map(|r| (r.key.pack(), r.alerts, r.records, r.devices, r.devices_exact))
                    .collect();
                rows.sort();
                Ok((rows, r.totals.unknown_device_records, r.totals.alerts))
            };
            proptest::prop_assert_eq!(run(true)?, run(false)?);
        }
    }

    #[test]
    fn no_dense_index_for_other_shapes() {
        for by in [
            vec![Dim::Day, Dim::Model],
            vec![Dim::Hour],
            vec![Dim::Device, Dim::Code],
        ] {
            let q = AlertQuery {
                by,
                ..Default::default()
            };
            let inv = Inventory::default();
            assert!(AlertFold::new(&q, &inv).dense.is_none());
        }
    }

    #[derive(Default)]
    struct Count(u64);

    impl Tap for Count {
        fn alert(&mut self, _: &Event, _: AlertCode, _: Option<u64>, _: Day) {
            self.0 += 1;
        }
        fn merge_from(&mut self, other: Box<dyn Tap>) {
            if let Ok(o) = other.into_any().downcast::<Count>() {
                self.0 += o.0;
            }
        }
        fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
            self
        }
    }

    #[test]
    fn the_tap_sees_every_alert_of_a_fold_that_never_merged() {
        let q = AlertQuery {
            tap: Some(TapFactory(Arc::new(|| Box::new(Count::default())))),
            ..Default::default()
        };
        let inv = Inventory::default();
        let mut fold = AlertFold::new(&q, &inv);
        let code = AlertCode::parse(b"8F35").unwrap();
        for i in 0..(BATCH as i64 + 5) {
            fold.event(&Event::alert(1_704_067_200_000 + i, DeviceId(7), code));
        }
        let (report, tap) = fold.finish_with_tap();
        let seen = tap.unwrap().into_any().downcast::<Count>().unwrap().0;
        assert_eq!(report.totals.accepted_alerts, BATCH as u64 + 5);
        assert_eq!(
            seen,
            BATCH as u64 + 5,
            "the last partial batch reaches the tap"
        );
    }
}
