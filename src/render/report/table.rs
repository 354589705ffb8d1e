//! Tables for reading: the cells of a CSV table rounded, whole numbers grouped by thousands,
//! shares and changes in per cent, each alert code with its name, and the internal columns
//! (exact-count flags, p-values, exposures) left to the CSV file beside the page.
//!
//! The page's table is built from the text of its CSV file, never from the analysis again, so
//! the two cannot disagree: every number shown is its CSV cell rounded.

use crate::catalogue;
use crate::model::AlertCode;
use std::fmt::Write as _;

/// Columns a reader does not need: they stay in the CSV file.
const INTERNAL: &[&str] = &[
    "alerting_devices_exact",
    "records",
    "p_value",
    "q_value",
    "z",
    "device_days",
    "compare_device_days",
];

/// How many rows the page shows of a table (all of them are in the CSV file).
pub const MAX_ROWS: usize = 50;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How a column's numbers read: fractions shown in per cent (0.25 as `25.0%`), numbers that
/// already are per cent (`_pct`), or plain numbers.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Unit {
    Fraction,
    Percent,
    Plain,
}

fn unit(column: &str) -> Unit {
    if column.ends_with("_pct") {
        Unit::Percent
    } else if column.contains("share")
        || column.starts_with("change")
        || column.ends_with("_rate")
        || column.ends_with("ci_low")
        || column.ends_with("ci_high")
        || matches!(column, "wilson_lower" | "relative_effect")
    {
        Unit::Fraction
    } else {
        Unit::Plain
    }
}

fn is_code(column: &str) -> bool {
    matches!(column, "code" | "alert_code")
}

/// A number rounded for reading: whole numbers with thousands separators; others to three
/// significant figures below 100, whole above.
pub fn readable(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    let decimals = if v.fract() == 0.0 || a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else if a == 0.0 {
        0
    } else {
        // Three significant figures: 0.0123.
        (2 - a.log10().floor() as i32).clamp(3, 8) as usize
    };
    let text = format!("{:.*}", decimals, v);
    group_thousands(&text)
}

/// A per cent figure: one decimal, or three significant figures under 1% (`0.0412`).
fn percent(v: f64) -> String {
    if v != 0.0 && v.abs() < 1.0 {
        readable(v)
    } else {
        group_thousands(&format!("{v:.1}"))
    }
}

/// `-1234567.5` as `-1,234,567.5`.
fn group_thousands(text: &str) -> String {
    let (sign, rest) = text.strip_prefix('-').map_or(("", text), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut out = String::from(sign);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// One cell as the page shows it (escaped HTML).
fn cell(column: &str, text: &str, numeric: bool) -> String {
    if numeric && let Ok(v) = text.parse::<f64>() {
        return match unit(column) {
            Unit::Fraction => format!("{}%", percent(v * 100.0)),
            Unit::Percent => format!("{}%", percent(v)),
            Unit::Plain => readable(v),
        };
    }
    if is_code(column)
        && let Ok(code) = text.parse::<AlertCode>()
        && let Some(entry) = catalogue::lookup(code)
        && !entry.name.is_empty()
    {
        return format!(
            "{} <span class=\"name\">{}</span>",
            esc(text),
            esc(&entry.name)
        );
    }
    esc(text)
}

/// The HTML table of a CSV table: its first `max_rows` rows (a note says how many more the
/// file holds), columns in the CSV's order less the internal ones, `data-csv` naming the file.
pub fn html_table(csv_text: &str, id: &str, file: &str, max_rows: usize) -> String {
    let mut rdr = csv::ReaderBuilder::new().from_reader(csv_text.as_bytes());
    let header: Vec<String> = rdr
        .headers()
        .map(|h| h.iter().map(String::from).collect())
        .unwrap_or_default();
    let rows: Vec<csv::StringRecord> = rdr.records().flatten().collect();
    // A column is numeric when every filled cell parses as a number.
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .filter(|c| !c.is_empty() && *c != "n/a")
                .all(|c| c.parse::<f64>().is_ok())
                && rows.iter().any(|r| r.get(i).is_some_and(|c| !c.is_empty()))
        })
        .collect();
    let shown: Vec<usize> = (0..header.len())
        .filter(|&i| !INTERNAL.contains(&header[i].as_str()))
        .collect();
    let mut h = format!(
        "<table class=\"sortable\" id=\"{}\" data-csv=\"{}\"><thead><tr>",
        esc(id),
        esc(file)
    );
    for &i in &shown {
        let class = if numeric[i] { " class=\"num\"" } else { "" };
        let _ = write!(
            h,
            "<th{class} data-column=\"{}\">{}</th>",
            esc(&header[i]),
            esc(&header[i].replace('_', " "))
        );
    }
    h.push_str("</tr></thead><tbody>");
    for rec in rows.iter().take(max_rows) {
        h.push_str("<tr>");
        for &i in &shown {
            let class = if numeric[i] { " class=\"num\"" } else { "" };
            let _ = write!(
                h,
                "<td{class}>{}</td>",
                cell(&header[i], rec.get(i).unwrap_or(""), numeric[i])
            );
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    if rows.len() > max_rows {
        let _ = write!(
            h,
            "<p class=\"more\">The first {max_rows} of {} rows; all of them, at full precision, are in <code>{}</code>.</p>",
            group_thousands(&rows.len().to_string()),
            esc(file)
        );
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_rounded_for_reading() {
        assert_eq!(readable(4.156624288809552), "4.16");
        assert_eq!(readable(1234567.0), "1,234,567");
        assert_eq!(readable(-1234.6), "-1,235");
        assert_eq!(readable(12.34), "12.3");
        assert_eq!(readable(0.012345), "0.0123");
        assert_eq!(readable(0.5), "0.500");
        assert_eq!(readable(0.0), "0");
    }

    #[test]
    fn tables_name_codes_show_shares_in_per_cent_and_leave_internal_columns_out() {
        let csv = "code,alerts,alerting_devices_exact,per_1000,share,change_pct\n81B8,1234,true,4.156624288809552,0.25,-38.63\n81B9,1,true,0,0.0004,0\n";
        let h = html_table(csv, "t", "t.csv", 10);
        assert!(!h.contains("exact"), "{h}");
        assert!(h.contains("<td>81B8 <span class=\"name\">"), "{h}");
        assert!(h.contains("<td class=\"num\">1,234</td>"), "{h}");
        assert!(h.contains("<td class=\"num\">4.16</td>"), "{h}");
        assert!(h.contains("<td class=\"num\">25.0%</td>"), "{h}");
        assert!(h.contains("<td class=\"num\">0.0400%</td>"), "{h}");
        assert!(h.contains("<td class=\"num\">-38.6%</td>"), "{h}");
        assert!(h.contains("data-csv=\"t.csv\""));
    }

    #[test]
    fn long_tables_say_where_the_rest_is() {
        let mut csv = String::from("region,alerts\n");
        for i in 0..5 {
            csv.push_str(&format!("R{i},{i}\n"));
        }
        let h = html_table(&csv, "t", "t.csv", 2);
        assert_eq!(h.matches("<tr>").count(), 3);
        assert!(h.contains("The first 2 of 5 rows"), "{h}");
    }

    #[test]
    fn cells_are_escaped() {
        let h = html_table("name,n\n\"a <b> & \"\"c\"\"\",1\n", "t", "t.csv", 10);
        assert!(
            h.contains("<td>a &lt;b&gt; &amp; &quot;c&quot;</td>"),
            "{h}"
        );
    }
}
