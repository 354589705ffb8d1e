//! The HTML report, written as a briefing: one self-contained page (inline SVG charts, no
//! network) that opens with the findings, then a section per analysis (rates by region,
//! spikes, change against the period before, offenders, what-if, OTA, migration), each with
//! its charts, a one-line caption saying how it was computed, and a table for reading.
//! Every chart is beside the page as PNG and SVG, every table as a full-precision CSV file.
//!
//! It renders results already computed, and reads no input. Each HTML table is built from
//! the text of its CSV file (`table.rs`), so the page and the files cannot disagree.

pub mod findings;
pub mod table;

use super::chart::{self, ChartData, ChartKind};
use super::output::WriteError;
use super::records::Records;
use super::{OutputFormat, thousands};
use crate::analyze::alerts::{AlertReport, Dim};
use crate::analyze::compare::Comparison;
use crate::analyze::migration::report::MigrationReport;
use crate::analyze::offenders::Offenders;
use crate::analyze::ota::run::OtaResult;
use crate::inventory::Inventory;
use crate::model::AlertCode;
use crate::render::spikes;
use crate::render::whatif::Whatif;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use table::{MAX_ROWS, esc, html_table};

/// The two groupings every chart is drawn from.
pub struct ChartReports {
    pub by_day_region: AlertReport,
    pub by_region_code: AlertReport,
}

impl ChartReports {
    /// The report a chart of `kind` is drawn from.
    pub fn for_kind(&self, kind: ChartKind) -> &AlertReport {
        if kind.grouping() == self.by_day_region.by.as_slice() {
            &self.by_day_region
        } else {
            &self.by_region_code
        }
    }
}

/// What the page's header says about the run.
pub struct PageInfo<'a> {
    /// "all codes", or the filters.
    pub what: &'a str,
    /// The alert inputs' names.
    pub inputs: &'a [String],
    pub inventory: Option<&'a Path>,
    /// Where the rejected records are (named when there are some).
    pub rejects: &'a Path,
}

/// How each chart was computed, printed under it.
fn caption(kind: ChartKind) -> String {
    match kind {
        ChartKind::Rate => "Each point: the alert occurrences of that day in the region, divided by the region's devices installed on or before that day, times 1,000. Days without alerts count 0. SMETS1 (a generation, several times the CSP regions' rate) is drawn below on its own scale. Devices missing from the inventory have no installed base and are left out of the rates (they are in the totals).".into(),
        ChartKind::TopCodes => format!("Each bar: the region's alerts over the period per 1,000 device-days (installed devices summed over the days), so regions of different sizes compare. The {} codes with the most alerts are stacked; the rest is \"other\".", chart::data_top_codes()),
        ChartKind::Heatmap => format!("Each cell: the code's alerts in the region over the period per 1,000 device-days. The {} codes with the most alerts; colour on a square-root scale (the key on the right); 0 where the region's devices raised none.", chart::data_heatmap_codes()),
        ChartKind::Growth => "Red (left axis): alert occurrences per day, every region and devices missing from the inventory included. Blue (right axis): devices installed on or before the day, summed over the regions. A count that rises with the installed base is growth, not a worse rate.".into(),
    }
}

/// Writes a report as a CSV file; returns the text written.
pub fn write_alerts_csv(
    path: &Path,
    report: &AlertReport,
    inv: &Inventory,
) -> Result<String, WriteError> {
    let mut buf = Vec::new();
    super::alerts::write_csv(&mut buf, report, inv)?;
    std::fs::write(path, &buf).map_err(WriteError::file(path))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1180px;color:#222;line-height:1.4}\
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}.meta{color:#555}\
nav a{margin-right:1em}figure{margin:0}figure svg{max-width:100%;height:auto;border:1px solid #ddd}\
figcaption,.caption{color:#444;font-size:.9em;margin:.4em 0 1.2em}#findings li{margin:.35em 0}\
table{border-collapse:collapse;font-size:.85em;margin-bottom:.6em}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f3f3;cursor:pointer;user-select:none}\
th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}.name{color:#666;font-size:.9em}\
.scroll{max-height:420px;overflow:auto;display:inline-block;max-width:100%}.more{color:#555;font-size:.85em;margin-top:0}";

/// Sorting by a click on a column header, numbers as numbers; and a self-check the browser
/// test reads: how many charts are visible.
const SCRIPT: &str = r#"
function cellValue(td){var t=td.textContent.replace(/,/g,'').replace(/%$/,'').replace(/^~/,'');var n=parseFloat(t);return isNaN(n)||!/^-?[\d.]/.test(t)?td.textContent:n;}
document.querySelectorAll('table.sortable').forEach(function(table){
  table.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
      var asc=th.dataset.dir!=='asc';th.dataset.dir=asc?'asc':'desc';
      rows.sort(function(a,b){var x=cellValue(a.cells[i]),y=cellValue(b.cells[i]);
        if(typeof x==='number'&&typeof y==='number'){return asc?x-y:y-x;}
        return asc?String(x).localeCompare(String(y)):String(y).localeCompare(String(x));});
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
var visible=0;document.querySelectorAll('figure svg').forEach(function(s){var r=s.getBoundingClientRect();if(r.width>100&&r.height>100){visible++;}});
document.body.dataset.visibleCharts=String(visible);
"#;

/// Two periods compared, grouped by one dimension (the briefing's "what changed").
pub struct Trend {
    pub by: Dim,
    pub comparison: Comparison,
    /// The selected period's report (label names and clock for the group names).
    pub report: AlertReport,
}

/// The comparisons of the briefing, with the periods in words.
pub struct Trends {
    /// `the last 7 days (2024-02-23 to 2024-02-29) against the 7 before`.
    pub label: String,
    pub groups: Vec<Trend>,
}

/// The code the offenders section looks behind, and the answer.
pub struct OffendersPart<'a> {
    pub code: AlertCode,
    pub offenders: &'a Offenders,
}

/// Everything the briefing shows; sections without results are left out.
pub struct Briefing<'a> {
    pub charts: &'a ChartReports,
    pub inv: &'a Inventory,
    pub spikes: Option<spikes::Shown<'a>>,
    pub trends: Option<Trends>,
    pub offenders: Option<OffendersPart<'a>>,
    pub whatif: Option<(&'a Whatif, &'a [Dim])>,
    pub ota: Option<&'a OtaResult>,
    pub migration: Option<&'a MigrationReport>,
}

/// One chart: PNG and SVG files, and the inline SVG figure for the page.
fn figure(out: &Path, stem: &str, data: &ChartData, caption: &str) -> Result<String, WriteError> {
    chart::save(data, &out.join(format!("{stem}.png")))?;
    let svg = chart::render_svg_string(data)?;
    std::fs::write(out.join(format!("{stem}.svg")), &svg)?;
    let svg = svg.trim_start_matches(|c| c != '<');
    let svg = svg
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        .unwrap_or(svg);
    Ok(format!(
        "<figure class=\"chart\" id=\"{stem}\" title=\"{}\">{svg}<figcaption>{}</figcaption></figure>\n",
        esc(data.title()),
        esc(caption)
    ))
}

/// The CSV text of `records`.
fn csv_text(records: &Records) -> Result<String, WriteError> {
    let mut buf = Vec::new();
    records.write(&mut buf, OutputFormat::Csv, serde_json::Value::Null)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// A table of the page: `KEY.csv` written beside it (full precision), and its first rows for
/// reading under a title and a caption.
fn table_block(
    out: &Path,
    key: &str,
    title: &str,
    caption: &str,
    csv: &str,
) -> Result<String, WriteError> {
    let file = format!("{key}.csv");
    let path = out.join(&file);
    std::fs::write(&path, csv).map_err(WriteError::file(&path))?;
    let caption = if caption.is_empty() {
        String::new()
    } else {
        format!("<p class=\"caption\">{}</p>", esc(caption))
    };
    Ok(format!(
        "<h3>{}</h3>{caption}<div class=\"scroll\">{}</div>\n",
        esc(title),
        html_table(csv, key, &file, MAX_ROWS)
    ))
}

/// `records` sorted by a numeric column, largest first (cells that are not numbers last).
fn sorted_desc(mut records: Records, column: &str) -> Records {
    if let Some(i) = records.header.iter().position(|h| h == column) {
        let value = |row: &Vec<String>| row[i].parse::<f64>().unwrap_or(f64::NEG_INFINITY);
        records.rows.sort_by(|a, b| value(b).total_cmp(&value(a)));
    }
    records
}

/// An alert report as records (the CSV form's cells).
fn alert_records(report: &AlertReport, inv: &Inventory) -> Result<Records, WriteError> {
    let mut buf = Vec::new();
    super::alerts::write_csv(&mut buf, report, inv)?;
    let mut rdr = csv::ReaderBuilder::new().from_reader(buf.as_slice());
    let header: Vec<String> = rdr
        .headers()
        .map(|h| h.iter().map(String::from).collect())
        .map_err(std::io::Error::other)?;
    let mut records = Records {
        numeric: vec![false; header.len()],
        header,
        rows: Vec::new(),
    };
    for rec in rdr.records() {
        let rec = rec.map_err(std::io::Error::other)?;
        records.rows.push(rec.iter().map(String::from).collect());
    }
    Ok(records)
}

fn section(id: &str, title: &str, lead: &str, body: &str) -> String {
    let lead = if lead.is_empty() {
        String::new()
    } else {
        format!("<p>{}</p>", esc(lead))
    };
    format!(
        "<section id=\"{id}\"><h2>{}</h2>{lead}{body}</section>\n",
        esc(title)
    )
}

fn rates_section(out: &Path, b: &Briefing, what: &str) -> Result<String, WriteError> {
    let mut body = String::new();
    for kind in ChartKind::ALL {
        let data = chart::build(kind, b.charts.for_kind(kind), what);
        body.push_str(&figure(out, kind.file_stem(), &data, &caption(kind))?);
    }
    // The day x region table is for spreadsheets: the rate chart above draws it.
    write_alerts_csv(
        &out.join("by_day_region.csv"),
        &b.charts.by_day_region,
        b.inv,
    )?;
    let by_code = sorted_desc(alert_records(&b.charts.by_region_code, b.inv)?, "alerts");
    body.push_str(&table_block(
        out,
        "by_region_code",
        "Alerts by region and code",
        "Most alerts first; per 1,000 device-days over the period. The daily series per region is in by_day_region.csv.",
        &csv_text(&by_code)?,
    )?);
    Ok(section("rates", "Rates by region", "", &body))
}

fn spikes_section(out: &Path, s: &spikes::Shown) -> Result<String, WriteError> {
    let p = &s.setting.params;
    let mut body = String::new();
    for (stem, data) in spikes::chart_data(s).into_iter().take(2) {
        body.push_str(&figure(
            out,
            &stem,
            &data,
            "The group's daily rate, its baseline, and the days flagged as spikes (dots).",
        )?);
    }
    let cap = if p.device_cap == 0 {
        "no per-device cap".to_string()
    } else {
        format!("a device counts at most {} alerts a day", p.device_cap)
    };
    body.push_str(&table_block(
        out,
        "spikes",
        "Spike episodes, largest excess first",
        &format!(
            "A spike is a day whose alerts stand far above the group's baseline (the median of the {} days before it, weekday-adjusted from earlier days only, after at least {} days of history): robust z of {} or more, at least {}x and {} alerts above expected; {cap}. Consecutive flagged days of a group are one episode; excess = counted - expected over its days; devices = distinct alerting devices.",
            p.window, p.min_history, p.threshold, p.min_ratio, p.min_excess
        ),
        &csv_text(&spikes::records(s, s.episodes(), false))?,
    )?);
    if !s.campaign_episodes().is_empty() {
        body.push_str(&table_block(
            out,
            "spikes_campaign",
            "Known events: the OTA campaign's own firmware codes during its run",
            "Episodes of the campaign's firmware codes while it ran: expected, so listed apart and not ranked among the incidents.",
            &csv_text(&spikes::records(s, s.campaign_episodes(), true))?,
        )?);
    }
    let f = s.found;
    let lead = if f.episodes.is_empty() {
        "No group's daily alerts rose beyond its own baseline, outside known events.".to_string()
    } else {
        format!(
            "{} spike episodes in {} of {} groups; {} campaign episodes apart.",
            thousands(f.episodes.len() as u64),
            f.flagged_groups,
            f.series.len(),
            thousands(f.campaign_episodes.len() as u64)
        )
    };
    Ok(section("spikes", "Spikes", &lead, &body))
}

fn trends_section(out: &Path, b: &Briefing, t: &Trends) -> Result<String, WriteError> {
    let mut body = String::new();
    for trend in &t.groups {
        let records = super::compare::records(&trend.comparison, &[trend.by], &trend.report, b.inv);
        let key = format!("change_by_{}", trend.by.column());
        body.push_str(&table_block(
            out,
            &key,
            &format!("By {}", trend.by.column().replace('_', " ")),
            "Rates per 1,000 devices per day in each period (device-days from the inventory, so growth is not a rise); change with its 95% interval; 'beyond noise' controls the false discovery rate at 5% (exact Poisson test, Benjamini-Hochberg). Most alerts first.",
            &csv_text(&sorted_desc(records, "alerts"))?,
        )?);
    }
    Ok(section(
        "change",
        "What changed",
        &format!("Compared: {}.", t.label),
        &body,
    ))
}

fn offenders_section(out: &Path, b: &Briefing, o: &OffendersPart) -> Result<String, WriteError> {
    let name = findings::code_name(o.code);
    let mut body = table_block(
        out,
        "offenders_devices",
        &format!("Top devices behind {name}"),
        &format!(
            "The devices raising the most {} alerts over the period, with their share of the code's alerts. The top 1% of alerting devices raise {:.0}% of them.",
            o.code,
            o.offenders.top1_share * 100.0
        ),
        &csv_text(&super::offenders::devices(o.offenders, b.inv))?,
    )?;
    body.push_str(&table_block(
        out,
        "offenders_models",
        &format!("{name} per model and firmware version"),
        "Alerts per 1,000 installed devices per day for each model and the firmware version the devices ran on the alert's day, with its trend (Mann-Kendall).",
        &csv_text(&super::offenders::models(o.offenders, b.inv))?,
    )?);
    Ok(section(
        "offenders",
        "Offenders",
        &format!("Who is behind {name}, the code of the largest spike (or the most alerts)."),
        &body,
    ))
}

fn whatif_section(out: &Path, w: &Whatif, by: &[Dim]) -> Result<String, WriteError> {
    let mut body = String::new();
    if let Some(data) = w.chart(by) {
        body.push_str(&figure(
            out,
            "whatif",
            &data,
            "Per group: the rate per 1,000 devices per day that stays, with the part the remediation would remove on top.",
        )?);
    }
    for (key, title, records) in w.sections() {
        body.push_str(&table_block(out, key, &title, "", &csv_text(records)?)?);
    }
    Ok(section("whatif", "What if", "", &body))
}

/// How the firmware-effect chart was computed, printed under it.
const EFFECT_CAPTION: &str = "Per code: the change in the upgraded devices' alert rate (per 1,000 device-days, after their upgrade against before it) beyond the change on never-upgraded targeted devices over the same calendar days, a difference in differences: (A/B)/(C_after/C_before) - 1. The dot is the effect, the line its 95% interval from 1,000 bootstrap resamples of devices (so a device raising a code a hundred times is one draw); the vertical line is no change. Verdict: dominated by few devices when the top 1% of either group raise half its alerts of the code or more; pre-trends differ when the pre-upgrade check's interval excludes 0; clear effect when the interval excludes 0 even widened for the number of codes compared (Bonferroni); otherwise no clear effect. A code without an interval (a rate at zero in too many resamples) says so, and has no dot.";

fn ota_section(out: &Path, r: &OtaResult) -> Result<String, WriteError> {
    let t = super::ota::tables(r);
    let mut body = figure(
        out,
        "ota_upgraded",
        &chart::ota::cumulative_chart(&r.aggregate, &r.campaigns),
        "Per region: the share of targeted devices running the target version at each day's end.",
    )?;
    if let Some(data) = chart::ota::effect_chart(&r.effects, &r.campaigns) {
        body.push_str(&figure(out, "ota_firmware_effect", &data, EFFECT_CAPTION)?);
    }
    for (key, title, records) in &t.sections {
        body.push_str(&table_block(
            out,
            &format!("ota_{key}"),
            title,
            "",
            &csv_text(records)?,
        )?);
    }
    let lead = t
        .summary
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(". ");
    Ok(section("ota", "OTA firmware campaign", &lead, &body))
}

/// The migration part of the page: charts, summary, tables (each also as CSV).
fn migration_section(out: &Path, m: &MigrationReport) -> Result<String, WriteError> {
    let mut body = String::from("<ul class=\"meta\">");
    for line in &super::migration::summary(m) {
        let _ = write!(body, "<li>{}</li>", esc(line.trim()));
    }
    body.push_str("</ul>");
    for (stem, data) in chart::migration::charts(m) {
        let caption = if stem == "migration_cumulative" {
            "Devices the log shows migrated, and commissioned (operated by a supplier), cumulative at each week's end, per cohort. The gap between a cohort's two lines is not its backlog: a device the log shows commissioned but migrated before the log (or on a day whose report is missing) raises the commissioned line only. The backlog, migrated but not yet operated, is in the weekly table."
        } else {
            "Each bar: a week's migrations per cohort, per reported weekday times five, so a day whose report is missing does not look like a slowdown."
        };
        body.push_str(&figure(out, stem, &data, caption)?);
    }
    for (key, title, records) in &super::migration::tables(m) {
        body.push_str(&table_block(
            out,
            &format!("migration_{key}"),
            title,
            "",
            &csv_text(records)?,
        )?);
    }
    Ok(section("migration", "SMETS1 migration", "", &body))
}

/// Creates the report's directory (`write_report` does; a caller may first, so as to fail
/// before a long read).
pub fn create_out_dir(out: &Path) -> Result<(), WriteError> {
    std::fs::create_dir_all(out).map_err(|source| WriteError::CreateDir {
        path: out.display().to_string(),
        source,
    })
}

/// Writes the briefing, its charts and tables into `out`; returns the page's path.
pub fn write_report(out: &Path, b: &Briefing, page: &PageInfo) -> Result<PathBuf, WriteError> {
    create_out_dir(out)?;
    let mut sections: Vec<(&str, &str, String)> =
        vec![("rates", "Rates", rates_section(out, b, page.what)?)];
    if let Some(s) = &b.spikes {
        sections.push(("spikes", "Spikes", spikes_section(out, s)?));
    }
    if let Some(t) = &b.trends {
        sections.push(("change", "What changed", trends_section(out, b, t)?));
    }
    if let Some(o) = &b.offenders {
        sections.push(("offenders", "Offenders", offenders_section(out, b, o)?));
    }
    if let Some((w, by)) = b.whatif {
        sections.push(("whatif", "What if", whatif_section(out, w, by)?));
    }
    if let Some(r) = b.ota {
        sections.push(("ota", "OTA", ota_section(out, r)?));
    }
    if let Some(m) = b.migration {
        sections.push(("migration", "Migration", migration_section(out, m)?));
    }
    let t = &b.charts.by_day_region.totals;
    let period = b
        .charts
        .by_day_region
        .period
        .map(chart::span)
        .unwrap_or_else(|| "no alerts".into());
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>fleetwatch briefing: {}</title><style>{STYLE}</style></head><body>\n\
         <h1>Alert briefing: {}</h1><p class=\"meta\">{}; inputs: {}; inventory: {}. Made by fleetwatch {}.</p>\n<nav>",
        esc(&period),
        esc(&period),
        esc(page.what),
        esc(&page.inputs.join(", ")),
        esc(&page
            .inventory
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none".into())),
        env!("CARGO_PKG_VERSION"),
    );
    for (id, short, _) in &sections {
        let _ = write!(html, "<a href=\"#{id}\">{short}</a>");
    }
    html.push_str(
        "<a href=\"#totals\">Totals</a></nav>\n<section id=\"findings\"><h2>Findings</h2><ul>",
    );
    for f in findings::findings(b) {
        let _ = write!(html, "<li>{}</li>", esc(&f));
    }
    html.push_str("</ul></section>\n");
    for (_, _, body) in &sections {
        html.push_str(body);
    }
    let _ = write!(
        html,
        "<section id=\"totals\"><h2>Totals</h2><table><tbody>\
         <tr><th>records read</th><td class=\"num\">{}</td></tr><tr><th>accepted</th><td class=\"num\">{}</td></tr>\
         <tr><th>duplicates</th><td class=\"num\">{}</td></tr><tr><th>rejected</th><td class=\"num\">{}</td></tr>\
         <tr><th>alert occurrences</th><td class=\"num\">{}</td></tr><tr><th>records from devices not in the inventory</th><td class=\"num\">{}</td></tr>\
         </tbody></table><p class=\"caption\">Records read = accepted + duplicates + rejected. {}</p></section>\n\
         <script>{SCRIPT}</script></body></html>\n",
        thousands(t.read),
        thousands(t.accepted_alerts),
        thousands(t.duplicates),
        thousands(t.rejected),
        thousands(t.alerts),
        thousands(t.unknown_device_records),
        if t.rejected > 0 {
            format!(
                "Rejected records are in {} with file, line and reason.",
                esc(&page.rejects.display().to_string())
            )
        } else {
            String::new()
        },
    );
    let path = out.join("report.html");
    std::fs::write(&path, html).map_err(WriteError::file(&path))?;
    Ok(path)
}
