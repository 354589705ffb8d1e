//! Where the fields sit in a CSV source's rows (`CsvLayout`, from its header), and how a split
//! row becomes an event or a reject: shared by the general CSV reader (`csv`) and the
//! quote-free fast path (`csv_plain`).

use super::{ColumnMap, Field, RawFields, Sink, event_from_fields};

/// Where each field sits in the rows of one CSV source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvLayout {
    pub delimiter: u8,
    /// Column index of each `Field`, by `Field as usize`.
    pub columns: [Option<usize>; Field::COUNT],
    pub header: Vec<String>,
    /// For each column, a bit per `Field` it feeds (the inverse of `columns`, for the hot loop).
    pub fields_of_column: Vec<u16>,
    /// Whether the rows hold a timestamp, a device id and an alert code and nothing else:
    /// three columns, each feeding one of them. The quote-free path then tries `plain_alert`
    /// on each row before the general `event_from_fields`.
    pub plain: bool,
}

const REQUIRED: [Field; 3] = [Field::Timestamp, Field::Device, Field::Code];

impl CsvLayout {
    /// Reads the header row. Fails with a message that lists the columns and says how to map one.
    pub fn from_header(line: &[u8], map: &ColumnMap) -> Result<CsvLayout, String> {
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let delimiter = sniff_delimiter(line);
        let mut scratch = Vec::new();
        let mut ranges = Vec::new();
        split_quoted(line, delimiter, &mut scratch, &mut ranges);
        let header: Vec<String> = ranges
            .iter()
            .map(|r| {
                String::from_utf8_lossy(&scratch[r.0..r.1])
                    .trim()
                    .to_string()
            })
            .collect();
        if header.iter().any(|h| h.chars().any(|c| c.is_control())) {
            return Err(
                "the first line is not a CSV header (it holds control characters: binary data?)"
                    .into(),
            );
        }
        for (i, h) in header.iter().enumerate() {
            if !h.is_empty()
                && let Some(j) = header[..i].iter().position(|o| o.eq_ignore_ascii_case(h))
            {
                return Err(format!(
                    "the header names column `{h}` twice (columns {} and {}): which one holds the values is ambiguous; rename one",
                    j + 1,
                    i + 1
                ));
            }
        }
        let mut columns = [None; Field::COUNT];
        for (i, h) in header.iter().enumerate() {
            if let Some(f) = Field::from_name(h.as_bytes()) {
                columns[f as usize].get_or_insert(i);
            }
        }
        for (f, name) in &map.0 {
            let i = header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    format!(
                        "--columns {}={name}: no column `{name}`; columns are: {}",
                        f.key(),
                        header.join(", ")
                    )
                })?;
            columns[*f as usize] = Some(i);
        }
        let has_payload = columns[Field::Payload as usize].is_some();
        for f in REQUIRED {
            // A GBCS payload column can stand in for the others.
            if columns[f as usize].is_none() && !has_payload {
                return Err(format!(
                    "no column for `{}` (looked for {}); columns are: {}; map one with --columns {}=NAME",
                    f.key(),
                    f.aliases().join("/"),
                    header.join(", "),
                    f.key()
                ));
            }
        }
        let mut fields_of_column = vec![0u16; header.len()];
        for f in Field::ALL {
            if let Some(i) = columns[f as usize] {
                fields_of_column[i] |= 1 << f as u16;
            }
        }
        let plain = header.len() == REQUIRED.len()
            && columns.iter().flatten().count() == REQUIRED.len()
            && REQUIRED.iter().all(|&f| {
                columns[f as usize].is_some_and(|i| fields_of_column[i] == 1 << f as u16)
            });
        Ok(CsvLayout {
            delimiter,
            columns,
            header,
            fields_of_column,
            plain,
        })
    }
}

/// The delimiter of a header row: whichever of `,` `;` tab `|` it holds most of (`,` if none).
pub fn sniff_delimiter(header: &[u8]) -> u8 {
    [b',', b';', b'\t', b'|']
        .into_iter()
        .max_by_key(|d| header.iter().filter(|b| *b == d).count())
        .unwrap_or(b',')
}

/// Hands a row on: an event, or a reject when it has not the header's number of fields or a
/// field is invalid. `at` is the row's line number, byte offset and bytes.
#[inline]
pub(super) fn emit_row(
    fields: &RawFields,
    n: usize,
    ncols: usize,
    (line_no, off, line): (u64, u64, &[u8]),
    sink: &mut impl Sink,
) {
    if n != ncols {
        let reason = format!("expected {ncols} fields as in the header, found {n}");
        return sink.reject(line_no, off, reason, line);
    }
    match event_from_fields(fields) {
        Ok(ev) => sink.event(&ev),
        Err(reason) => sink.reject(line_no, off, reason, line),
    }
}

#[inline]
pub(super) fn assign<'a>(layout: &CsvLayout, fields: &mut RawFields<'a>, col: usize, v: &'a [u8]) {
    let mut bits = layout.fields_of_column.get(col).copied().unwrap_or(0);
    while bits != 0 {
        let f = bits.trailing_zeros() as usize;
        fields.values[f] = Some(v);
        bits &= bits - 1;
    }
}

/// Splits a line with RFC 4180 quoting into `scratch`; returns false if a quote is unbalanced.
pub(super) fn split_quoted(
    line: &[u8],
    delim: u8,
    scratch: &mut Vec<u8>,
    ranges: &mut Vec<(usize, usize)>,
) -> bool {
    scratch.clear();
    ranges.clear();
    let mut i = 0;
    let mut start = 0;
    let mut in_quotes = false;
    let mut field_quoted = false;
    while i < line.len() {
        let b = line[i];
        if in_quotes {
            if b == b'"' {
                if line.get(i + 1) == Some(&b'"') {
                    scratch.push(b'"');
                    i += 1;
                } else {
                    in_quotes = false;
                }
            } else {
                scratch.push(b);
            }
        } else if b == b'"' && (scratch.len() == start || field_quoted) {
            in_quotes = true;
            field_quoted = true;
        } else if b == delim {
            ranges.push((start, scratch.len()));
            start = scratch.len();
            field_quoted = false;
        } else {
            scratch.push(b);
        }
        i += 1;
    }
    ranges.push((start, scratch.len()));
    !in_quotes
}
