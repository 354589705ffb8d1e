//! `fleetwatch spikes`: episodes of days on which a group's alert count rose well above its own
//! baseline, ranked by excess, each explained by the cohorts (model, firmware, device type,
//! generation, and comms hub model where the inventory links hubs) that carry the excess; the
//! episodes of an OTA campaign's own firmware codes during its run listed apart.
//! The analysis is `analyze::spikes`; the table and charts are `render::spikes`.

use super::Status;
use crate::cli::{Selection, conclude_run, stdout_write};
use anyhow::{Context, Result};
use fleetwatch::analyze::alerts::{CodeFilter, Dim};
use fleetwatch::analyze::ota::campaign::Campaigns;
use fleetwatch::analyze::ota::outcomes;
use fleetwatch::analyze::reader::Reader;
use fleetwatch::analyze::spikes::SpikeParams;
use fleetwatch::analyze::spikes::known::{self, CampaignRun};
use fleetwatch::analyze::spikes::{find, hubs};
use fleetwatch::engine::Engine;
use fleetwatch::model::Clock;
use fleetwatch::model::time::format_day;
use fleetwatch::render::OutputFormat;
use fleetwatch::render::spikes::{self, Shown};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub struct SpikesConfig {
    pub selection: Selection,
    /// The dimensions a group is made of (never `Day`).
    pub by: Vec<Dim>,
    pub params: SpikeParams,
    /// Codes and categories taken out (`--exclude-codes`, `--exclude-category`).
    pub exclude: Option<CodeFilter>,
    /// Episodes to show (0: all).
    pub top: usize,
    pub charts: Option<PathBuf>,
    pub format: OutputFormat,
}

/// The campaigns' runs: from the outcome records when given, else from the alerts of a
/// campaign file's targeted devices.
pub fn campaign_runs(
    sel: &Selection,
    engine: &Engine,
    clock: &Arc<Clock>,
) -> Result<Vec<CampaignRun>> {
    let from_file = match &sel.campaign {
        Some(p) => Some(Campaigns::from_file(p)?),
        None => None,
    };
    let runs = if !sel.outcomes.is_empty() {
        let inputs = fleetwatch::source::expand_inputs(&sel.outcomes)?;
        let records = outcomes::read_all(&inputs, 0).context("cannot read the outcome records")?;
        // Rows that name no campaign belong to the campaign file's (when it has one).
        let unnamed = from_file
            .as_ref()
            .filter(|c| c.count() == 1)
            .map(|c| c.names.name(1).to_string())
            .unwrap_or_else(|| "campaign".into());
        known::runs_from_outcomes(&records.outcomes, clock, &unnamed)
    } else if let Some(c) = &from_file {
        known::runs_from_alerts(engine, c, clock.clone())
    } else {
        return Ok(Vec::new());
    };
    for r in &runs {
        eprintln!(
            "known event: campaign {} ran {}..{}; its firmware codes' episodes then are listed apart",
            r.name,
            format_day(r.first),
            format_day(r.last)
        );
    }
    Ok(runs)
}

/// Spikes found as the command finds them: the setting they were judged with, the read, what
/// was found, and how many episodes are shown.
pub struct Analysed {
    pub setting: find::Setting,
    pub folded: find::Folded,
    pub found: find::Found,
    pub shown: usize,
}

/// Finds the spike episodes of `by` groups (the `spikes` command and the report's section):
/// the campaigns' runs from the selection's evidence, the episodes shown (`top`, 0: all)
/// explained by hub model where the inventory links hubs, and a summary on stderr.
pub fn analyse(
    sel: &Selection,
    engine: &Engine,
    by: &[Dim],
    params: SpikeParams,
    exclude: Option<CodeFilter>,
    top: usize,
) -> Result<Analysed> {
    let clock = engine.scope().clock.clone();
    let setting = find::Setting {
        params,
        exclude,
        labels: sel.labels.clone(),
        campaigns: campaign_runs(sel, engine, &clock)?,
        clock,
    };
    let folded = find::fold(engine, by, &setting);
    let mut found = find::find(&folded, engine.inventory(), by, &setting);
    let shown = if top == 0 {
        found.episodes.len().max(found.campaign_episodes.len())
    } else {
        top
    };
    // Where the inventory links devices to hubs, the episodes shown are explained by hub model
    // too (on their largest day, which explains them).
    if let Some(path) = &sel.inventory
        && let Some(links) = hubs::read(path, engine.inventory())
    {
        let hub_setting = hubs::Setting {
            by,
            window: params.window,
            first_day: folded.report.period.map_or(0, |p| p.0),
            reader: engine,
        };
        let peaks: Vec<usize> = found.episodes[..shown.min(found.episodes.len())]
            .iter()
            .chain(&found.campaign_episodes[..shown.min(found.campaign_episodes.len())])
            .map(|e| e.peak)
            .collect();
        hubs::explain(&mut found.spikes, &peaks, links, &hub_setting);
    }
    eprintln!(
        "spikes: {} episodes ({} flagged days in {} of {} groups, {} group-days judged); {} campaign episodes apart",
        found.episodes.len(),
        found.spikes.len(),
        found.flagged_groups,
        found.series.len(),
        found.judged,
        found.campaign_episodes.len(),
    );
    if let Some(e) = &setting.exclude {
        eprintln!(
            "  excluded: {e} ({} alerts not counted)",
            fleetwatch::render::thousands(found.excluded_alerts)
        );
    }
    Ok(Analysed {
        setting,
        folded,
        found,
        shown,
    })
}

pub fn run(cfg: SpikesConfig) -> Result<Status> {
    let t0 = Instant::now();
    let engine = cfg.selection.engine()?;
    let Analysed {
        setting,
        folded,
        found,
        shown,
    } = analyse(
        &cfg.selection,
        &engine,
        &cfg.by,
        cfg.params,
        cfg.exclude.clone(),
        cfg.top,
    )?;
    let view = Shown {
        found: &found,
        shown,
        by: &cfg.by,
        setting: &setting,
        report: &folded.report,
        inv: engine.inventory(),
    };
    stdout_write(|w| spikes::write(w, &view, engine.filters(), cfg.format))?;
    if let Some(dir) = &cfg.charts {
        let n = spikes::charts(&view, dir)?;
        eprintln!("  {n} charts written to {}", dir.display());
    }
    conclude_run(&folded.report, &engine, &cfg.selection.rejects, t0)
}
