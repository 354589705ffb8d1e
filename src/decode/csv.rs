//! CSV exports: a header row names the columns; the delimiter (`,` `;` tab `|`) is taken from it.
//!
//! Columns are found by alias (see `Field::aliases`) or by the user's `--columns` mapping.
//! The hot path splits unquoted lines with `memchr`; a line holding a quote goes through a
//! small RFC 4180 parser into a reused scratch buffer. Extra columns are ignored.

use super::{ColumnMap, Field, RawFields, Sink, event_from_fields};
use crate::source::{QuotedEnd, quoted_end};

/// Where each field sits in the rows of one CSV source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvLayout {
    pub delimiter: u8,
    /// Column index of each `Field`, by `Field as usize`.
    pub columns: [Option<usize>; Field::COUNT],
    pub header: Vec<String>,
    /// For each column, a bit per `Field` it feeds (the inverse of `columns`, for the hot loop).
    pub fields_of_column: Vec<u16>,
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
        Ok(CsvLayout {
            delimiter,
            columns,
            header,
            fields_of_column,
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

/// Reusable buffers for quoted lines.
#[derive(Default)]
pub struct CsvScratch {
    buf: Vec<u8>,
    ranges: Vec<(usize, usize)>,
}

/// Splits a line with RFC 4180 quoting into `scratch`; returns false if a quote is unbalanced.
fn split_quoted(
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

/// Decodes the rows of one chunk (the header is not in it).
pub fn decode(
    layout: &CsvLayout,
    data: &[u8],
    first_line: u64,
    offset: u64,
    scratch: &mut CsvScratch,
    sink: &mut impl Sink,
) {
    if memchr::memchr(b'"', data).is_none() {
        super::csv_plain::decode_unquoted(layout, data, first_line, offset, sink);
    } else {
        decode_general(layout, data, first_line, offset, scratch, sink);
    }
}

/// Decodes a chunk line by line, quotes and all (`decode` takes a faster path for chunks
/// without a quote).
pub(super) fn decode_general(
    layout: &CsvLayout,
    data: &[u8],
    first_line: u64,
    offset: u64,
    scratch: &mut CsvScratch,
    sink: &mut impl Sink,
) {
    let ncols = layout.header.len();
    let mut pos = 0usize;
    let mut next_line = first_line;
    while pos < data.len() {
        let nl = memchr::memchr(b'\n', &data[pos..])
            .map(|i| pos + i)
            .unwrap_or(data.len());
        let (mut end, mut spanned) = (nl, 1);
        if memchr::memchr(b'"', &data[pos..nl]).is_some()
            && memchr::memchr_iter(b'"', &data[pos..nl]).count() % 2 == 1
            && let QuotedEnd::End(e, n) = quoted_end(data, pos)
        {
            // A quoted field with line breaks (RFC 4180): one record over several lines.
            (end, spanned) = (e, n);
        }
        let (line_no, off) = (next_line, offset + pos as u64);
        let mut line = &data[pos..end];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        next_line += spanned;
        pos = end + 1;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let mut fields = RawFields::default();
        let mut n = 0usize;
        if memchr::memchr(b'"', line).is_none() {
            let mut start = 0;
            for i in memchr::memchr_iter(layout.delimiter, line).chain(std::iter::once(line.len()))
            {
                assign(layout, &mut fields, n, &line[start..i]);
                n += 1;
                start = i + 1;
            }
        } else {
            if !split_quoted(
                line,
                layout.delimiter,
                &mut scratch.buf,
                &mut scratch.ranges,
            ) {
                sink.reject(line_no, off, "unbalanced quote".into(), line);
                continue;
            }
            n = scratch.ranges.len();
            for (k, r) in scratch.ranges.iter().enumerate() {
                assign(layout, &mut fields, k, &scratch.buf[r.0..r.1]);
            }
        }
        emit_row(&fields, n, ncols, (line_no, off, line), sink);
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Collect;
    use crate::model::{AlertCode, DeviceId};

    fn run(text: &str, map: &ColumnMap) -> Collect {
        let (header, body) = text.split_at(text.find('\n').unwrap() + 1);
        let layout = CsvLayout::from_header(header.as_bytes(), map).unwrap();
        let mut c = Collect::default();
        decode(
            &layout,
            body.as_bytes(),
            2,
            header.len() as u64,
            &mut CsvScratch::default(),
            &mut c,
        );
        c
    }

    #[test]
    fn header_aliases_and_quoting() {
        let c = run(
            "AlertCode;DeviceID;Time Stamp;Note\n81B8;00-DB-12-34-56-78-90-A0;2024-01-01T10:00:00Z;x\n\"8F35\";\"00db1234567890a1\";2024-01-01T11:00:00Z;\"a;\"\"b\"\"\"\n",
            &ColumnMap::default(),
        );
        assert!(c.rejects.is_empty(), "{:?}", c.rejects);
        assert_eq!(c.events.len(), 2);
        assert_eq!(c.events[0].code, Some(AlertCode::device(0x81B8)));
        assert_eq!(c.events[1].device, Some(DeviceId(0x00DB_1234_5678_90A1)));
    }

    #[test]
    fn explicit_mapping_wins() {
        let map: ColumnMap = "code=Kind,device=Meter".parse().unwrap();
        let c = run(
            "Kind,Meter,timestamp\n8F3F,00-DB-12-34-56-78-90-A0,2024-01-01\n",
            &map,
        );
        assert_eq!(c.events.len(), 1);
    }

    #[test]
    fn bad_rows_are_rejected_with_line_and_reason() {
        let c = run(
            "timestamp,device_id,alert_code\n2024-01-01T00:00:00Z,00-DB-12-34-56-78-90-A0,81B8\n2024-01-01T00:00:00Z,00-DB-12-34-56-78-90-A0,ZZZZ\nnot-a-time,00-DB-12-34-56-78-90-A0,81B8\n2024-01-01T00:00:00Z,bad,81B8\n2024-01-01T00:00:00Z,00-DB-12-34-56-78-90-A0\n\"unterminated,x,y\n2024-01-02T00:00:00Z,00-DB-12-34-56-78-90-A0,8F35\n",
            &ColumnMap::default(),
        );
        assert_eq!(c.events.len(), 2);
        let lines: Vec<u64> = c.rejects.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7]);
        assert!(c.rejects[0].1.contains("invalid alert code `ZZZZ`"));
        assert!(c.rejects[1].1.contains("invalid timestamp"));
        assert!(c.rejects[2].1.contains("invalid device id `bad`"));
        assert!(c.rejects[3].1.contains("expected 3 fields"));
        assert!(c.rejects[4].1.contains("unbalanced quote"));
    }

    #[test]
    fn missing_column_error_teaches() {
        let e = CsvLayout::from_header(b"when,who,what\n", &ColumnMap::default()).unwrap_err();
        assert!(e.contains("no column for `timestamp`"), "{e}");
        assert!(e.contains("columns are: when, who, what"), "{e}");
        assert!(e.contains("--columns timestamp=NAME"), "{e}");
    }

    #[test]
    fn quoted_fields_may_hold_line_breaks() {
        let c = run(
            "timestamp,device_id,alert_code,note\n2024-01-01T00:00:00Z,00-DB-12-34-56-78-90-A0,81B8,\"two\r\nlines, \"\"quoted\"\"\"\n\"open,x,y,z\n2024-01-02T00:00:00Z,00-DB-12-34-56-78-90-A0,8F35,plain\n",
            &ColumnMap::default(),
        );
        assert_eq!(c.events.len(), 2, "{:?}", c.rejects);
        let lines: Vec<u64> = c.rejects.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![4], "the unbalanced quote is line 4 alone");
        assert!(c.rejects[0].1.contains("unbalanced quote"));
    }

    #[test]
    fn a_duplicate_header_column_is_named() {
        let e = CsvLayout::from_header(
            b"timestamp,device_id,alert_code,Alert_Code\n",
            &ColumnMap::default(),
        )
        .unwrap_err();
        assert!(e.contains("`Alert_Code` twice (columns 3 and 4)"), "{e}");
    }
}
