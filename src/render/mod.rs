//! Outputs: every renderer writes to any `io::Write`, so tests render into a `Vec<u8>`;
//! `parquet` writes datasets of files for Spark and DuckDB.

pub mod alerts;
pub mod chart;
pub mod compare;
pub mod migration;
pub mod offenders;
pub mod ota;
pub mod output;
#[cfg(feature = "parquet")]
pub mod parquet;
pub mod records;
pub mod rejects;
pub mod report;
pub mod spikes;
pub mod table;
pub mod whatif;

use crate::analyze::totals::Totals;

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and the noun, singular for one (`1 file`, `2 files`, `1,200 files`).
pub fn count_of(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// The one-paragraph summary printed after every run.
pub fn totals_summary(t: &Totals) -> String {
    let n = crate::render::thousands;
    let mut s = format!(
        "records read {} = accepted {} + duplicates {} + rejected {}",
        n(t.read),
        n(t.accepted()),
        n(t.duplicates),
        n(t.rejected)
    );
    s += &format!(
        "\n  accepted: {} alert records ({} alerts), {} outside the filters, {} non-alert messages",
        n(t.accepted_alerts),
        n(t.alerts),
        n(t.out_of_scope),
        n(t.non_alert)
    );
    if t.unknown_device_records > 0 {
        s += &format!(
            "\n  {} alert records from {} devices not in the inventory (counted under Unknown)",
            n(t.unknown_device_records),
            n(t.unknown_devices)
        );
    }
    s
}

/// A warning when a run found nothing to analyse: no record at all, or no alert in the
/// selection. An empty table is then not a clean bill of health, and the run says so.
pub fn empty_warning(t: &Totals) -> Option<&'static str> {
    if t.read == 0 {
        Some("no records were read: the inputs are empty")
    } else if t.accepted_alerts == 0 {
        Some(
            "no alert records in the selection: every record was outside the filters, rejected or not an alert",
        )
    } else {
        None
    }
}

crate::keyword_enum!(
    /// Output formats of the analysis commands.
    pub enum OutputFormat {
        Table = "table": "aligned columns for reading in a terminal",
        Csv = "csv": "comma-separated, with a header row, for spreadsheets and other tools",
        Json = "json": "one JSON document with the rows, the filters and the totals",
    }
);

/// A rate with 4 decimals, or `n/a` when the denominator is unknown or zero.
pub fn rate(v: Option<f64>) -> String {
    match v {
        Some(r) => format!("{r:.4}"),
        None => "n/a".to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_groups() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1000), "1,000");
        assert_eq!(super::thousands(1234567), "1,234,567");
    }

    #[test]
    fn one_is_singular() {
        assert_eq!(super::count_of(1, "file", "files"), "1 file");
        assert_eq!(super::count_of(0, "file", "files"), "0 files");
        assert_eq!(super::count_of(2500, "row", "rows"), "2,500 rows");
    }
}
