//! The framing of the receiver's log segments, shared by the receiver (which writes and
//! recovers them) and the batch sources (which read them as DUIS XML).
//!
//! A segment (`segment-00000001.fwlog`) starts with the magic `FWL\x01`; a record is its length
//! (u32, little-endian), the CRC-32 of its bytes, and the bytes (DUIS XML as received).

use std::io::{self, Read};
use std::path::{Path, PathBuf};

pub const LOG_MAGIC: &[u8; 4] = b"FWL\x01";
pub const HEADER: usize = 8;

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

/// The record starting at `pos`, and where the next starts; `None` if cut short or corrupt.
pub fn record_at(data: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let h = data.get(pos..pos + HEADER)?;
    let len = u32::from_le_bytes(h[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(h[4..8].try_into().ok()?);
    let body = data.get(pos + HEADER..pos + HEADER + len)?;
    (crc32fast::hash(body) == crc).then_some((body, pos + HEADER + len))
}

/// A segment stream as the concatenated records (each followed by a newline), for the batch
/// commands. A torn tail ends the stream early, with a warning.
pub struct Unframe<R> {
    inner: R,
    buf: Vec<u8>,
    at: usize,
    done: bool,
}

impl<R: Read> Unframe<R> {
    pub fn new(inner: R) -> Unframe<R> {
        Unframe {
            inner,
            buf: Vec::new(),
            at: 0,
            done: false,
        }
    }

    fn next_record(&mut self) -> io::Result<bool> {
        let mut h = [0u8; HEADER];
        let n = read_full(&mut self.inner, &mut h)?;
        if n == 0 {
            return Ok(false);
        }
        let torn = |what: &str| {
            eprintln!(
                "warning: fleetwatch log: {what} at the end (a torn write from a crash): ignored"
            );
            Ok(false)
        };
        if n < HEADER {
            return torn("a record header cut short");
        }
        let len = u32::from_le_bytes(h[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(h[4..8].try_into().expect("4 bytes"));
        self.buf.clear();
        self.buf.resize(len, 0);
        if read_full(&mut self.inner, &mut self.buf)? < len {
            return torn("a record cut short");
        }
        if crc32fast::hash(&self.buf) != crc {
            return torn("a record failing its checksum");
        }
        self.buf.push(b'\n');
        self.at = 0;
        Ok(true)
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read> Read for Unframe<R> {
    /// Fills `out` with as many records as fit (a reader that zeroes its buffer before each
    /// read would otherwise pay for the whole buffer per record).
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() {
            if self.at >= self.buf.len() {
                if self.done || !self.next_record()? {
                    self.done = true;
                    break;
                }
                continue;
            }
            let k = (out.len() - n).min(self.buf.len() - self.at);
            out[n..n + k].copy_from_slice(&self.buf[self.at..self.at + k]);
            self.at += k;
            n += k;
        }
        Ok(n)
    }
}
