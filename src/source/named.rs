//! Small record files of named fields: CSV with a header, or JSON lines with the same keys,
//! plain or compressed. For side inputs (OTA outcome records, migration logs) whose columns
//! vary between exporters: each field has aliases, matched without regard to case.

use super::InputError;
use super::{Input, open_input};
use std::io::{BufRead, Read};

/// The longest line of a side input read.
const MAX_LINE: u64 = 1 << 20;

/// A field and the column names (or JSON keys) it goes by, lower case.
pub type Field<'a> = (&'a str, &'a [&'a str]);

fn field_of(fields: &[Field], name: &str) -> Option<usize> {
    let n = name
        .trim()
        .trim_start_matches('\u{feff}')
        .to_ascii_lowercase();
    fields
        .iter()
        .position(|(_, aliases)| aliases.contains(&n.as_str()))
}

/// Splits one CSV line (quotes honoured; these files hold no embedded newlines). Lines without
/// quotes split on commas directly: building a CSV reader per line costs far more.
fn split_csv(line: &str) -> Vec<String> {
    if !line.contains('"') {
        return line.split(',').map(str::to_string).collect();
    }
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    r.records()
        .next()
        .and_then(|x| x.ok())
        .map(|rec| rec.iter().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Reads every record, calling `row(line, values, raw)` with the values in `fields` order
/// (missing ones empty), or with the reason a line is unreadable (a JSON line that is not an
/// object). Returns the number of records read. The CSV header must name every field in
/// `required`.
pub fn read_named(
    input: &Input,
    fields: &[Field],
    required: &[usize],
    mut row: impl FnMut(u64, Result<&[String], String>, &str),
) -> Result<u64, InputError> {
    let mut reader = open_input(input)?.reader;
    let mut header: Vec<Option<usize>> = Vec::new();
    let mut json = None;
    let (mut line_no, mut read) = (0u64, 0u64);
    let mut buf = String::new();
    let mut values = vec![String::new(); fields.len()];
    loop {
        buf.clear();
        if (&mut reader)
            .take(MAX_LINE)
            .read_line(&mut buf)
            .map_err(InputError::io_named(input.name(), "read"))?
            == 0
        {
            break;
        }
        line_no += 1;
        if buf.len() as u64 >= MAX_LINE && !buf.ends_with('\n') {
            return Err(InputError::content(
                input.name(),
                Some(line_no),
                format!(
                    "a line longer than {} KiB (binary data, or a decompression bomb?): not read",
                    MAX_LINE >> 10
                ),
            ));
        }
        let text = buf.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        let is_json = *json.get_or_insert_with(|| text.trim_start().starts_with('{'));
        if !is_json && header.is_empty() {
            header = split_csv(text)
                .iter()
                .map(|h| field_of(fields, h))
                .collect();
            for &r in required {
                if !header.contains(&Some(r)) {
                    return Err(InputError::content(
                        input.name(),
                        Some(line_no),
                        format!(
                            "no `{}` column (found: {text}); names accepted: {}",
                            fields[r].0,
                            fields[r].1.join(", ")
                        ),
                    ));
                }
            }
            continue;
        }
        read += 1;
        values.iter_mut().for_each(String::clear);
        if is_json {
            match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
                Ok(m) => {
                    for (k, v) in m {
                        if let Some(f) = field_of(fields, &k) {
                            values[f] = match v {
                                serde_json::Value::String(s) => s,
                                serde_json::Value::Null => String::new(),
                                other => other.to_string(),
                            };
                        }
                    }
                }
                Err(e) => {
                    row(line_no, Err(format!("not a JSON object: {e}")), text);
                    continue;
                }
            }
        } else {
            for (i, v) in split_csv(text).into_iter().enumerate() {
                if let Some(Some(f)) = header.get(i) {
                    values[*f] = v;
                }
            }
        }
        row(line_no, Ok(&values), text);
    }
    Ok(read)
}
