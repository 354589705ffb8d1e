//! JSON lines: one flat object per line, keys named as CSV columns are (see `Field::aliases`).
//!
//! A small hand-written scanner instead of a DOM: values of known keys are borrowed from the
//! line (or, when they hold escapes, unescaped into a reused scratch buffer); nested values
//! and unknown keys are skipped. Anything that is not one well-formed object is a reject.

use super::{Field, RawFields, Sink, event_from_fields, lines};

#[derive(Clone, Copy)]
enum Src {
    Line(usize, usize),
    Scratch(usize, usize),
}

/// Reused buffers for escaped strings.
#[derive(Default)]
pub struct JsonScratch {
    buf: Vec<u8>,
}

struct Scan<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn expect(&mut self, b: u8) -> Result<(), String> {
        self.ws();
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at column {}", b as char, self.i + 1))
        }
    }

    /// Scans a string starting at the opening quote. Returns its raw content range and whether
    /// it holds escapes.
    fn string(&mut self) -> Result<(usize, usize, bool), String> {
        self.i += 1;
        let start = self.i;
        let mut escaped = false;
        loop {
            match memchr::memchr2(b'"', b'\\', &self.s[self.i..]) {
                None => return Err("unterminated string".into()),
                Some(k) => {
                    self.i += k;
                    if self.s[self.i] == b'\\' {
                        escaped = true;
                        self.i += 2;
                        if self.i > self.s.len() {
                            return Err("unterminated string".into());
                        }
                    } else {
                        let end = self.i;
                        self.i += 1;
                        return Ok((start, end, escaped));
                    }
                }
            }
        }
    }

    /// Skips a nested object or array.
    fn skip_nested(&mut self) -> Result<(), String> {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        Err("unterminated nested value".into())
    }

    /// A bare token: number, true, false or null.
    fn token(&mut self) -> Result<(usize, usize), String> {
        let start = self.i;
        while let Some(b) = self.peek() {
            if matches!(b, b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n') {
                break;
            }
            self.i += 1;
        }
        let t = &self.s[start..self.i];
        let ok = matches!(t, b"true" | b"false" | b"null")
            || (!t.is_empty()
                && t.iter()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')));
        if ok {
            Ok((start, self.i))
        } else {
            Err(format!("invalid value at column {}", start + 1))
        }
    }
}

/// Unescapes a JSON string body into `out`.
fn unescape(s: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let e = *s.get(i + 1).ok_or("bad escape")?;
        i += 2;
        match e {
            b'"' | b'\\' | b'/' => out.push(e),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let hex = s.get(i..i + 4).ok_or("bad \\u escape")?;
                let v = u32::from_str_radix(
                    std::str::from_utf8(hex).map_err(|_| "bad \\u escape")?,
                    16,
                )
                .map_err(|_| "bad \\u escape")?;
                i += 4;
                let c = char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
            _ => return Err(format!("bad escape `\\{}`", e as char)),
        }
    }
    Ok(())
}

/// Reads one line as a flat object, filling the fields it knows.
fn parse_line<'a>(line: &'a [u8], scratch: &'a mut Vec<u8>) -> Result<RawFields<'a>, String> {
    scratch.clear();
    let mut srcs: [Option<Src>; Field::COUNT] = [None; Field::COUNT];
    let mut sc = Scan { s: line, i: 0 };
    sc.expect(b'{')?;
    sc.ws();
    if sc.peek() == Some(b'}') {
        sc.i += 1;
    } else {
        loop {
            sc.ws();
            if sc.peek() != Some(b'"') {
                return Err(format!("expected a key at column {}", sc.i + 1));
            }
            let (ks, ke, kesc) = sc.string()?;
            let field = if kesc {
                let mut k = Vec::new();
                unescape(&line[ks..ke], &mut k)?;
                Field::from_name(&k)
            } else {
                Field::from_name(&line[ks..ke])
            };
            sc.expect(b':')?;
            sc.ws();
            let value = match sc.peek() {
                Some(b'"') => {
                    let (s, e, esc) = sc.string()?;
                    if esc && field.is_some() {
                        let at = scratch.len();
                        unescape(&line[s..e], scratch)?;
                        Some(Src::Scratch(at, scratch.len()))
                    } else {
                        Some(Src::Line(s, e))
                    }
                }
                Some(b'{') | Some(b'[') => {
                    sc.skip_nested()?;
                    if let Some(f) = field {
                        return Err(format!(
                            "`{}` must be a string or number, not a nested value",
                            f.key()
                        ));
                    }
                    None
                }
                Some(_) => {
                    let (s, e) = sc.token()?;
                    (&line[s..e] != b"null").then_some(Src::Line(s, e))
                }
                None => return Err("unexpected end of line".into()),
            };
            if let (Some(f), Some(v)) = (field, value) {
                srcs[f as usize].get_or_insert(v);
            }
            sc.ws();
            match sc.peek() {
                Some(b',') => sc.i += 1,
                Some(b'}') => {
                    sc.i += 1;
                    break;
                }
                _ => return Err(format!("expected `,` or `}}` at column {}", sc.i + 1)),
            }
        }
    }
    sc.ws();
    if sc.i != line.len() {
        return Err(format!(
            "unexpected text after the object at column {}",
            sc.i + 1
        ));
    }
    let scratch: &'a [u8] = scratch;
    let mut fields = RawFields::default();
    for f in Field::ALL {
        if let Some(src) = srcs[f as usize] {
            fields.set(
                f,
                match src {
                    Src::Line(s, e) => &line[s..e],
                    Src::Scratch(s, e) => &scratch[s..e],
                },
            );
        }
    }
    Ok(fields)
}

/// Decodes the lines of one chunk.
pub fn decode(
    data: &[u8],
    first_line: u64,
    offset: u64,
    scratch: &mut JsonScratch,
    sink: &mut impl Sink,
) {
    for (line_no, off, line) in lines(data, first_line, offset) {
        let line = if line_no == 1 {
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
        } else {
            line
        };
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match parse_line(line, &mut scratch.buf).and_then(|f| event_from_fields(&f)) {
            Ok(ev) => sink.event(&ev),
            Err(reason) => sink.reject(line_no, off, reason, line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Collect;
    use crate::model::{AlertCode, DeviceId};
    use proptest::prelude::*;

    fn run(text: &str) -> Collect {
        let mut c = Collect::default();
        decode(text.as_bytes(), 1, 0, &mut JsonScratch::default(), &mut c);
        c
    }

    #[test]
    fn reads_flat_objects_with_aliases_and_escapes() {
        let c = run(concat!(
            "{\"timestamp\":\"2024-01-01T00:00:00Z\",\"device_id\":\"00-DB-12-34-56-78-90-A0\",\"alert_code\":\"81B8\"}\n",
            "{ \"DeviceID\" : \"00db1234567890a1\", \"AlertCode\": \"8F\\u0033\\u0035\", \"time\": \"2024-01-01T01:00:00+00:00\", \"extra\": {\"a\": [1, \"}\"]}, \"n\": null }\r\n",
            "{\"ts\":\"2024-01-01T02:00:00Z\",\"eui\":\"00-DB-12-34-56-78-90-A2\",\"code\":8135,\"count\":3}\n",
        ));
        assert!(c.rejects.is_empty(), "{:?}", c.rejects);
        assert_eq!(c.events.len(), 3);
        assert_eq!(c.events[1].code, Some(AlertCode::device(0x8F35)));
        assert_eq!(c.events[1].device, Some(DeviceId(0x00DB_1234_5678_90A1)));
        assert_eq!(c.events[2].code, Some(AlertCode::device(0x8135)));
        assert_eq!(c.events[2].count, 3);
    }

    #[test]
    fn malformed_lines_are_rejected() {
        let good = "{\"timestamp\":\"2024-01-01T00:00:00Z\",\"device_id\":\"00-DB-12-34-56-78-90-A0\",\"alert_code\":\"81B8\"}";
        let text = [
            good,
            "{\"timestamp\":\"2024-01-01T00:00:00Z\",\"device_id\":\"00-DB-12-34-56-78-90-A0\"",
            "not json",
            "{\"timestamp\":\"2024-01-01T00:00:00Z\",\"device_id\":\"00-DB-12-34-56-78-90-A0\",\"alert_code\":{\"x\":1}}",
            "{\"timestamp\":\"2024-01-01T00:00:00Z\",\"device_id\":\"00-DB-12-34-56-78-90-A0\",\"alert_code\":\"81B8\"} trailing",
            "{\"timestamp\":\"2024-01-01T00:00:00Z\",\"device_id\":\"00-DB-12-34-56-78-90-A0\"}",
            good,
        ]
        .join("\n");
        let c = run(&text);
        assert_eq!(c.events.len(), 2);
        let lines: Vec<u64> = c.rejects.iter().map(|r| r.0).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        assert!(c.rejects[4].1.contains("missing alert code"));
    }

    proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut c = Collect::default();
            decode(&line, 1, 0, &mut JsonScratch::default(), &mut c);
        }

        #[test]
        fn never_panics_on_json_like(line in "[{}\\[\\]\":,a-z0-9\\\\ ]{0,80}") {
            let mut c = Collect::default();
            decode(line.as_bytes(), 1, 0, &mut JsonScratch::default(), &mut c);
        }
    }
}
