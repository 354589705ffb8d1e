//! `fleetwatch report`: the week's briefing as one self-contained HTML file: findings first,
//! then rates by region, spikes, what changed against the period before, offenders, what-if
//! (with `--remediate`), the OTA campaign (with `--campaign`/`--outcomes`) and the SMETS1
//! migration (with `--migration`); the charts as PNG and SVG and the tables as CSV beside it
//! (see `fleetwatch::render::report`).
//!
//! Each analysis runs as its own command runs it, on the same selection; the inputs are read
//! once per analysis that needs a read of its own.

use super::Status;
use super::ota::{Evaluated, evaluate};
use super::whatif::remediation;
use crate::cli::{Selection, conclude};
use anyhow::Result;
use fleetwatch::analyze::alerts::{AlertQuery, AlertReport, CodeFilter, Dim};
use fleetwatch::analyze::briefing::recent_periods;
use fleetwatch::analyze::compare::compare;
use fleetwatch::analyze::migration::report::MigrationReport;
use fleetwatch::analyze::offenders::{self, Offenders};
use fleetwatch::analyze::ota::campaign::CampaignSpec;
use fleetwatch::analyze::ota::run::OtaParams;
use fleetwatch::analyze::reader::Reader;
use fleetwatch::analyze::spikes::SpikeParams;
use fleetwatch::analyze::spikes::find::Found;
use fleetwatch::analyze::whatif::before_after as whatif;
use fleetwatch::engine::{Engine, Filters};
use fleetwatch::model::time::format_day;
use fleetwatch::model::{AlertCode, Day};
use fleetwatch::render::chart::ChartKind;
use fleetwatch::render::migration::totals_line;
use fleetwatch::render::report::{
    Briefing, ChartReports, OffendersPart, PageInfo, Trend, Trends, create_out_dir,
};
use fleetwatch::render::spikes::Shown;
use fleetwatch::render::whatif::Whatif;
use fleetwatch::source::Input;
use fleetwatch::source::pipeline::SourceError;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The quarantine file, beside the report (the report names it).
const REJECTS: &str = "rejects.jsonl";
/// The groups of the spikes section.
const SPIKES_BY: [Dim; 3] = [Dim::Region, Dim::Code, Dim::DeviceType];
/// Spikes in the section's table (all are in the JSON of `fleetwatch spikes`).
const SPIKES_SHOWN: usize = 20;
/// Devices in the offenders table.
const OFFENDERS_TOP: usize = 20;
/// The "what changed" periods without `--compare`: the last week against the week before.
const RECENT_DAYS: Day = 7;

pub struct ReportConfig {
    pub selection: Selection,
    pub out: PathBuf,
    /// SMETS1 migration logs: their charts and tables join the report.
    pub migration: Vec<PathBuf>,
    /// `FOC=3132`: cohort sizes for the migration forecast.
    pub cohort_sizes: Vec<String>,
    /// Remediation rules for the what-if section.
    pub remediate: Vec<String>,
    /// The period the selected one is compared with (else the last week against the one before).
    pub compare: Option<(Day, Day)>,
    /// The OTA target version, when the campaign comes from the outcome records alone.
    pub target_version: Option<String>,
}

pub fn run(cfg: ReportConfig) -> Result<Status> {
    let t0 = Instant::now();
    let w = write(&cfg)?;
    conclude(&w.report, &w.errors, &w.names, &w.rejects, t0)
}

/// What a written report read: the run's alert report (totals and every reject, the outcome
/// and migration records' included), the read errors, the inputs' names and the quarantine
/// file's path.
pub struct Written {
    pub report: AlertReport,
    pub errors: Vec<SourceError>,
    pub names: Vec<String>,
    pub rejects: PathBuf,
}

/// Runs every analysis the report shows and writes it into `cfg.out`.
pub fn write(cfg: &ReportConfig) -> Result<Written> {
    create_out_dir(&cfg.out)?;
    let sel = &cfg.selection;
    let engine = sel.engine()?;
    let inv = engine.inventory();
    let rejects = cfg.out.join(REJECTS);
    let migration = migration_section(
        &cfg.migration,
        engine.names().len(),
        sel.inventory.as_deref(),
        &cfg.cohort_sizes,
    )?;

    let charts = chart_reports(&engine, sel);
    let spikes = super::spikes::analyse(
        sel,
        &engine,
        &SPIKES_BY,
        SpikeParams::default(),
        None,
        SPIKES_SHOWN,
    )?;
    let found = &spikes.found;
    let shown = Shown {
        found,
        shown: spikes.shown,
        by: &SPIKES_BY,
        setting: &spikes.setting,
        report: &spikes.folded.report,
        inv,
    };
    let trends = trends(&engine, sel, cfg, charts.by_day_region.period)?;
    let code = leading_code(found, &charts.by_region_code);
    let offenders = code.map(|c| (c, offenders_of(&engine, c)));
    let by_region = [Dim::Region];
    let whatif = whatif_of(&engine, sel, &cfg.remediate, &by_region)?;
    let ota = ota_of(sel, cfg)?;

    let mut names = engine.names().to_vec();
    let briefing = Briefing {
        charts: &charts,
        inv,
        spikes: Some(shown),
        trends,
        offenders: offenders.as_ref().map(|(code, o)| OffendersPart {
            code: *code,
            offenders: o,
        }),
        whatif: whatif.as_ref().map(|w| (w, &by_region[..])),
        ota: ota.as_ref().map(|e| &e.result),
        migration: migration.as_ref(),
    };
    let page = PageInfo {
        what: &sel.what(),
        inputs: &names,
        inventory: sel.inventory.as_deref(),
        rejects: &rejects,
    };
    let path = fleetwatch::render::report::write_report(&cfg.out, &briefing, &page)?;
    eprintln!(
        "report written to {} (charts as PNG and SVG, tables as CSV beside it)",
        path.display()
    );

    let mut report = charts.by_day_region;
    if let Some(mut m) = migration {
        names.extend(cfg.migration.iter().map(|p| p.display().to_string()));
        report.add_rejects(std::mem::take(&mut m.log.rejects));
    }
    let errors = engine.errors();
    if let Some(mut e) = ota {
        names.extend(e.inputs.iter().map(Input::name));
        report.add_rejects(std::mem::take(&mut e.result.rejects));
    }
    Ok(Written {
        report,
        errors,
        names,
        rejects,
    })
}

/// The two groupings every chart is drawn from, from one read.
fn chart_reports(engine: &Engine, sel: &Selection) -> ChartReports {
    let mut reports =
        super::chart::chart_reports(engine, sel, &[ChartKind::Rate, ChartKind::TopCodes])
            .into_iter();
    let (Some(by_day_region), Some(by_region_code)) = (reports.next(), reports.next()) else {
        unreachable!("the engine answers every query it is asked");
    };
    ChartReports {
        by_day_region,
        by_region_code,
    }
}

/// What changed, by code and by model: the selected period against `--compare`, or the last
/// week of the data against the week before.
fn trends(
    engine: &Engine,
    sel: &Selection,
    cfg: &ReportConfig,
    period: Option<(Day, Day)>,
) -> Result<Option<Trends>> {
    let (now, before, compare_engine) = match cfg.compare {
        Some(base) => {
            // The comparison period lies outside the selected one: read without the period
            // filters, each query with its own period.
            let wide = Selection {
                filters: Filters {
                    since: None,
                    until: None,
                    ..sel.filters.clone()
                },
                ..sel.clone()
            };
            let (Some(since), Some(until)) = (sel.filters.since, sel.filters.until) else {
                anyhow::bail!("--compare needs the selected period: give --since and --until too");
            };
            ((since, until), base, Some(wide.engine()?))
        }
        None => match period.and_then(|p| recent_periods(p, RECENT_DAYS)) {
            Some((now, before)) => (now, before, None),
            None => return Ok(None),
        },
    };
    let reader: &Engine = compare_engine.as_ref().unwrap_or(engine);
    let dims = [Dim::Code, Dim::Model];
    let queries: Vec<AlertQuery> = dims
        .iter()
        .flat_map(|&d| {
            [now, before].map(|(since, until)| AlertQuery {
                by: vec![d],
                since: Some(since),
                until: Some(until),
                distinct: false,
                labels: sel.labels.clone(),
                ..Default::default()
            })
        })
        .collect();
    let mut answers = reader.answer(&queries).into_iter().map(|a| a.report);
    let mut groups = Vec::new();
    for by in dims {
        let (Some(current), Some(base)) = (answers.next(), answers.next()) else {
            unreachable!("the engine answers every query it is asked");
        };
        let comparison = compare(&current, &base, reader.inventory());
        groups.push(Trend {
            by,
            comparison,
            report: current,
        });
    }
    let span = |(a, b): (Day, Day)| format!("{} to {}", format_day(a), format_day(b));
    let label = match cfg.compare {
        Some(_) => format!("{} against {}", span(now), span(before)),
        None => format!(
            "the last {} days ({}) against the {} before ({})",
            now.1 - now.0 + 1,
            span(now),
            before.1 - before.0 + 1,
            span(before)
        ),
    };
    Ok(Some(Trends { label, groups }))
}

/// The code the offenders section looks behind: the largest spike's, else the code with the
/// most alerts.
fn leading_code(found: &Found, by_region_code: &AlertReport) -> Option<AlertCode> {
    if let Some(code) = found.episodes.first().and_then(|e| e.group.code) {
        return Some(code);
    }
    let mut per_code: std::collections::BTreeMap<AlertCode, u64> = Default::default();
    for row in &by_region_code.rows {
        if let Some(code) = row.key.code {
            *per_code.entry(code).or_default() += row.alerts;
        }
    }
    per_code
        .into_iter()
        .max_by_key(|&(code, n)| (n, std::cmp::Reverse(code)))
        .map(|(code, _)| code)
}

fn offenders_of(engine: &Engine, code: AlertCode) -> Offenders {
    let queries = offenders::queries().map(|q| AlertQuery {
        codes: Some(CodeFilter {
            codes: vec![code],
            categories: Vec::new(),
        }),
        ..q
    });
    let reports: Vec<AlertReport> = engine
        .answer(&queries)
        .into_iter()
        .map(|a| a.report)
        .collect();
    offenders::analyse(&reports[0], &reports[1], engine.inventory(), OFFENDERS_TOP)
}

fn whatif_of(
    engine: &Engine,
    sel: &Selection,
    rules: &[String],
    by: &[Dim],
) -> Result<Option<Whatif>> {
    if rules.is_empty() {
        return Ok(None);
    }
    let inv = engine.inventory();
    let rem = remediation(rules, inv)?;
    let report = engine
        .answer_one(whatif::remediation_query(by, Some(rem.clone())))
        .report;
    let mut out = Whatif::new(&report, engine.filters(), sel.what());
    let effect = whatif::remediation_effect(&report, by, &rem, inv);
    out.remediation(&effect, by, &rem, &report.labels, inv);
    Ok(Some(out))
}

/// The OTA section's campaign: from `--campaign`, or from the outcome records with
/// `--target-version`; none without either.
fn ota_of(sel: &Selection, cfg: &ReportConfig) -> Result<Option<Evaluated>> {
    let spec = match (&sel.campaign, &cfg.target_version) {
        (Some(path), v) => CampaignSpec::File {
            path: path.clone(),
            target_version: v.clone(),
        },
        (None, Some(v)) if !sel.outcomes.is_empty() => CampaignSpec::Outcomes {
            target_version: v.clone(),
        },
        _ => {
            if !sel.outcomes.is_empty() {
                eprintln!(
                    "note: no OTA section: the outcome records name the devices, but not the version they target: give --campaign FILE or --target-version VERSION"
                );
            }
            return Ok(None);
        }
    };
    let params = OtaParams {
        codes: sel.filters.codes.clone(),
        ..OtaParams::default()
    };
    evaluate(sel, &sel.outcomes, params, |_| Ok(spec)).map(Some)
}

/// Reads and analyses the migration logs, if any (rejects point past the alert inputs).
pub fn migration_section(
    logs: &[PathBuf],
    first_source: usize,
    inventory: Option<&Path>,
    sizes: &[String],
) -> Result<Option<MigrationReport>> {
    if logs.is_empty() {
        return Ok(None);
    }
    let inputs = fleetwatch::source::expand_inputs(logs)?;
    let m = super::migration::build(&inputs, first_source, inventory, sizes, &Default::default())?;
    eprintln!("{}", totals_line(&m.log));
    Ok(Some(m))
}
