//! The alert-code catalogue, embedded from the data files in `data/` (copied unchanged from the
//! project's shared catalogue; see `docs/catalogue.md`). Nothing here is typed by hand: the
//! tables are parsed from the CSV text once, on first use.
//!
//! A code that is not in the catalogue is still a valid code: `lookup` returns `None` and
//! callers label it "unknown" rather than dropping it.

use crate::model::AlertCode;
use std::sync::OnceLock;

const GBCS_CSV: &str = include_str!("data/gbcs-alert-codes.csv");
const DCC_CSV: &str = include_str!("data/dcc-alert-codes.csv");

/// One catalogue row. `name` and `category` are empty for DCC codes (no public names exist).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub code: AlertCode,
    pub name: String,
    pub category: String,
}

/// The label for a code the catalogue lacks.
pub const UNKNOWN_CATEGORY: &str = "unknown";

fn parse(text: &str) -> Vec<Entry> {
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.expect("embedded catalogue is valid CSV");
        let code = AlertCode::parse(rec[0].as_bytes()).expect("embedded catalogue codes are valid");
        out.push(Entry {
            code,
            name: rec[1].to_string(),
            category: rec[2].to_string(),
        });
    }
    out
}

/// All entries, device codes first, sorted by code.
pub fn entries() -> &'static [Entry] {
    static ALL: OnceLock<Vec<Entry>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut v = parse(GBCS_CSV);
        v.extend(parse(DCC_CSV));
        v.sort_by_key(|e| e.code);
        v
    })
}

pub fn lookup(code: AlertCode) -> Option<&'static Entry> {
    let all = entries();
    all.binary_search_by_key(&code, |e| e.code)
        .ok()
        .map(|i| &all[i])
}

/// The category of a code: the catalogue's, `dcc` for DCC codes, or `unknown`.
pub fn category(code: AlertCode) -> &'static str {
    match lookup(code) {
        Some(e) if !e.category.is_empty() => e.category.as_str(),
        _ if !code.is_device() => "dcc",
        _ => UNKNOWN_CATEGORY,
    }
}

/// The official short name, or a label saying why there is none.
pub fn describe(code: AlertCode) -> &'static str {
    match lookup(code) {
        Some(e) if !e.name.is_empty() => e.name.as_str(),
        Some(_) => "(DCC alert: no public name; see the DCCAlert body element)",
        None => "(unknown code: not in the catalogue)",
    }
}

/// Entries whose code, name or category contains `word` (case-insensitive).
pub fn search(word: &str) -> Vec<&'static Entry> {
    let w = word.to_ascii_lowercase();
    entries()
        .iter()
        .filter(|e| {
            e.code.to_string().to_ascii_lowercase().contains(&w)
                || e.name.to_ascii_lowercase().contains(&w)
                || e.category.to_ascii_lowercase() == w
        })
        .collect()
}

/// Category names, indexed by `category_id`: the catalogue's, then `dcc`, then `unknown`.
pub fn category_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut v: Vec<String> = entries()
            .iter()
            .map(|e| e.category.clone())
            .filter(|c| !c.is_empty())
            .collect();
        v.sort();
        v.dedup();
        v.push("dcc".into());
        v.push(UNKNOWN_CATEGORY.into());
        v
    })
}

/// A small integer for a code's category (an index into `category_names`), from a table built
/// once, so grouping by category costs one array read per record.
#[inline]
pub fn category_id(code: AlertCode) -> u8 {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let names = category_names();
        let unknown = (names.len() - 1) as u8;
        let mut t = vec![unknown; 1 << 16];
        for e in entries().iter().filter(|e| e.code.is_device()) {
            t[e.code.0 as usize] = names
                .iter()
                .position(|n| *n == e.category)
                .unwrap_or(unknown as usize) as u8;
        }
        t
    });
    match code.device_code() {
        Some(c) => t[c as usize],
        None => (category_names().len() - 2) as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_tables_are_complete() {
        let device = entries().iter().filter(|e| e.code.is_device()).count();
        let dcc = entries().iter().filter(|e| !e.code.is_device()).count();
        assert_eq!(device, 186, "rows of gbcs-alert-codes.csv");
        assert_eq!(dcc, 66, "rows of dcc-alert-codes.csv");
    }

    #[test]
    fn known_codes() {
        let c = |s: &str| AlertCode::parse(s.as_bytes()).unwrap();
        assert_eq!(describe(c("81B8")), "Incorrect Polarity");
        assert_eq!(category(c("81B8")), "tamper");
        assert_eq!(describe(c("81BB")), "Reverse Current");
        assert_eq!(category(c("8F35")), "supply");
        assert_eq!(category(c("8F8A")), "firmware");
        assert!(
            lookup(c("8F60")).unwrap().name.contains(','),
            "quoted name with commas"
        );
        // Valid but not catalogued: kept, labelled unknown.
        assert_eq!(lookup(c("8F85")), None);
        assert_eq!(category(c("8F85")), "unknown");
        assert_eq!(category(c("N24")), "dcc");
        assert!(lookup(c("N24")).is_some());
        assert!(lookup(c("N32")).is_none(), "N32 is not in the schema");
    }

    #[test]
    fn search_by_word() {
        let hits = search("polarity");
        assert!(hits.iter().any(|e| e.code.to_string() == "81B8"));
        assert!(
            search("supply")
                .iter()
                .filter(|e| e.category == "supply")
                .count()
                == 12
        );
        assert!(search("firmware").len() >= 8);
    }
}
