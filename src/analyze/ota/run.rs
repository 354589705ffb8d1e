//! One OTA analysis from its inputs to its typed result: gather each targeted device's
//! evidence (outcome records and firmware alerts), judge every device, aggregate, pick the
//! devices that cannot be upgraded remotely, replay the guard rails, and measure the
//! firmware's effect on the alerts.
//!
//! The decision a reader would not guess: the alert inputs are read twice. The first read
//! collects the firmware alerts (a fixed set of codes, whatever the user's code filter: that
//! filter narrows the effect table instead, `OtaParams::codes`); only once every device is
//! judged are the upgrade days known, and the effect needs them to split the second read.

use super::campaign::Campaigns;
use super::device::judge;
use super::effect::{Design, Effect, Role, firmware_effect};
use super::events::{DeviceEvents, firmware_alerts, is_hardware_reason, payload_names};
use super::funnel::{
    Aggregate, Cohort, FailureKey, Funnel, JudgedDevice, cannot_upgrade, model_name,
};
use super::guard::{GuardRow, guard_rails};
use super::outcomes::OutcomeRecords;
use crate::analyze::alerts::{AlertReport, CodeFilter};
use crate::analyze::reader::Reader;
use crate::analyze::stats::percentile;
use crate::inventory::Inventory;
use crate::model::firmware::Stage;
use crate::model::time::day_of;
use crate::model::{Day, DeviceId, Interner, Region, Reject};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The knobs of the analysis.
#[derive(Clone, Debug)]
pub struct OtaParams {
    /// Failed attempts after which a device likely cannot be upgraded remotely.
    pub max_failures: u32,
    /// The failure rate whose 95% Wilson lower bound trips a guard rail.
    pub guard_threshold: f64,
    /// Devices that must have finished an attempt before a guard rail may trip.
    pub guard_min_devices: u64,
    /// The codes the effect table keeps (all when `None`).
    pub codes: Option<CodeFilter>,
}

impl OtaParams {
    pub const DEFAULT_MAX_FAILURES: u32 = 3;
    pub const DEFAULT_GUARD_THRESHOLD: f64 = 0.2;
    pub const DEFAULT_GUARD_MIN_DEVICES: u64 = 30;
}

impl Default for OtaParams {
    /// The defaults `fleetwatch ota` documents.
    fn default() -> Self {
        OtaParams {
            max_failures: Self::DEFAULT_MAX_FAILURES,
            guard_threshold: Self::DEFAULT_GUARD_THRESHOLD,
            guard_min_devices: Self::DEFAULT_GUARD_MIN_DEVICES,
            codes: None,
        }
    }
}

/// How one campaign stands.
#[derive(Clone, Debug, PartialEq)]
pub struct CampaignSummary {
    pub campaign: u16,
    pub total: Funnel,
    /// Hours from first event to running the target version: median, p90, p99.
    pub upgrade_hours: [Option<f64>; 3],
}

/// What the outcome records held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    pub read: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Accepted rows about devices outside the campaign.
    pub outside: u64,
}

/// Everything the analysis found. Names are interned: campaigns and versions in
/// `campaigns`, failure reasons in `reasons`, models in `models`.
#[derive(Debug)]
pub struct OtaResult {
    pub params: OtaParams,
    pub campaigns: Campaigns,
    pub reasons: Interner,
    pub models: Interner,
    pub aggregate: Aggregate,
    /// Per campaign that targets a device, in campaign order.
    pub summaries: Vec<CampaignSummary>,
    /// Failure kinds, most devices first, with the cumulative share.
    pub failures: Vec<(FailureKey, u64, f64)>,
    /// Devices that likely cannot be upgraded remotely, by device id.
    pub stragglers: Vec<JudgedDevice>,
    pub stragglers_by: BTreeMap<(Region, u16), u64>,
    /// Per region, then per model.
    pub guards: Vec<GuardRow>,
    /// The effect table's rows (empty without alert inputs).
    pub effects: Vec<Effect>,
    pub outcome_counts: OutcomeCounts,
    /// The outcome records' rejects.
    pub rejects: Vec<Reject>,
    /// The evidence read's report (totals and rejects of the alert inputs), if they were read.
    pub alert_report: Option<AlertReport>,
}

impl OtaResult {
    /// A model's name, `UNKNOWN_MODEL` when it has none.
    pub fn model_name(&self, m: u16) -> &str {
        model_name(&self.models, m)
    }
}

/// Analyses a campaign. `alerts` reads the alert inputs (`None` when there are none: the
/// outcome records are then the only evidence, and there is no effect).
pub fn analyse(
    mut campaigns: Campaigns,
    records: OutcomeRecords,
    inv: &Inventory,
    alerts: Option<&dyn Reader>,
    params: OtaParams,
) -> OtaResult {
    let OutcomeRecords {
        outcomes,
        mut reasons,
        versions,
    } = records;
    // Outcome rows, their versions mapped into the campaigns' numbering.
    let mut events: DeviceEvents = FxHashMap::default();
    let mut outside = 0u64;
    for row in &outcomes.rows {
        if !campaigns.targets.contains_key(&row.device) {
            outside += 1;
            continue;
        }
        let mut e = row.event;
        e.version = campaigns.versions.id(versions.name(e.version));
        events.entry(row.device).or_default().push(e);
    }
    let names = payload_names(
        &campaigns.target_version,
        &mut campaigns.versions,
        &mut reasons,
    );
    let alert_report = alerts.map(|reader| {
        let targets = Arc::new(campaigns.targets.keys().copied().collect());
        firmware_alerts(reader, targets, names, &mut events)
    });
    let mut models = Interner::default();
    let (aggregate, judged) = judge_all(&campaigns, events, inv, &mut models);
    let hardware = |r: u16| is_hardware_reason(&reasons, r);
    let stragglers: Vec<JudgedDevice> = judged
        .iter()
        .filter(|j| cannot_upgrade(&j.outcome, hardware, params.max_failures))
        .cloned()
        .collect();
    let mut stragglers_by: BTreeMap<(Region, u16), u64> = BTreeMap::new();
    for s in &stragglers {
        *stragglers_by
            .entry((s.cohort.region, s.cohort.model))
            .or_default() += 1;
    }
    let guards = guard_rails(
        &judged,
        &models,
        params.guard_threshold,
        params.guard_min_devices,
    );
    // The effect: over the alerts' period, or the evidence's when no alert fell in it.
    let effects = match (alerts, &alert_report) {
        (Some(reader), Some(report)) => match report.period.or_else(|| period_of(&judged)) {
            Some((first, last)) => {
                let roles = judged.iter().map(|j| {
                    let role = match j.outcome.upgraded_at {
                        Some(t) => Role::Treated(day_of(t)),
                        None if j.outcome.reached[Stage::Activation as usize] => Role::Excluded,
                        None => Role::Control,
                    };
                    let installed = inv.lookup(DeviceId(j.id)).and_then(|i| i.installed);
                    (j.id, role, installed)
                });
                let design = Design::new(roles, first, last);
                firmware_effect(reader, design, params.codes.as_ref())
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    OtaResult {
        summaries: summaries(&campaigns, &aggregate),
        failures: aggregate.failure_pareto(),
        outcome_counts: OutcomeCounts {
            read: outcomes.read,
            accepted: outcomes.rows.len() as u64,
            duplicates: outcomes.duplicates,
            rejected: outcomes.rejects.len() as u64,
            outside,
        },
        rejects: outcomes.rejects,
        params,
        campaigns,
        reasons,
        models,
        aggregate,
        stragglers,
        stragglers_by,
        guards,
        effects,
        alert_report,
    }
}

/// Judges every targeted device, in device id order, and aggregates them. A device's model is
/// the campaign file's, else the inventory's.
fn judge_all(
    campaigns: &Campaigns,
    mut events: DeviceEvents,
    inv: &Inventory,
    models: &mut Interner,
) -> (Aggregate, Vec<JudgedDevice>) {
    let mut agg = Aggregate::default();
    let mut judged = Vec::with_capacity(campaigns.targets.len());
    let mut ids: Vec<u64> = campaigns.targets.keys().copied().collect();
    ids.sort_unstable();
    for id in ids {
        let t = campaigns.targets[&id];
        let target_version = campaigns
            .target_version
            .get(t.campaign as usize)
            .copied()
            .unwrap_or(0);
        let mut ev = events.remove(&id).unwrap_or_default();
        let outcome = judge(&mut ev, target_version);
        let info = inv.lookup(DeviceId(id));
        let model = match campaigns.models.name(t.model) {
            "" => info.map(|i| inv.model_name(i.model)).unwrap_or(""),
            m => m,
        };
        let cohort = Cohort {
            campaign: t.campaign,
            region: info.map_or(Region::Unknown, |i| i.region),
            model: models.id(model),
            source: t.source,
        };
        agg.add(cohort, &outcome);
        judged.push(JudgedDevice {
            id,
            cohort,
            outcome,
        });
    }
    agg.finish();
    (agg, judged)
}

/// The first and last day any targeted device was heard from.
fn period_of(judged: &[JudgedDevice]) -> Option<(Day, Day)> {
    let first = judged.iter().filter_map(|j| j.outcome.first_seen).min()?;
    let last = judged.iter().filter_map(|j| j.outcome.last_seen).max()?;
    Some((day_of(first), day_of(last)))
}

/// Each campaign that targets a device: its funnel and time to upgrade.
fn summaries(campaigns: &Campaigns, agg: &Aggregate) -> Vec<CampaignSummary> {
    let mut out = Vec::new();
    for i in 1..campaigns.names.names.len() {
        let campaign = i as u16;
        let total = agg.campaign_total(campaign);
        if total.targeted == 0 {
            continue;
        }
        let hours = agg
            .hours_to_upgrade
            .get(&campaign)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        out.push(CampaignSummary {
            campaign,
            total,
            upgrade_hours: [0.5, 0.9, 0.99].map(|p| percentile(hours, p)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::ota::campaign::Target;
    use crate::analyze::ota::events::FwEvent;
    use crate::analyze::ota::funnel::UNKNOWN_MODEL;
    use crate::analyze::ota::outcomes::Outcome;
    use crate::model::firmware::Stage;

    fn row(device: u64, h: i64, stage: Stage, ok: bool, attempt: u8, version: u16) -> Outcome {
        Outcome {
            device,
            campaign: 0,
            event: FwEvent {
                ts: h * 3_600_000,
                stage,
                ok,
                reason: if ok { 0 } else { 1 },
                version,
                attempt,
                from_alert: false,
            },
        }
    }

    #[test]
    fn outcome_records_alone_judge_aggregate_and_replay() {
        let mut records = OutcomeRecords::default();
        records.reasons.id("hardware version mismatch");
        let v = records.versions.id("2.0");
        let mut rows = vec![
            row(1, 0, Stage::Transfer, true, 1, 0),
            row(1, 30, Stage::Running, true, 1, v),
            row(2, 0, Stage::Transfer, false, 1, 0),
            row(9, 0, Stage::Transfer, true, 1, 0), // not targeted
        ];
        records.outcomes.rows.append(&mut rows);
        let mut campaigns = Campaigns::default();
        let c = campaigns.names.id("C");
        campaigns.target_version = vec![0, campaigns.versions.id("2.0")];
        for d in [1, 2, 3] {
            let t = Target {
                campaign: c,
                source: 0,
                model: 0,
            };
            campaigns.targets.insert(d, t);
        }
        let params = OtaParams {
            max_failures: 3,
            guard_threshold: 0.2,
            guard_min_devices: 1,
            codes: None,
        };
        let r = analyse(campaigns, records, &Inventory::default(), None, params);
        assert_eq!(r.outcome_counts.outside, 1);
        let s = &r.summaries[0];
        assert_eq!(
            (s.total.targeted, s.total.running, s.total.failed),
            (3, 1, 1)
        );
        assert_eq!(s.total.not_started, 1);
        assert_eq!(s.upgrade_hours[0], Some(30.0));
        // Device 2 failed with a hardware mismatch: it cannot be upgraded remotely.
        let ids: Vec<u64> = r.stragglers.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![2]);
        assert_eq!(r.model_name(r.stragglers[0].cohort.model), UNKNOWN_MODEL);
        // Two devices finished a first attempt, one failed: both rails see 1 of 2.
        assert_eq!(r.guards.len(), 2);
        assert_eq!(r.guards[1].value, UNKNOWN_MODEL);
        assert_eq!(
            (r.guards[0].result.finished, r.guards[0].result.failed),
            (2, 1)
        );
        assert!(r.effects.is_empty() && r.alert_report.is_none());
    }
}
