//! CSV exports: a header row names the columns; the delimiter (`,` `;` tab `|`) is taken from it.
//!
//! Columns are found by alias (see `Field::aliases`) or by the user's `--columns` mapping.
//! The hot path splits unquoted lines with `memchr`; a line holding a quote goes through a
//! small RFC 4180 parser into a reused scratch buffer. Extra columns are ignored.

pub use super::csv_layout::{CsvLayout, sniff_delimiter};
use super::csv_layout::{assign, emit_row, split_quoted};
use super::{RawFields, Sink};
use crate::source::{QuotedEnd, quoted_end};

/// Reusable buffers for quoted lines.
#[derive(Default)]
pub struct CsvScratch {
    buf: Vec<u8>,
    ranges: Vec<(usize, usize)>,
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
    if let Some((start, line)) =
        super::csv_plain::decode_until_quote(layout, data, first_line, offset, sink)
    {
        let rest = &data[start..];
        decode_general(layout, rest, line, offset + start as u64, scratch, sink);
    }
}

/// Decodes a chunk line by line, quotes and all (`decode` takes a faster path up to the first
/// quote).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Collect, ColumnMap};
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
