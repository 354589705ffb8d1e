//! The HTML report: one self-contained page (inline SVG charts, the totals, sortable tables,
//! no network), with every chart beside it as PNG and SVG and every table as CSV.
//!
//! It renders reports already computed, and reads no input. Each HTML table is built from the
//! text of its CSV file, so the page and the files cannot disagree.

use super::chart::{self, ChartData, ChartKind};
use super::output::WriteError;
use super::{OutputFormat, thousands};
use crate::analyze::alerts::AlertReport;
use crate::analyze::migration::report::MigrationReport;
use crate::inventory::Inventory;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An HTML table holding exactly the cells of a CSV table (so the two cannot disagree).
fn html_table(csv_text: &str, id: &str, file: &str) -> String {
    let mut rdr = csv::ReaderBuilder::new().from_reader(csv_text.as_bytes());
    let mut h = format!("<table class=\"sortable\" id=\"{id}\" data-csv=\"{file}\"><thead><tr>");
    if let Ok(head) = rdr.headers() {
        for c in head {
            let _ = write!(h, "<th>{}</th>", esc(c));
        }
    }
    h.push_str("</tr></thead><tbody>");
    for rec in rdr.records().flatten() {
        h.push_str("<tr>");
        for c in &rec {
            let _ = write!(h, "<td>{}</td>", esc(c));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    h
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1180px;color:#222}\
h1{margin-bottom:.2em}.meta{color:#555}figure{margin:0}figure svg{max-width:100%;height:auto;border:1px solid #ddd}\
figcaption{color:#444;font-size:.9em;margin:.4em 0 1.6em}table{border-collapse:collapse;font-size:.85em;margin-bottom:1.5em}\
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3;cursor:pointer;user-select:none}\
th:first-child,td:first-child{text-align:left}.scroll{max-height:420px;overflow:auto;display:inline-block}\
#totals td{text-align:right}";

/// Sorting by a click on a column header, numbers as numbers; and a self-check the browser
/// test reads: how many charts are visible.
const SCRIPT: &str = r#"
function cellValue(td){var t=td.textContent.replace(/,/g,'').replace(/^~/,'');var n=parseFloat(t);return isNaN(n)||!/^-?[\d.]/.test(t)?td.textContent:n;}
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
        "<section class=\"chart\" id=\"{stem}\"><h2>{}</h2><figure>{svg}<figcaption>{}</figcaption></figure></section>\n",
        esc(data.title()),
        esc(caption)
    ))
}

/// The migration part of the page: charts, summary, tables (each also as CSV).
fn migration_html(out: &Path, m: &MigrationReport) -> Result<String, WriteError> {
    let mut html = String::from("<section id=\"migration\"><h2>SMETS1 migration</h2>");
    for line in &super::migration::summary(m) {
        let _ = write!(html, "<p class=\"meta\">{}</p>", esc(line));
    }
    html.push_str("</section>\n");
    for (stem, data) in chart::migration::charts(m) {
        let caption = if stem == "migration_cumulative" {
            "Devices the log shows migrated, and commissioned (operated by a supplier), cumulative at each week's end, per cohort. The gap between a cohort's two lines is not its backlog: a device the log shows commissioned but migrated before the log (or on a day whose report is missing) raises the commissioned line only. The backlog, migrated but not yet operated, is in the weekly table."
        } else {
            "Each bar: a week's migrations per cohort, per reported weekday times five, so a day whose report is missing does not look like a slowdown."
        };
        html.push_str(&figure(out, stem, &data, caption)?);
    }
    html.push_str("<section id=\"migration_tables\"><h2>Migration tables</h2>");
    for (key, title, records) in &super::migration::tables(m) {
        let mut buf = Vec::new();
        records.write(&mut buf, OutputFormat::Csv, serde_json::Value::Null)?;
        let file = format!("migration_{key}.csv");
        std::fs::write(out.join(&file), &buf)?;
        let _ = write!(
            html,
            "<h3>{}</h3><div class=\"scroll\">{}</div>",
            esc(title),
            html_table(
                &String::from_utf8_lossy(&buf),
                &format!("migration_{key}"),
                &file
            )
        );
    }
    html.push_str("</section>\n");
    Ok(html)
}

/// Creates the report's directory (`write_report` does; a caller may first, so as to fail
/// before a long read).
pub fn create_out_dir(out: &Path) -> Result<(), WriteError> {
    std::fs::create_dir_all(out).map_err(|source| WriteError::CreateDir {
        path: out.display().to_string(),
        source,
    })
}

/// Writes the report, its charts and tables into `out`; returns the page's path.
pub fn write_report(
    out: &Path,
    r: &ChartReports,
    inv: &Inventory,
    migration: Option<&MigrationReport>,
    page: &PageInfo,
) -> Result<PathBuf, WriteError> {
    create_out_dir(out)?;
    let mut figures = String::new();
    for kind in ChartKind::ALL {
        let data = chart::build(kind, r.for_kind(kind), page.what);
        figures.push_str(&figure(out, kind.file_stem(), &data, &caption(kind))?);
    }
    if let Some(m) = migration {
        figures.push_str(&migration_html(out, m)?);
    }
    let by_day_region = write_alerts_csv(&out.join("by_day_region.csv"), &r.by_day_region, inv)?;
    let by_region_code = write_alerts_csv(&out.join("by_region_code.csv"), &r.by_region_code, inv)?;
    let t = &r.by_day_region.totals;
    let period = r
        .by_day_region
        .period
        .map(chart::span)
        .unwrap_or_else(|| "no alerts".into());
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>fleetwatch report: {}</title><style>{STYLE}</style></head><body>\n\
         <h1>Alert report</h1><p class=\"meta\">{}, {}; inputs: {}; inventory: {}. Made by fleetwatch {}.</p>\n\
         <section id=\"totals\"><h2>Totals</h2><table><tbody>\
         <tr><th>records read</th><td>{}</td></tr><tr><th>accepted</th><td>{}</td></tr>\
         <tr><th>duplicates</th><td>{}</td></tr><tr><th>rejected</th><td>{}</td></tr>\
         <tr><th>alert occurrences</th><td>{}</td></tr><tr><th>records from devices not in the inventory</th><td>{}</td></tr>\
         </tbody></table><p>Records read = accepted + duplicates + rejected. {}</p></section>\n{figures}\
         <section id=\"tables\"><h2>Tables</h2><p>Click a column header to sort. The same tables are in <code>by_region_code.csv</code> and <code>by_day_region.csv</code>.</p>\
         <h3>By region and code</h3><div class=\"scroll\">{}</div><h3>By day and region</h3><div class=\"scroll\">{}</div></section>\n\
         <script>{SCRIPT}</script></body></html>\n",
        esc(&period),
        esc(page.what),
        esc(&period),
        esc(&page.inputs.join(", ")),
        esc(&page
            .inventory
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none".into())),
        env!("CARGO_PKG_VERSION"),
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
        html_table(&by_region_code, "by_region_code", "by_region_code.csv"),
        html_table(&by_day_region, "by_day_region", "by_day_region.csv"),
    );
    let path = out.join("report.html");
    std::fs::write(&path, html).map_err(WriteError::file(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_tables_hold_the_csv_cells_escaped() {
        let h = html_table("code,name\n81B8,\"a <b> & \"\"c\"\"\"\n", "t", "t.csv");
        assert_eq!(
            h,
            "<table class=\"sortable\" id=\"t\" data-csv=\"t.csv\"><thead><tr><th>code</th><th>name</th></tr></thead>\
             <tbody><tr><td>81B8</td><td>a &lt;b&gt; &amp; &quot;c&quot;</td></tr></tbody></table>"
        );
    }
}
