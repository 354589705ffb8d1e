//! Cutting a byte stream into chunks that end on record boundaries.
//!
//! A chunk is a few MiB: big enough that per-chunk overhead vanishes, small enough that two
//! workers share one large file. Lines are the records of CSV and JSON lines; DUIS XML
//! documents end at the close of their root element or before the next `<?xml` declaration.
//! A record longer than the limit is not buffered without end: its head goes to a worker as an
//! oversized chunk (a reject) and the rest is skipped up to the next boundary.

use memchr::memmem;
use std::io::{self, Read};

/// Where a record may end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    Line,
    /// CSV records: lines, except that a quoted field may hold line breaks (RFC 4180).
    CsvRecord,
    XmlDocument,
}

/// Lines a quoted CSV field may span: an unbalanced quote is then one bad line, not the rest
/// of the file (and finding record ends stays linear).
pub const MAX_QUOTED_LINES: u64 = 32;

/// Where a CSV record that opens a quote on its first line ends.
#[derive(Debug, PartialEq, Eq)]
pub enum QuotedEnd {
    /// At this newline (or the end of the data), after this many lines.
    End(usize, u64),
    /// The data ends inside the quotes.
    Open,
    /// No closing quote within `MAX_QUOTED_LINES`: the first line is a record of its own.
    Abandoned,
}

/// Follows a record starting at `pos` whose quotes are unbalanced on its first line.
pub fn quoted_end(data: &[u8], pos: usize) -> QuotedEnd {
    let mut odd = false;
    let mut at = pos;
    for k in 1..=MAX_QUOTED_LINES {
        let nl = memchr::memchr(b'\n', &data[at..]).map(|i| at + i);
        let end = nl.unwrap_or(data.len());
        odd ^= memchr::memchr_iter(b'"', &data[at..end]).count() % 2 == 1;
        if !odd {
            return QuotedEnd::End(end, k);
        }
        match nl {
            Some(nl) if nl + 1 < data.len() => at = nl + 1,
            _ => return QuotedEnd::Open,
        }
    }
    QuotedEnd::Abandoned
}

/// The offset after the last complete CSV record in `buf`.
fn last_csv_cut(buf: &[u8]) -> Option<usize> {
    if memchr::memchr(b'"', buf).is_none() {
        return memchr::memrchr(b'\n', buf).map(|i| i + 1);
    }
    let (mut pos, mut last) = (0, None);
    while let Some(nl) = memchr::memchr(b'\n', &buf[pos..]).map(|i| pos + i) {
        let next = if memchr::memchr_iter(b'"', &buf[pos..nl]).count() % 2 == 1 {
            match quoted_end(buf, pos) {
                QuotedEnd::End(e, _) if e < buf.len() => e + 1,
                QuotedEnd::End(..) | QuotedEnd::Open => break,
                QuotedEnd::Abandoned => nl + 1,
            }
        } else {
            nl + 1
        };
        last = Some(next);
        pos = next;
    }
    last
}

/// Root elements that end a DUIS document.
const ROOTS: &[&[u8]] = &[b"Response", b"Request", b"S1SPAlert"];

impl Boundary {
    /// The offset just after the last complete record in `buf`, if any.
    pub fn last_cut(self, buf: &[u8]) -> Option<usize> {
        match self {
            Boundary::Line => memchr::memrchr(b'\n', buf).map(|i| i + 1),
            Boundary::CsvRecord => last_csv_cut(buf),
            Boundary::XmlDocument => {
                let decl = memmem::rfind(buf, b"<?xml").filter(|&i| i > 0);
                let end = last_root_end(buf);
                decl.max(end)
            }
        }
    }

    /// The last cut with more than whitespace after it in `buf`: a chunk cut there knows that
    /// another record follows it, so `Chunk::followed` is exact.
    pub fn last_inner_cut(self, buf: &[u8]) -> Option<usize> {
        let t = buf.len()
            - buf
                .iter()
                .rev()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
        match self.last_cut(&buf[..t]) {
            Some(c) if c == t && c > 0 => self.last_cut(&buf[..c - 1]),
            c => c,
        }
    }

    /// The offset where the next record starts after skipping an oversized one.
    pub(crate) fn next_start(self, buf: &[u8]) -> Option<usize> {
        match self {
            Boundary::Line | Boundary::CsvRecord => memchr::memchr(b'\n', buf).map(|i| i + 1),
            Boundary::XmlDocument => memmem::find(buf, b"<?xml").filter(|&i| i > 0),
        }
    }
}

/// The offset after the last `</x:Response>` (or another root end tag) in `buf`.
fn last_root_end(buf: &[u8]) -> Option<usize> {
    memmem::rfind_iter(buf, b"</").find_map(|i| root_end_at(buf, i))
}

/// The offset after the end tag starting at `i` (`</`), if it closes a root element: where
/// the chunker may cut, so the DUIS decoder ends a broken stretch there too (`duis::recover::marks`).
pub fn root_end_at(buf: &[u8], i: usize) -> Option<usize> {
    let rest = &buf[i + 2..];
    let gt = memchr::memchr(b'>', &rest[..rest.len().min(64)])?;
    let name = rest[..gt].trim_ascii_end();
    // No `<` in the name: two places to cut never overlap (`</a<?xml:Response>` is neither).
    (memchr::memchr(b'<', name).is_none() && is_root_name(name)).then_some(i + 2 + gt + 1)
}

/// Whether an element name (qualified, as written) is a DUIS root's: its part after the last
/// `:` is `Response`, `Request` or `S1SPAlert`. Its end tag is a place the chunker may cut, so
/// the decoder never reads a document across one (`duis::decode`).
pub fn is_root_name(name: &[u8]) -> bool {
    let local = match memchr::memrchr(b':', name) {
        Some(c) => &name[c + 1..],
        None => name,
    };
    ROOTS.contains(&local)
}

/// A chunk's bytes: a buffer of its own (streams), or a range of a mapped file.
pub enum ChunkData {
    Owned(Vec<u8>),
    Mapped(std::sync::Arc<super::mapped::Mapped>, usize, usize),
}

impl Default for ChunkData {
    fn default() -> Self {
        ChunkData::Owned(Vec::new())
    }
}

impl std::ops::Deref for ChunkData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ChunkData::Owned(v) => v,
            ChunkData::Mapped(m, a, b) => &m.bytes()[*a..*b],
        }
    }
}

impl std::fmt::Debug for ChunkData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkData({} bytes)", self.len())
    }
}

/// A piece of one source, ending on a record boundary.
#[derive(Debug, Default)]
pub struct Chunk {
    /// Index of the source in the run's list of inputs.
    pub source: usize,
    pub data: ChunkData,
    /// 1-based line number of the first byte of `data`.
    pub first_line: u64,
    /// Byte offset of `data` in the decompressed stream.
    pub offset: u64,
    /// `data` is the head of a record longer than the limit, which was skipped.
    pub oversized: bool,
    /// `data` is a record the stream's end cut short (a truncated gzip, say): why.
    pub cut_short: Option<String>,
    /// More of the source follows, starting with the next record: a record this chunk's end
    /// cuts short was cut short by the next one (an XML document by the next declaration).
    pub followed: bool,
}

/// Reads a stream and hands out chunks. Buffers are passed in so they can be reused.
pub struct Chunker<R> {
    reader: R,
    boundary: Boundary,
    source: usize,
    carry: Vec<u8>,
    line: u64,
    offset: u64,
    eof: bool,
    target: usize,
    max_record: usize,
    /// Bytes of one oversized record skipped before the source is given up.
    max_skip: u64,
    /// A read error met after some data: the data is handed out first, then the error.
    error: Option<io::Error>,
}

/// Bytes of an oversized record kept for the quarantine file.
pub const OVERSIZED_HEAD: usize = 512;

/// A size as a user reads it beside the oversized record's reject ("64 MiB"): whole MiB as
/// such, anything else in bytes.
fn size_text(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

impl<R: Read> Chunker<R> {
    /// `line` and `offset` are where the stream starts (after a CSV header, say).
    pub fn new(reader: R, boundary: Boundary, source: usize, line: u64, offset: u64) -> Self {
        Chunker {
            reader,
            boundary,
            source,
            carry: Vec::new(),
            line,
            offset,
            eof: false,
            target: 4 << 20,
            max_record: 64 << 20,
            max_skip: 256 << 20,
            error: None,
        }
    }

    /// Sets the chunk size and the longest record accepted (tests use tiny values).
    pub fn with_sizes(mut self, target: usize, max_record: usize) -> Self {
        self.target = target.max(1);
        self.max_record = max_record.max(self.target);
        self.max_skip = 64 * self.max_record as u64;
        self
    }

    /// Reads until `buf` holds `upto` bytes or the stream ends.
    ///
    /// Through `read_to_end` on a `Take`, which zeroes only the spare room it is about to
    /// read into, once: resizing `buf` to `upto` before every `read` zeroed the whole
    /// chunk size again for each short read (a decompressor hands out a few hundred KB at a
    /// time), and a 4 MiB memset per source for a short one.
    fn fill(&mut self, buf: &mut Vec<u8>, upto: usize) -> io::Result<()> {
        if buf.len() >= upto || self.eof {
            return Ok(());
        }
        let want = (upto - buf.len()) as u64;
        // `read_to_end` retries `Interrupted` and keeps the bytes read before an error.
        match (&mut self.reader).take(want).read_to_end(buf) {
            Ok(_) if buf.len() < upto => self.eof = true,
            Ok(_) => {}
            Err(e) => {
                // The bytes read so far are still records: keep them, stop reading, and
                // report the error after they are handed out.
                self.error = Some(e);
                self.eof = true;
            }
        }
        Ok(())
    }

    /// The next chunk, reusing `buf`'s allocation; `None` at end of stream.
    pub fn next_chunk(&mut self, mut buf: Vec<u8>) -> io::Result<Option<Chunk>> {
        buf.clear();
        buf.append(&mut self.carry);
        let mut want = self.target;
        loop {
            self.fill(&mut buf, want)?;
            if buf.is_empty() {
                return match self.error.take() {
                    Some(e) => Err(e),
                    None => Ok(None),
                };
            }
            let cut = if self.eof && self.error.is_none() {
                Some(buf.len())
            } else if self.eof {
                // The stream broke: whole records go on, the piece after them is cut short.
                match self.boundary.last_cut(&buf).filter(|&c| c > 0) {
                    Some(c) => Some(c),
                    None if buf.iter().all(|b| b.is_ascii_whitespace()) => {
                        buf.clear();
                        continue;
                    }
                    None => {
                        let why = self.error.as_ref().map(|e| e.to_string());
                        let mut chunk = self.emit(buf, false);
                        chunk.cut_short =
                            why.map(|e| format!("cut short by the end of the stream ({e})"));
                        return Ok(Some(chunk));
                    }
                }
            } else {
                // Not at the very end of what was read: a chunk always knows whether more of
                // the source follows it (`Chunk::followed`), so read on first.
                self.boundary.last_inner_cut(&buf)
            };
            if let Some(cut) = cut.filter(|&c| c > 0) {
                self.carry.extend_from_slice(&buf[cut..]);
                buf.truncate(cut);
                return Ok(Some(self.emit(buf, false)));
            }
            if buf.len() >= self.max_record {
                return self.oversized(buf).map(Some);
            }
            want = buf.len() * 2;
        }
    }

    fn emit(&mut self, data: Vec<u8>, oversized: bool) -> Chunk {
        let lines = memchr::memchr_iter(b'\n', &data).count() as u64;
        let chunk = Chunk {
            source: self.source,
            data: ChunkData::Owned(data),
            first_line: self.line,
            offset: self.offset,
            oversized,
            cut_short: None,
            followed: self.carry.iter().any(|b| !b.is_ascii_whitespace()),
        };
        self.line += lines;
        self.offset += chunk.data.len() as u64;
        chunk
    }

    /// Keeps the head of an oversized record and skips the rest of it.
    fn oversized(&mut self, mut buf: Vec<u8>) -> io::Result<Chunk> {
        let start_line = self.line;
        let start_offset = self.offset;
        let mut skipped = 0u64;
        let mut newlines = 0u64;
        let head = buf[..OVERSIZED_HEAD].to_vec();
        loop {
            // Search from 1 so an XML document start at 0 (the oversized one) is not found again.
            if let Some(next) = self.boundary.next_start(&buf[1..]).map(|i| i + 1) {
                newlines += memchr::memchr_iter(b'\n', &buf[..next]).count() as u64;
                skipped += next as u64;
                self.carry.extend_from_slice(&buf[next..]);
                break;
            }
            newlines += memchr::memchr_iter(b'\n', &buf).count() as u64;
            skipped += buf.len() as u64;
            buf.clear();
            if skipped > self.max_skip && self.error.is_none() {
                // No end in sight: binary data, or a decompression bomb. Stop reading.
                self.error = Some(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "line {start_line}: a record longer than {} with no end in sight (binary data, or a decompression bomb?): the rest of the source is not read",
                        size_text(self.max_skip)
                    ),
                ));
                self.eof = true;
                break;
            }
            self.fill(&mut buf, self.target)?;
            if buf.is_empty() {
                break;
            }
        }
        self.line += newlines;
        self.offset += skipped;
        Ok(Chunk {
            source: self.source,
            data: ChunkData::Owned(head),
            first_line: start_line,
            offset: start_offset,
            oversized: true,
            cut_short: None,
            followed: !self.carry.is_empty() || !self.eof,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(data: &[u8], boundary: Boundary, target: usize, max: usize) -> Vec<Chunk> {
        let mut c = Chunker::new(data, boundary, 0, 1, 0).with_sizes(target, max);
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk(Vec::new()).unwrap() {
            out.push(ch);
        }
        out
    }

    #[test]
    fn lines_are_never_split() {
        let data: Vec<u8> = (0..1000)
            .flat_map(|i| format!("row {i},x\n").into_bytes())
            .collect();
        let cs = chunks(&data, Boundary::Line, 100, 1000);
        assert!(cs.len() > 10);
        let joined: Vec<u8> = cs.iter().flat_map(|c| c.data.to_vec()).collect();
        assert_eq!(joined, data);
        for c in &cs {
            assert!(c.data.ends_with(b"\n"));
            let first = std::str::from_utf8(&c.data)
                .unwrap()
                .lines()
                .next()
                .unwrap();
            assert_eq!(
                first,
                format!("row {},x", c.first_line - 1),
                "first_line is exact"
            );
        }
    }

    #[test]
    fn last_line_without_newline_is_kept() {
        let cs = chunks(b"a\nb\nc", Boundary::Line, 2, 100);
        let joined: Vec<u8> = cs.iter().flat_map(|c| c.data.to_vec()).collect();
        assert_eq!(joined, b"a\nb\nc");
    }

    #[test]
    fn oversized_line_is_cut_and_skipped() {
        let mut data = b"ok 1\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 5000));
        data.extend(b"\nok 3\n");
        let cs = chunks(&data, Boundary::Line, 64, 1024);
        let over: Vec<_> = cs.iter().filter(|c| c.oversized).collect();
        assert_eq!(over.len(), 1);
        assert_eq!(over[0].first_line, 2);
        assert_eq!(over[0].data.len(), OVERSIZED_HEAD);
        let rest: Vec<u8> = cs
            .iter()
            .filter(|c| !c.oversized)
            .flat_map(|c| c.data.to_vec())
            .collect();
        assert_eq!(rest, b"ok 1\nok 3\n");
        let last = cs.last().unwrap();
        assert_eq!(last.first_line, 3);
    }

    #[test]
    fn xml_documents_are_never_split() {
        let doc = |i: usize| {
            format!("<?xml version=\"1.0\"?>\n<sr:Response a=\"{i}\"><sr:Body/></sr:Response>\n")
        };
        let data: String = (0..200).map(doc).collect();
        let cs = chunks(data.as_bytes(), Boundary::XmlDocument, 150, 10_000);
        assert!(cs.len() > 5);
        for c in &cs {
            let s = std::str::from_utf8(&c.data).unwrap();
            assert!(s.starts_with("<?xml"), "{s}");
            assert_eq!(
                s.matches("<?xml").count(),
                s.matches("</sr:Response>").count()
            );
        }
        // Without declarations the root end tag is the boundary; `SMETS1Response` is not a root.
        let data: String = (0..50)
            .map(|i| format!("<Response><SMETS1Response>{i}</SMETS1Response></Response>"))
            .collect();
        let cs = chunks(data.as_bytes(), Boundary::XmlDocument, 100, 10_000);
        for c in &cs {
            assert!(c.data.ends_with(b"</Response>"));
        }
    }

    /// A reader that yields `data`, then fails.
    struct Breaks<'a>(&'a [u8]);
    impl Read for Breaks<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream truncated",
                ));
            }
            let n = out.len().min(self.0.len()).min(7);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_broken_stream_hands_out_its_whole_records_then_the_cut_one_then_the_error() {
        let mut c =
            Chunker::new(Breaks(b"a,1\nb,2\nc,"), Boundary::Line, 0, 1, 0).with_sizes(4, 100);
        let mut good = Vec::new();
        let mut cut = None;
        let err = loop {
            match c.next_chunk(Vec::new()) {
                Ok(Some(ch)) if ch.cut_short.is_some() => {
                    cut = Some((ch.first_line, ch.data.to_vec(), ch.cut_short))
                }
                Ok(Some(ch)) => good.extend_from_slice(&ch.data),
                Ok(None) => panic!("the error is reported"),
                Err(e) => break e,
            }
        };
        assert_eq!(good, b"a,1\nb,2\n");
        let (line, data, why) = cut.unwrap();
        assert_eq!((line, &data[..]), (3, &b"c,"[..]));
        assert!(why.unwrap().contains("stream truncated"));
        assert!(err.to_string().contains("stream truncated"));
    }

    #[test]
    fn an_endless_record_gives_up_the_source() {
        let data = vec![0u8; 200_000];
        let mut c = Chunker::new(&data[..], Boundary::Line, 0, 1, 0).with_sizes(64, 1024);
        let first = c.next_chunk(Vec::new()).unwrap().unwrap();
        assert!(first.oversized);
        let e = c.next_chunk(Vec::new()).unwrap_err();
        assert!(
            e.to_string()
                .contains("line 1: a record longer than 65536 bytes with no end"),
            "{e}"
        );
    }

    #[test]
    fn csv_records_with_quoted_line_breaks_are_never_split() {
        let data: Vec<u8> = (0..300)
            .flat_map(|i| format!("{i},\"two\nlines, \"\"quoted\"\"\"\n").into_bytes())
            .collect();
        let cs = chunks(&data, Boundary::CsvRecord, 50, 1000);
        assert!(cs.len() > 10);
        for c in &cs {
            let s = std::str::from_utf8(&c.data).unwrap();
            assert_eq!(s.matches('"').count() % 2, 0, "{s}");
            assert_eq!(s.lines().count() as u64 % 2, 0);
            assert!(
                s.starts_with(&format!("{},", (c.first_line - 1) / 2)),
                "{s}"
            );
        }
        // An unbalanced quote is one line, not the rest of the stream.
        let mut bad = b"\"open,x\n".to_vec();
        bad.extend((0..100).flat_map(|i| format!("{i},y\n").into_bytes()));
        assert_eq!(last_csv_cut(&bad), Some(bad.len()));
        assert_eq!(quoted_end(&bad, 0), QuotedEnd::Abandoned);
        assert_eq!(quoted_end(b"\"a\nb\",c\nd", 0), QuotedEnd::End(7, 2));
        assert_eq!(last_csv_cut(b"1,x\n\"a\nb"), Some(4));
    }
}
