//! Rows of text cells rendered as a table, CSV or JSON: the output of the analysis commands
//! that are not a plain alert count (spikes, offenders, what-if).

use super::OutputFormat;
use super::table::Table;
use serde_json::{Map, Value};
use std::io::{self, Write};

/// A result set: a header, which columns are numbers, and rows of cells. Numbers are written
/// plain (`1234`, `0.5`); the table form groups the thousands of whole numbers.
#[derive(Clone, Debug, Default)]
pub struct Records {
    pub header: Vec<String>,
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

impl Records {
    /// Columns, each a name and whether it holds numbers.
    pub fn new(columns: &[(&str, bool)]) -> Records {
        Records {
            header: columns.iter().map(|c| c.0.to_string()).collect(),
            numeric: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.header.len());
        self.rows.push(row);
    }

    /// The rows as JSON objects; numeric cells become numbers (empty or `n/a` become null).
    pub fn json_rows(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|row| {
                let mut m = Map::new();
                for (i, cell) in row.iter().enumerate() {
                    let v = if self.numeric[i] {
                        match cell.parse::<i64>() {
                            Ok(n) => Value::from(n),
                            Err(_) => cell
                                .parse::<f64>()
                                .ok()
                                .filter(|f| f.is_finite())
                                .map(Value::from)
                                .unwrap_or(Value::Null),
                        }
                    } else {
                        Value::String(cell.clone())
                    };
                    m.insert(self.header[i].clone(), v);
                }
                Value::Object(m)
            })
            .collect()
    }

    /// Writes the records; `meta` is merged into the JSON document (parameters, totals) and
    /// ignored by the table and CSV forms.
    pub fn write(&self, w: &mut impl Write, fmt: OutputFormat, meta: Value) -> io::Result<()> {
        match fmt {
            OutputFormat::Table => {
                let mut t = Table::new(self.header.clone(), self.numeric.clone());
                t.rows = self
                    .rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .zip(&self.numeric)
                            .map(|(c, &num)| match c.parse::<u64>() {
                                Ok(n) if num => super::thousands(n),
                                _ => c.clone(),
                            })
                            .collect()
                    })
                    .collect();
                t.write(w)
            }
            OutputFormat::Csv => {
                let mut out = csv::Writer::from_writer(w);
                out.write_record(&self.header)?;
                for r in &self.rows {
                    out.write_record(r)?;
                }
                out.flush()
            }
            OutputFormat::Json => {
                let mut doc = match meta {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                doc.insert("rows".into(), Value::Array(self.json_rows()));
                serde_json::to_writer_pretty(&mut *w, &Value::Object(doc))?;
                writeln!(w)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_numbers_as_numbers() {
        let mut r = Records::new(&[("name", false), ("alerts", true), ("rate", true)]);
        r.push(vec!["a".into(), "1234".into(), "0.5".into()]);
        r.push(vec!["b".into(), "".into(), "n/a".into()]);
        let mut out = Vec::new();
        r.write(&mut out, OutputFormat::Json, serde_json::json!({"k": 1}))
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["k"], 1);
        assert_eq!(v["rows"][0]["alerts"], 1234);
        assert_eq!(v["rows"][0]["rate"], 0.5);
        assert!(v["rows"][1]["alerts"].is_null() && v["rows"][1]["rate"].is_null());
        let mut out = Vec::new();
        r.write(&mut out, OutputFormat::Csv, Value::Null).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "name,alerts,rate\na,1234,0.5\nb,,n/a\n"
        );
        let mut out = Vec::new();
        r.write(&mut out, OutputFormat::Table, Value::Null).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("1,234"));
    }
}
