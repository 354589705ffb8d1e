//! The framing of the receiver's log segments, shared by the receiver (which writes and
//! recovers them) and the batch sources (which read them as DUIS XML).
//!
//! A segment (`segment-00000001.fwlog`) starts with the magic `FWL\x01`; a record is its length
//! (u32, little-endian), the CRC-32 of its bytes, and the bytes (DUIS XML as received).
//!
//! Reading never trusts a length: a record longer than `MAX_RECORD` (or empty, or not starting
//! like a DUIS body) is not a record, and nothing is allocated for it. After a damaged record,
//! reading resumes at the next byte offset where a whole record with a matching CRC starts
//! (resync), so one bad record never hides the good ones after it; the bytes skipped are counted.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub const LOG_MAGIC: &[u8; 4] = b"FWL\x01";
pub const HEADER: usize = 8;
/// The longest record a segment may hold (the receiver's `--max-body` is far below it).
pub const MAX_RECORD: usize = 64 << 20;

pub fn segment_name(n: u64) -> String {
    format!("segment-{n:08}.fwlog")
}

/// A record's header: its length and the CRC-32 of its bytes.
pub fn frame_header(body: &[u8]) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    h
}

/// The segments of a log directory, in order.
pub fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(n) = name
            .strip_prefix("segment-")
            .and_then(|r| r.strip_suffix(".fwlog"))
            .and_then(|n| n.parse().ok())
        {
            v.push((n, p));
        }
    }
    v.sort();
    Ok(v)
}

/// What starts at a position of a segment's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole record of this many body bytes with a matching CRC.
    Record(usize),
    /// Not a record (bad length, bad start, bad CRC).
    Bad,
    /// Could be a record, but the bytes end first: `need` bytes from the position decide it.
    Short { need: usize },
}

/// Whether a body could be one the receiver stored: DUIS XML (`<`, perhaps after a BOM or
/// whitespace). A cheap test that spares the CRC of almost every false start while resyncing.
fn plausible_start(b: u8) -> bool {
    matches!(b, b'<' | b' ' | b'\t' | b'\r' | b'\n' | 0xEF)
}

/// Reads the frame at the start of `data` (no allocation, whatever the length field says).
pub fn frame_at(data: &[u8]) -> Frame {
    let Some(h) = data.get(..HEADER) else {
        return Frame::Short { need: HEADER + 1 };
    };
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len == 0 || len > MAX_RECORD {
        return Frame::Bad;
    }
    match data.get(HEADER) {
        Some(&b) if !plausible_start(b) => return Frame::Bad,
        None => return Frame::Short { need: HEADER + 1 },
        _ => {}
    }
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    match data.get(HEADER..HEADER + len) {
        Some(body) if crc32fast::hash(body) == crc => Frame::Record(len),
        Some(_) => Frame::Bad,
        None => Frame::Short { need: HEADER + len },
    }
}

/// The record starting at `pos`, and where the next starts; `None` if cut short or corrupt.
pub fn record_at(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    match frame_at(data.get(pos..)?) {
        Frame::Record(len) => Some((&data[pos + HEADER..pos + HEADER + len], pos + HEADER + len)),
        _ => None,
    }
}

/// A stretch of a segment that holds no record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset in the segment file (magic included) where it starts.
    pub offset: u64,
    pub bytes: u64,
    /// Whether it runs to the end of the segment (a torn tail, if the segment is the last).
    pub at_end: bool,
}

/// One step through a segment's bytes held in memory (recovery).
pub enum Item<'a> {
    Record(&'a [u8]),
    Damaged(Damage),
}

/// The records and damaged stretches of a whole segment (`data` includes the magic).
pub fn items(data: &[u8]) -> impl Iterator<Item = Item<'_>> {
    let mut pos = LOG_MAGIC.len().min(data.len());
    std::iter::from_fn(move || {
        if pos >= data.len() {
            return None;
        }
        if let Some((body, next)) = record_at(data, pos) {
            pos = next;
            return Some(Item::Record(body));
        }
        let start = pos;
        pos += 1;
        while pos < data.len() && !matches!(frame_at(&data[pos..]), Frame::Record(_)) {
            pos += 1;
        }
        Some(Item::Damaged(Damage {
            offset: start as u64,
            bytes: (pos - start) as u64,
            at_end: pos == data.len(),
        }))
    })
}

/// A segment stream as the concatenated records (each followed by a newline), for the batch
/// commands. Damaged stretches are skipped (reading resumes at the next whole record); at the
/// end of the stream, if any were, the read fails naming the first one's byte offset, so the
/// run reports the damage after counting every record it could read.
pub struct Unframe<R> {
    inner: R,
    /// Raw bytes read and not yet consumed: `win[at_raw..]`, starting at file offset `base`.
    win: Vec<u8>,
    at_raw: usize,
    base: u64,
    eof: bool,
    out: Vec<u8>,
    at: usize,
    done: bool,
    damage: Vec<Damage>,
    damage_reported: bool,
}

impl<R: Read> Unframe<R> {
    /// `inner` is positioned just after the magic.
    pub fn new(inner: R) -> Unframe<R> {
        Unframe {
            inner,
            win: Vec::new(),
            at_raw: 0,
            base: LOG_MAGIC.len() as u64,
            eof: false,
            out: Vec::new(),
            at: 0,
            done: false,
            damage: Vec::new(),
            damage_reported: false,
        }
    }

    /// The damaged stretches found so far.
    pub fn damage(&self) -> &[Damage] {
        &self.damage
    }

    /// Makes at least `need` unconsumed bytes available (fewer at the end of the stream).
    fn want(&mut self, need: usize) -> io::Result<()> {
        if self.win.len() - self.at_raw >= need || self.eof {
            return Ok(());
        }
        if self.at_raw > 0 {
            self.win.drain(..self.at_raw);
            self.base += self.at_raw as u64;
            self.at_raw = 0;
        }
        while self.win.len() < need && !self.eof {
            // Grow only as bytes arrive: `need` may come from an untrusted length field. A
            // `Take` read zeroes only the room it reads into (resizing by the step before
            // each read zeroed 64 KiB per read, however few bytes came).
            const STEP: u64 = 64 << 10;
            let start = self.win.len();
            let got = (&mut self.inner).take(STEP).read_to_end(&mut self.win);
            // The bytes read before an error stay in the window; the error is reported now.
            got?;
            self.eof = ((self.win.len() - start) as u64) < STEP;
        }
        Ok(())
    }

    fn note_damage(&mut self, offset: u64, bytes: u64) {
        match self.damage.last_mut() {
            Some(d) if d.offset + d.bytes == offset => d.bytes += bytes,
            _ => self.damage.push(Damage {
                offset,
                bytes,
                at_end: false,
            }),
        }
    }

    fn next_record(&mut self) -> io::Result<bool> {
        let mut need = HEADER + 1;
        loop {
            self.want(need)?;
            let rest = &self.win[self.at_raw..];
            if rest.is_empty() {
                return Ok(false);
            }
            match frame_at(rest) {
                Frame::Record(len) => {
                    self.out.clear();
                    self.out.extend_from_slice(&rest[HEADER..HEADER + len]);
                    self.out.push(b'\n');
                    self.at = 0;
                    self.at_raw += HEADER + len;
                    return Ok(true);
                }
                Frame::Short { need: n } if !self.eof && n > rest.len() => need = n,
                _ => {
                    // Not a record here: skip a byte and look again (resync).
                    let offset = self.base + self.at_raw as u64;
                    self.note_damage(offset, 1);
                    self.at_raw += 1;
                    need = HEADER + 1;
                }
            }
        }
    }

    fn damage_error(&self) -> io::Error {
        let first = self.damage[0];
        let bytes: u64 = self.damage.iter().map(|d| d.bytes).sum();
        let end = self.base + self.at_raw as u64;
        let torn = self.damage.len() == 1 && first.offset + first.bytes == end;
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "damaged fleetwatch log: {} damaged stretch(es), {bytes} bytes skipped, the first at byte {}{}; every whole record around them was read",
                self.damage.len(),
                first.offset,
                if torn {
                    " (a record cut short at the end: a torn write)"
                } else {
                    ""
                }
            ),
        )
    }
}

impl<R: Read> Read for Unframe<R> {
    /// Fills `out` with as many records as fit (a reader that zeroes its buffer before each
    /// read would otherwise pay for the whole buffer per record). Damage is reported once, as
    /// an error after every whole record was handed out.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            if self.at >= self.out.len() {
                if self.done {
                    break;
                }
                if !self.next_record()? {
                    self.done = true;
                    if n == 0 && !self.damage.is_empty() {
                        self.damage_reported = true;
                        return Err(self.damage_error());
                    }
                    break;
                }
                continue;
            }
            let k = (out.len() - n).min(self.out.len() - self.at);
            out[n..n + k].copy_from_slice(&self.out[self.at..self.at + k]);
            self.at += k;
            n += k;
        }
        if n == 0 && self.done && !self.damage.is_empty() && !self.damage_reported {
            self.damage_reported = true;
            return Err(self.damage_error());
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(bodies: &[&[u8]]) -> Vec<u8> {
        let mut v = LOG_MAGIC.to_vec();
        for b in bodies {
            v.extend_from_slice(&frame_header(b));
            v.extend_from_slice(b);
        }
        v
    }

    fn unframe(data: &[u8]) -> (String, Option<String>) {
        let mut u = Unframe::new(&data[4..]);
        let mut s = Vec::new();
        let e = u.read_to_end(&mut s).err().map(|e| e.to_string());
        (String::from_utf8(s).unwrap(), e)
    }

    #[test]
    fn a_huge_length_allocates_nothing_and_resyncs() {
        let mut data = seg(&[b"<a/>"]);
        let bad_at = data.len();
        data.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4, b'<']);
        data.extend_from_slice(&seg(&[b"<b/>", b"<c/>"])[4..]);
        let (s, e) = unframe(&data);
        assert_eq!(s, "<a/>\n<b/>\n<c/>\n");
        let e = e.expect("damage is an error at the end");
        assert!(e.contains(&format!("at byte {bad_at}")), "{e}");
        assert!(e.contains("9 bytes skipped"), "{e}");
        let items: Vec<_> = items(&data)
            .map(|i| match i {
                Item::Record(b) => String::from_utf8_lossy(b).into_owned(),
                Item::Damaged(d) => format!("damage {} {} {}", d.offset, d.bytes, d.at_end),
            })
            .collect();
        assert_eq!(
            items,
            vec![
                "<a/>".to_string(),
                format!("damage {bad_at} 9 false"),
                "<b/>".into(),
                "<c/>".into()
            ]
        );
    }

    /// A false length under the record limit (found by the `segment` fuzz target): the reader
    /// grows its window only as bytes arrive, never to the length a damaged header claims.
    #[test]
    fn a_false_length_under_the_limit_allocates_only_what_was_read() {
        let mut data = LOG_MAGIC.to_vec();
        data.extend_from_slice(&(60u32 << 20).to_le_bytes());
        data.extend_from_slice(&[1, 2, 3, 4, b'<']);
        data.extend_from_slice(&seg(&[b"<b/>"])[4..]);
        let mut u = Unframe::new(&data[4..]);
        let mut s = Vec::new();
        let e = u.read_to_end(&mut s);
        assert_eq!(String::from_utf8(s).unwrap(), "<b/>\n");
        assert!(e.is_err(), "the damage is reported");
        assert!(u.win.capacity() < 1 << 20, "{} bytes", u.win.capacity());
    }

    #[test]
    fn a_bad_checksum_in_the_middle_hides_nothing_after_it() {
        let mut data = seg(&[b"<a/>", b"<b>two</b>", b"<c/>"]);
        let second = 4 + HEADER + 4;
        data[second + HEADER + 2] ^= 0x20;
        let (s, e) = unframe(&data);
        assert_eq!(s, "<a/>\n<c/>\n");
        assert!(e.unwrap().contains(&format!("the first at byte {second}")));
    }

    #[test]
    fn a_torn_tail_is_named() {
        let mut data = seg(&[b"<a/>"]);
        data.extend_from_slice(&[20, 0, 0, 0, 1, 2]);
        let (s, e) = unframe(&data);
        assert_eq!(s, "<a/>\n");
        assert!(e.unwrap().contains("torn write"));
        assert_eq!(unframe(&seg(&[b"<a/>"])), ("<a/>\n".to_string(), None));
        // Zeros (a crash can leave a file's tail zero-filled) are not empty records.
        let mut z = seg(&[b"<a/>"]);
        z.extend_from_slice(&[0; 64]);
        assert_eq!(unframe(&z).0, "<a/>\n");
        assert!(unframe(&z).1.is_some());
    }
}
