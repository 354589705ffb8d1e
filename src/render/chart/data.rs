//! What each chart shows, computed from alert reports (by day x region, and region x code).

use super::{CODE_COLORS, ChartKind, OTHER_COLOR, region_color};
use crate::analyze::alerts::AlertReport;
use crate::model::time::format_day;
use crate::model::{Day, Region};
use plotters::style::RGBColor;
use std::collections::BTreeMap;

/// The canvas of every chart but a tall forest plot, in pixels.
pub const SIZE: (u32, u32) = (1100, 600);

#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(Day, f64)>,
}

#[derive(Clone, Debug, Default)]
pub struct LineChart {
    pub title: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Points to mark with a ring (flagged days), drawn over the lines.
    pub markers: Vec<(Day, f64)>,
    pub days: (Day, Day),
    /// Series drawn in a panel of their own below the others, on their own scale: SMETS1, a
    /// generation several times the CSP regions' rate, would squash them into a corner.
    pub own_panel: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct StackedBars {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Bars (regions) and, per stack (code), its value in each bar.
    pub bars: Vec<String>,
    pub stacks: Vec<(String, RGBColor, Vec<f64>)>,
    /// Bars drawn in a panel of their own on the right, on their own scale (as in `LineChart`).
    pub own_panel: Vec<String>,
}

/// The name of SMETS1's "region" (the SMETS1 service provider): a generation, drawn apart
/// when CSP regions are beside it.
const SMETS1: &str = "SMETS1";

/// `[SMETS1]` when it stands beside other groups, else nothing.
fn smets1_apart<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let names: Vec<&str> = names.collect();
    if names.len() > 1 && names.contains(&SMETS1) {
        vec![SMETS1.to_string()]
    } else {
        Vec::new()
    }
}

#[derive(Clone, Debug)]
pub struct Heatmap {
    pub title: String,
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub values: Vec<Vec<Option<f64>>>,
}

#[derive(Clone, Debug)]
pub struct Growth {
    pub title: String,
    pub days: Vec<Day>,
    pub alerts: Vec<f64>,
    pub installed: Vec<f64>,
}

/// One row of a forest plot: an estimate with its interval, and what to make of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ForestRow {
    /// The row's name on the left (a code and its short name).
    pub label: String,
    /// The estimate and its interval, in the axis' unit (`None`: none to draw; the row then
    /// says "no interval", never shows a bare point).
    pub estimate: Option<f64>,
    pub interval: Option<(f64, f64)>,
    /// Written beside the row on the right: the estimate with its interval in words, and the
    /// verdict (in the row's colour).
    pub text: String,
    pub note: String,
    pub color: RGBColor,
}

/// A forest plot: one horizontal row per item, a point and its interval as a line, a vertical
/// line at zero.
#[derive(Clone, Debug, Default)]
pub struct Forest {
    pub title: String,
    pub x_label: String,
    pub rows: Vec<ForestRow>,
    /// Rows left out (said under the last row).
    pub more: usize,
}

/// Height of a forest plot's canvas per row, and the least (the others' `SIZE.1`).
pub const FOREST_ROW_PX: u32 = 40;
const FOREST_FRAME_PX: u32 = 130;

#[derive(Clone, Debug)]
pub enum ChartData {
    Line(LineChart),
    Bars(StackedBars),
    Heat(Heatmap),
    Growth(Growth),
    Forest(Forest),
}

impl ChartData {
    pub fn title(&self) -> &str {
        match self {
            ChartData::Line(c) => &c.title,
            ChartData::Bars(c) => &c.title,
            ChartData::Heat(c) => &c.title,
            ChartData::Growth(c) => &c.title,
            ChartData::Forest(c) => &c.title,
        }
    }

    /// The canvas in pixels: `SIZE`, taller for a forest plot of many rows (each row
    /// keeps room for its two lines of text).
    pub fn size(&self) -> (u32, u32) {
        let (w, h) = SIZE;
        match self {
            ChartData::Forest(f) => {
                let rows = f.rows.len() as u32 + u32::from(f.more > 0);
                (w, h.max(FOREST_FRAME_PX + FOREST_ROW_PX * rows))
            }
            _ => (w, h),
        }
    }
}

/// How many codes the stacked bars and the heatmap show (the rest are "other" / left out).
pub const TOP_CODES: usize = 6;
pub const HEATMAP_CODES: usize = 12;

fn period(r: &AlertReport) -> (Day, Day) {
    r.period.unwrap_or((0, 0))
}

/// `2024-01-01 to 2024-02-29`.
pub fn span(p: (Day, Day)) -> String {
    format!("{} to {}", format_day(p.0), format_day(p.1))
}

/// Builds the data of one chart from a report grouped by `kind.grouping()`; `what` says which
/// alerts (e.g. "all codes").
pub fn build(kind: ChartKind, report: &AlertReport, what: &str) -> ChartData {
    debug_assert_eq!(
        report.by,
        kind.grouping_with(!report.labels.is_empty()),
        "{kind:?} drawn from the wrong grouping"
    );
    match kind {
        ChartKind::Rate => ChartData::Line(rate(report, what)),
        ChartKind::TopCodes => ChartData::Bars(top_codes(report, what)),
        ChartKind::Heatmap => ChartData::Heat(heatmap(report, what)),
        ChartKind::Growth => ChartData::Growth(growth(report, what)),
    }
}

/// One line per region with an installed base; days without alerts count 0.
fn rate(r: &AlertReport, what: &str) -> LineChart {
    let p = period(r);
    let mut by_region: BTreeMap<Region, BTreeMap<Day, f64>> = BTreeMap::new();
    for row in &r.rows {
        if let (Some(day), Some(region), Some(v)) = (row.key.day, row.key.region, row.per_1000) {
            by_region.entry(region).or_default().insert(day, v);
        }
    }
    let series: Vec<Series> = by_region
        .into_iter()
        .map(|(region, days)| Series {
            name: region.name().to_string(),
            color: region_color(region),
            points: (p.0..=p.1)
                .map(|d| (d, days.get(&d).copied().unwrap_or(0.0)))
                .collect(),
        })
        .collect();
    LineChart {
        title: format!(
            "Alerts per 1,000 devices per day by CSP region: {what}, {}",
            span(p)
        ),
        y_label: "alerts per 1,000 devices per day".into(),
        own_panel: smets1_apart(series.iter().map(|s| s.name.as_str())),
        series,
        markers: Vec::new(),
        days: p,
    }
}

/// What the code axis of the bars and the heatmap shows: a code, or a reclassification label
/// when the report was grouped by label (`--labels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Code(crate::model::AlertCode),
    Label(crate::analyze::labels::LabelKey),
}

fn item_of(row: &crate::analyze::alerts::AlertRow) -> Option<Item> {
    row.key
        .code
        .map(Item::Code)
        .or(row.key.label.map(Item::Label))
}

fn item_name(r: &AlertReport, i: Item) -> String {
    match i {
        Item::Code(c) => c.to_string(),
        Item::Label(l) => r.labels.label_name(l),
    }
}

/// "codes" or "labels", for titles.
fn items_word(r: &AlertReport) -> &'static str {
    if r.by.contains(&crate::analyze::alerts::Dim::Label) {
        "labels"
    } else {
        "codes"
    }
}

/// Regions with an installed base, and codes (or labels) ranked by alerts over them.
fn regions_and_codes(r: &AlertReport) -> (Vec<Region>, Vec<Item>) {
    let mut regions: Vec<Region> = Vec::new();
    let mut totals: BTreeMap<Item, u64> = BTreeMap::new();
    for row in r.rows.iter().filter(|row| row.per_1000.is_some()) {
        if let (Some(region), Some(item)) = (row.key.region, item_of(row)) {
            if !regions.contains(&region) {
                regions.push(region);
            }
            *totals.entry(item).or_default() += row.alerts;
        }
    }
    regions.sort();
    let mut codes: Vec<_> = totals.into_iter().collect();
    codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    (regions, codes.into_iter().map(|c| c.0).collect())
}

fn rate_of(r: &AlertReport, region: Region, item: Item) -> Option<f64> {
    r.rows
        .iter()
        .find(|row| row.key.region == Some(region) && item_of(row) == Some(item))
        .and_then(|row| row.per_1000)
}

fn top_codes(r: &AlertReport, what: &str) -> StackedBars {
    let (regions, codes) = regions_and_codes(r);
    let top = &codes[..codes.len().min(TOP_CODES)];
    let mut stacks: Vec<(String, RGBColor, Vec<f64>)> = top
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let values = regions
                .iter()
                .map(|&g| rate_of(r, g, c).unwrap_or(0.0))
                .collect();
            (item_name(r, c), CODE_COLORS[i % CODE_COLORS.len()], values)
        })
        .collect();
    if codes.len() > top.len() {
        let other = regions
            .iter()
            .map(|&g| {
                codes[top.len()..]
                    .iter()
                    .filter_map(|&c| rate_of(r, g, c))
                    .sum()
            })
            .collect();
        stacks.push(("other".into(), OTHER_COLOR, other));
    }
    StackedBars {
        x_label: "CSP region".into(),
        title: format!(
            "Top {} per CSP region: {what}, {}",
            items_word(r),
            span(period(r))
        ),
        y_label: "alerts per 1,000 devices per day".into(),
        own_panel: smets1_apart(regions.iter().map(|g| g.name())),
        bars: regions.iter().map(|g| g.name().to_string()).collect(),
        stacks,
    }
}

fn heatmap(r: &AlertReport, what: &str) -> Heatmap {
    let (regions, codes) = regions_and_codes(r);
    let codes = &codes[..codes.len().min(HEATMAP_CODES)];
    let word = items_word(r);
    Heatmap {
        title: format!(
            "Alerts per 1,000 devices per day by {} and region: {what}, {}",
            &word[..word.len() - 1],
            span(period(r))
        ),
        rows: codes.iter().map(|&c| item_name(r, c)).collect(),
        cols: regions.iter().map(|g| g.name().to_string()).collect(),
        // A code a region never raised is 0 there, not unknown: the region has devices.
        values: codes
            .iter()
            .map(|&c| {
                regions
                    .iter()
                    .map(|&g| rate_of(r, g, c).or(Some(0.0)))
                    .collect()
            })
            .collect(),
    }
}

fn growth(r: &AlertReport, what: &str) -> Growth {
    let p = period(r);
    let mut alerts: BTreeMap<Day, f64> = BTreeMap::new();
    let mut installed: BTreeMap<Day, f64> = BTreeMap::new();
    for row in &r.rows {
        if let Some(day) = row.key.day {
            *alerts.entry(day).or_default() += row.alerts as f64;
            if let Some(d) = row.denominator {
                *installed.entry(day).or_default() += d as f64;
            }
        }
    }
    let days: Vec<Day> = (p.0..=p.1).collect();
    let mut last = 0.0;
    let installed = days
        .iter()
        .map(|d| {
            if let Some(&v) = installed.get(d) {
                last = v;
            }
            last
        })
        .collect();
    Growth {
        title: format!("Alerts and installed base per day: {what}, {}", span(p)),
        alerts: days
            .iter()
            .map(|d| alerts.get(d).copied().unwrap_or(0.0))
            .collect(),
        installed,
        days,
    }
}
