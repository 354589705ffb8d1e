//! Known events: the runs of OTA firmware campaigns. While a campaign runs, its targeted
//! devices raise the firmware codes of every stage (transfer 8F8A/8F89, verification
//! 8F72/8F1C, activation 8F66/8F67, the new version running 8F43): hundreds of "spikes" that are
//! the campaign working, not an incident. `find` lists the episodes of those codes that fall in
//! a run apart from the incidents.
//!
//! A run is the first to the last day of the campaign's outcome records (`--outcomes`), or,
//! with only a campaign file, of the OTA stage alerts its targeted devices raised.

use crate::analyze::alerts::{AlertQuery, CodeFilter, GroupKey, Tap, TapFactory};
use crate::analyze::ota::campaign::Campaigns;
use crate::analyze::ota::outcomes::Outcomes;
use crate::analyze::reader::Reader;
use crate::catalogue;
use crate::model::{AlertCode, Clock, Day, Event};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// One campaign's run, in days (both ends included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignRun {
    pub name: String,
    pub first: Day,
    pub last: Day,
}

/// The codes an OTA stage reports.
const STAGE_CODES: [u16; 7] = [0x8F8A, 0x8F89, 0x8F72, 0x8F1C, 0x8F66, 0x8F67, 0x8F43];

/// Whether a campaign raises this code: an OTA stage code or any code of the catalogue's
/// firmware category.
pub fn is_campaign_code(code: AlertCode) -> bool {
    code.device_code().is_some_and(|c| STAGE_CODES.contains(&c))
        || catalogue::category(code) == "firmware"
}

/// Whether a group is made of campaign codes: its code is one, or (grouped by category) its
/// category is firmware.
pub fn is_campaign_group(g: &GroupKey) -> bool {
    match (g.code, g.category) {
        (Some(c), _) => is_campaign_code(c),
        (None, Some(cat)) => catalogue::category_names()
            .get(cat as usize)
            .is_some_and(|n| n == "firmware"),
        _ => false,
    }
}

/// Each campaign's run from its outcome records (rows that name no campaign count under
/// `unnamed`), sorted by start.
pub fn runs_from_outcomes(o: &Outcomes, clock: &Clock, unnamed: &str) -> Vec<CampaignRun> {
    let mut span: FxHashMap<u16, (Day, Day)> = FxHashMap::default();
    for r in &o.rows {
        let d = clock.day(r.event.ts);
        let e = span.entry(r.campaign).or_insert((d, d));
        e.0 = e.0.min(d);
        e.1 = e.1.max(d);
    }
    let mut runs: Vec<CampaignRun> = span
        .into_iter()
        .map(|(c, (first, last))| CampaignRun {
            name: if c == 0 {
                unnamed.to_string()
            } else {
                o.campaigns.name(c).to_string()
            },
            first,
            last,
        })
        .collect();
    runs.sort_by(|a, b| (a.first, &a.name).cmp(&(b.first, &b.name)));
    runs
}

/// First and last day per campaign of the stage alerts of its targeted devices.
struct RunTap {
    targets: Arc<FxHashMap<u64, u16>>,
    clock: Arc<Clock>,
    span: FxHashMap<u16, (Day, Day)>,
}

impl Tap for RunTap {
    fn alert(&mut self, ev: &Event, _code: AlertCode, _known: Option<u64>, _: Day) {
        let Some(&c) = ev.device.and_then(|d| self.targets.get(&d.0)) else {
            return;
        };
        let d = self.clock.day(ev.ts);
        let e = self.span.entry(c).or_insert((d, d));
        e.0 = e.0.min(d);
        e.1 = e.1.max(d);
    }

    fn merge_from(&mut self, other: Box<dyn Tap>) {
        if let Ok(o) = other.into_any().downcast::<RunTap>() {
            for (c, (a, b)) in o.span {
                let e = self.span.entry(c).or_insert((a, b));
                e.0 = e.0.min(a);
                e.1 = e.1.max(b);
            }
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any> {
        self
    }
}

/// Each campaign's run from the OTA stage alerts its targeted devices raised (a read of the
/// inputs restricted to those codes), sorted by start.
pub fn runs_from_alerts(reader: &dyn Reader, c: &Campaigns, clock: Arc<Clock>) -> Vec<CampaignRun> {
    let targets: Arc<FxHashMap<u64, u16>> =
        Arc::new(c.targets.iter().map(|(&d, t)| (d, t.campaign)).collect());
    let query = AlertQuery {
        by: vec![],
        codes: Some(CodeFilter {
            codes: STAGE_CODES.iter().map(|&c| AlertCode::device(c)).collect(),
            categories: vec![],
        }),
        distinct: false,
        tap: Some(TapFactory(Arc::new(move || {
            Box::new(RunTap {
                targets: targets.clone(),
                clock: clock.clone(),
                span: FxHashMap::default(),
            })
        }))),
        ..Default::default()
    };
    let Some(tap) = reader.answer_one(query).tap_as::<RunTap>() else {
        return Vec::new();
    };
    let mut runs: Vec<CampaignRun> = tap
        .span
        .into_iter()
        .map(|(id, (first, last))| CampaignRun {
            name: c.names.name(id).to_string(),
            first,
            last,
        })
        .collect();
    runs.sort_by(|a, b| (a.first, &a.name).cmp(&(b.first, &b.name)));
    runs
}

/// The campaign run an episode of `group` from `first` to `last` falls in, if it is made of
/// campaign codes and overlaps one.
pub fn campaign_of<'a>(
    runs: &'a [CampaignRun],
    group: &GroupKey,
    first: Day,
    last: Day,
) -> Option<&'a CampaignRun> {
    if !is_campaign_group(group) {
        return None;
    }
    runs.iter().find(|r| first <= r.last && last >= r.first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::days_from_civil;

    #[test]
    fn campaign_codes_and_groups() {
        let c = |s: &str| AlertCode::parse(s.as_bytes()).unwrap();
        for code in [
            "8F8A", "8F89", "8F72", "8F1C", "8F66", "8F67", "8F43", "8F8B",
        ] {
            assert!(is_campaign_code(c(code)), "{code}");
        }
        for code in ["8F84", "81B8", "N24", "8F12"] {
            assert!(!is_campaign_code(c(code)), "{code}");
        }
        let runs = [CampaignRun {
            name: "OTA".into(),
            first: days_from_civil(2024, 1, 19),
            last: days_from_civil(2024, 2, 6),
        }];
        let g = |code: &str| GroupKey {
            code: Some(c(code)),
            ..Default::default()
        };
        let day = |d| days_from_civil(2024, 1, d);
        assert_eq!(
            campaign_of(&runs, &g("8F8A"), day(20), day(22)),
            Some(&runs[0])
        );
        // Overlapping the run's first day is enough; before it, or another code, is not.
        assert!(campaign_of(&runs, &g("8F8A"), day(17), day(19)).is_some());
        assert!(campaign_of(&runs, &g("8F8A"), day(10), day(18)).is_none());
        assert!(campaign_of(&runs, &g("8F84"), day(20), day(20)).is_none());
        let firmware = catalogue::category_id(c("8F8A"));
        let by_category = GroupKey {
            category: Some(firmware),
            ..Default::default()
        };
        assert!(is_campaign_group(&by_category));
    }
}
