//! The findings that open the briefing: the few sentences an analyst would write after reading
//! every section (the largest spikes and what carries them, the codes and models that moved
//! most per 1,000 beyond noise, who is behind the leading code, how the OTA campaign stands
//! and the failure that matters most, and the migration cohorts at risk).
//!
//! Each sentence is built from a section's results, never from anything the sections do not
//! show, so a reader can check every finding against its table below.

use super::table::readable;
use super::{Briefing, Trend};
use crate::analyze::alerts::Dim;
use crate::analyze::briefing::{Direction, movers};
use crate::analyze::migration::report::{CohortStatus, MigrationReport};
use crate::analyze::ota::effect::Verdict;
use crate::analyze::ota::run::OtaResult;
use crate::analyze::spikes::find::Episode;
use crate::catalogue;
use crate::model::time::format_day;
use crate::model::{AlertCode, Day, Region};
use crate::render::alerts::key_value;
use crate::render::thousands;

/// How many spikes, movers and cohorts the findings name at most.
const TOP: usize = 3;
/// How many of the largest spikes are looked at for the incidents the findings tell.
const LOOKED_AT: usize = 10;
/// Fewest alerts (both periods together) behind a mover the findings name.
const MIN_MOVER_ALERTS: u64 = 20;

/// `81B8 (Supply Disabled then Armed)`, or the code alone where the catalogue has no name.
pub fn code_name(code: AlertCode) -> String {
    match catalogue::lookup(code) {
        Some(e) if !e.name.is_empty() => format!("{code} ({})", e.name),
        _ => code.to_string(),
    }
}

fn pct(v: f64) -> String {
    format!("{}{:.0}%", if v > 0.0 { "+" } else { "" }, v * 100.0)
}

/// The findings, one sentence each, most important first.
pub fn findings(b: &Briefing) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(volume(b));
    out.extend(spike_findings(b));
    if let Some(t) = &b.trends {
        for trend in &t.groups {
            out.extend(mover_findings(b, trend, &t.label));
        }
    }
    if let Some(o) = &b.offenders {
        out.push(format!(
            "Behind {}: {} alerts from {} devices; the top 1% of alerting devices raise {:.0}% of them, the top 10% {:.0}% (trend: {}).",
            code_name(o.code),
            thousands(o.offenders.alerts),
            thousands(o.offenders.alerting_devices as u64),
            o.offenders.top1_share * 100.0,
            o.offenders.top10_share * 100.0,
            o.offenders.trend.verdict()
        ));
    }
    if let Some(r) = b.ota {
        out.extend(ota_findings(r));
    }
    if let Some(m) = b.migration {
        out.extend(migration_findings(m));
    }
    out
}

fn volume(b: &Briefing) -> Option<String> {
    let r = &b.charts.by_day_region;
    let (first, last) = r.period?;
    let days = (last - first + 1) as u64;
    let device_days: u64 = r.rows.iter().filter_map(|row| row.denominator).sum();
    let known: u64 = r
        .rows
        .iter()
        .filter(|row| row.denominator.is_some())
        .map(|row| row.alerts)
        .sum();
    let rate = if device_days > 0 {
        format!(
            ", {:.2} per 1,000 installed devices per day",
            known as f64 * 1000.0 / device_days as f64
        )
    } else {
        String::new()
    };
    Some(format!(
        "From {} to {} ({} days): {} alerts{rate}.",
        format_day(first),
        format_day(last),
        days,
        thousands(r.totals.alerts),
    ))
}

/// The largest spike episodes, those of one region starting on one day told together (one
/// incident raises several codes at once); campaign episodes are known events, counted apart.
fn spike_findings(b: &Briefing) -> Vec<String> {
    let Some(s) = &b.spikes else {
        return Vec::new();
    };
    let found = s.found;
    let known = if found.campaign_episodes.is_empty() {
        String::new()
    } else {
        format!(
            "{} episodes of the OTA campaign's own codes during its run are known events, listed apart",
            thousands(found.campaign_episodes.len() as u64)
        )
    };
    if found.episodes.is_empty() {
        return vec![format!(
            "No spike: no group's daily alerts rose beyond its own baseline ({} group-days judged){}.",
            thousands(found.judged as u64),
            if known.is_empty() {
                String::new()
            } else {
                format!("; {known}")
            }
        )];
    }
    // Incidents: the episodes among the largest that share a first day and a region.
    let mut incidents: Vec<(Day, Option<Region>, Vec<&Episode>)> = Vec::new();
    for e in found.episodes.iter().take(LOOKED_AT) {
        let key = (e.first_day, e.group.region);
        if let Some(i) = incidents.iter_mut().find(|i| (i.0, i.1) == key) {
            i.2.push(e);
        } else if incidents.len() < TOP {
            incidents.push((key.0, key.1, vec![e]));
        }
    }
    let mut out = Vec::new();
    for (day, region, episodes) in &incidents {
        let excess: f64 = episodes.iter().map(|e| e.excess).sum();
        let last = episodes.iter().map(|e| e.last_day).max().unwrap_or(*day);
        let when = if last == *day {
            format!("on {}", format_day(*day))
        } else {
            format!("from {} to {}", format_day(*day), format_day(last))
        };
        let place = region.map_or("devices in no known region".to_string(), |r| {
            r.name().to_string()
        });
        let parts: Vec<String> = episodes
            .iter()
            .map(|e| {
                let times = if e.expected >= 0.5 {
                    format!("x{:.1}", e.counted / e.expected)
                } else {
                    "none expected".to_string()
                };
                format!(
                    "{} {} ({} alerts from {} devices, {times})",
                    e.group.code.map_or("?".into(), code_name),
                    e.group.device_type.map_or("", |t| t.name()),
                    thousands(e.alerts.round() as u64),
                    thousands(e.devices),
                )
            })
            .collect();
        out.push(format!(
            "Spike in {place} {when}: {} alerts above baseline, from {}. {}",
            thousands(excess.round() as u64),
            parts.join(", "),
            capitalise(&found.spikes[episodes[0].peak].verdict),
        ));
    }
    let others = found.episodes.len() - incidents.iter().map(|i| i.2.len()).sum::<usize>();
    if others > 0 {
        out.push(format!(
            "{} more spike episode{} (the Spikes section ranks them).",
            thousands(others as u64),
            if others == 1 { "" } else { "s" },
        ));
    }
    if !known.is_empty() {
        out.push(format!("{}.", capitalise_first(&known)));
    }
    out
}

fn capitalise_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A sentence from an explanation: capitalised, with a full stop.
fn capitalise(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        capitalise_first(s) + "."
    }
}

fn mover_findings(b: &Briefing, t: &Trend, label: &str) -> Vec<String> {
    let mut out = Vec::new();
    let what = match t.by {
        Dim::Code => "codes",
        Dim::Model => "models",
        _ => "groups",
    };
    for direction in [Direction::Rising, Direction::Falling] {
        let moved = movers(&t.comparison, direction, MIN_MOVER_ALERTS, TOP);
        if moved.is_empty() {
            continue;
        }
        let names: Vec<String> = moved
            .iter()
            .map(|g| {
                let name = match (t.by, g.key.code) {
                    (Dim::Code, Some(code)) => code_name(code),
                    _ => key_value(t.by, &g.key, &t.report.labels, b.inv, &t.report.scope.clock),
                };
                format!(
                    "{name} {} ({} to {} per 1,000 devices per day)",
                    g.change.map_or("n/a".into(), pct),
                    readable(g.base_per_1000.unwrap_or(0.0)),
                    readable(g.per_1000.unwrap_or(0.0)),
                )
            })
            .collect();
        out.push(format!(
            "{} {what} ({label}, beyond noise): {}.",
            match direction {
                Direction::Rising => "Rising most",
                Direction::Falling => "Falling most",
            },
            names.join("; ")
        ));
    }
    if out.is_empty() {
        out.push(format!(
            "No {} changed its rate beyond noise ({label}).",
            &what[..what.len() - 1]
        ));
    }
    out
}

fn ota_findings(r: &OtaResult) -> Vec<String> {
    let mut out = Vec::new();
    for s in &r.summaries {
        let f = &s.total;
        if f.targeted == 0 {
            continue;
        }
        let share = |n: u64| n as f64 * 100.0 / f.targeted as f64;
        out.push(format!(
            "OTA campaign {}: {:.1}% of {} targeted devices run the new firmware; {:.1}% failed and are not upgraded, {:.1}% in progress, {:.1}% never heard from.",
            r.campaigns.names.name(s.campaign),
            share(f.running),
            thousands(f.targeted),
            share(f.failed),
            share(f.in_progress),
            share(f.never_heard_from),
        ));
    }
    let clear: Vec<String> = r
        .effects
        .iter()
        .filter(|e| e.verdict == Verdict::Clear)
        .filter_map(|e| {
            let (lo, hi) = e.ci?;
            Some(format!(
                "{} {} (95% interval {} to {})",
                code_name(e.code),
                pct(e.ratio()?),
                pct(lo),
                pct(hi)
            ))
        })
        .collect();
    let unclear = r
        .effects
        .iter()
        .filter(|e| e.verdict != Verdict::Clear)
        .count();
    if !r.effects.is_empty() {
        out.push(format!(
            "Firmware effect (upgraded devices against never-upgraded ones, per 1,000 device-days): {}{}.",
            if clear.is_empty() {
                "no code changed clearly".to_string()
            } else {
                format!("clear for {}", clear.join("; "))
            },
            if unclear > 0 {
                format!(
                    "; {unclear} other code{} show no clear effect, or one dominated by few devices or with differing pre-trends (see the OTA section)",
                    if unclear == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            }
        ));
    }
    if let Some((k, devices, _)) = r.failures.first() {
        let total: u64 = r.failures.iter().map(|f| f.1).sum();
        out.push(format!(
            "The failure that matters most: {} at {} on {} in {} ({} devices, {:.0}% of the failures).",
            crate::render::ota::reason_name(r, k.reason),
            k.stage.name(),
            r.model_name(k.model),
            k.region.name(),
            thousands(*devices),
            *devices as f64 * 100.0 / total.max(1) as f64
        ));
    }
    out
}

fn migration_findings(m: &MigrationReport) -> Vec<String> {
    let a = &m.analysis;
    let cohort = |c: u16| m.log.cohorts.name(c).to_string();
    let at_risk: Vec<String> = a
        .outlook
        .iter()
        .filter(|o| CohortStatus::of(o) != CohortStatus::Complete)
        .filter(|o| o.stalled || o.pace.is_some_and(|p| p.per_week < 0.5 * o.peak_pace))
        .filter_map(|o| {
            crate::render::migration::outlook_line(m, o)
                .map(|l| format!("{} {l}", cohort(o.cohort)))
        })
        .take(TOP)
        .collect();
    if at_risk.is_empty() && a.outlook.iter().all(|o| o.remaining.is_none()) {
        return vec![
            "SMETS1 migration: no outlook (the remaining devices need cohort sizes: --cohort-size, or an inventory that lists unmigrated devices).".into(),
        ];
    }
    if at_risk.is_empty() {
        let last = a
            .outlook
            .iter()
            .filter(|o| o.finish.is_some())
            .max_by_key(|o| o.finish)
            .and_then(|o| {
                crate::render::migration::outlook_line(m, o)
                    .map(|l| format!("{} {l}", cohort(o.cohort)))
            });
        return vec![match last {
            Some(l) => format!(
                "SMETS1 migration: no cohort stalled or at under half its peak pace; the last to finish: {l}."
            ),
            None => "SMETS1 migration: no cohort stalled or at under half its peak pace.".into(),
        }];
    }
    vec![format!(
        "SMETS1 cohorts at risk (stalled, or under half their peak weekly pace): {}.",
        at_risk.join("; ")
    )]
}
