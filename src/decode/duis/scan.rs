//! The scanner: reads the plain XML adapters write (tags, attributes, text) with `memchr`
//! over the borrowed chunk and a namespace table of its own, and gives up, without a word, on
//! every document it is not sure of (comments, CDATA, references, DTDs, anything malformed),
//! which the reference reader (`recover`) then reads from the same place. A document whose
//! markup equals the last one's byte for byte is read through that template (`Shape`).

use super::recover::resumable;
use super::{Doc, Field, MAX_DEPTH, NS_DUIS, NS_MMC, Walk};

/// What the scanner made of the bytes from where it started.
pub(super) enum Scanned {
    /// A complete document at `start..end`, read into the scanner's `walk`.
    Doc { start: usize, end: usize },
    /// Only whitespace is left.
    Rest,
    /// Something the scanner does not read: the reference reader takes it from the start.
    GiveUp,
}

/// XML whitespace as quick-xml knows it (names end there; attributes are separated by it).
#[inline]
fn xml_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Byte classes for attribute keys: 0 continues a key, anything else ends it.
static KEY_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i <= 0x20 {
        t[i] = 1;
        i += 1;
    }
    t[b'>' as usize] = 1;
    t[b'/' as usize] = 1;
    t[b'"' as usize] = 2;
    t[b'\'' as usize] = 2;
    t[b'<' as usize] = 2;
    t[b'=' as usize] = 2;
    t[b'&' as usize] = 2;
    t
};

const NS_XML: &[u8] = b"http://www.w3.org/XML/1998/namespace";
const NS_XMLNS: &[u8] = b"http://www.w3.org/2000/xmlns/";

/// A namespace binding in scope: prefix (empty for the default namespace), whether it is
/// the DUIS or MMC namespace, and the depth of the element that declared it. `key` holds
/// the prefix's first eight bytes, so most look-ups compare one integer.
#[derive(Clone, Copy)]
struct Binding<'a> {
    key: u64,
    prefix: &'a [u8],
    accepted: bool,
    level: usize,
}

/// The first eight bytes of a prefix as an integer (zero-padded).
#[inline]
fn prefix_key(p: &[u8]) -> u64 {
    let mut k = 0u64;
    for (i, &b) in p.iter().take(8).enumerate() {
        k |= (b as u64) << (8 * i);
    }
    k
}

/// Bit masks of one 64-byte block of the chunk (bit `k` is byte `k` of the block).
#[derive(Clone, Copy, Default)]
struct Block {
    /// `<`: where tags start (and text ends).
    lt: u64,
    /// `&` or a byte that is not ASCII: the document needs a closer look.
    odd: u64,
}

/// The masks of `b` (64 bytes).
#[cfg(target_arch = "x86_64")]
#[inline]
fn block_masks(b: &[u8; 64]) -> Block {
    use std::arch::x86_64::*;
    let (mut lt, mut odd) = (0u64, 0u64);
    // SAFETY: SSE2 is part of every x86_64 target; each load reads 16 of the 64 bytes.
    unsafe {
        let (lt_c, amp_c) = (_mm_set1_epi8(b'<' as i8), _mm_set1_epi8(b'&' as i8));
        for k in 0..4 {
            let v = _mm_loadu_si128(b.as_ptr().add(16 * k) as *const __m128i);
            let l = _mm_movemask_epi8(_mm_cmpeq_epi8(v, lt_c)) as u16 as u64;
            // The high bit of each byte: set for `&` (0xFF) and for bytes that are not ASCII.
            let o = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, amp_c), v)) as u16 as u64;
            lt |= l << (16 * k);
            odd |= o << (16 * k);
        }
    }
    Block { lt, odd }
}

#[cfg(not(target_arch = "x86_64"))]
fn block_masks(b: &[u8; 64]) -> Block {
    let mut m = Block::default();
    for (k, &x) in b.iter().enumerate() {
        m.lt |= ((x == b'<') as u64) << k;
        m.odd |= ((x == b'&' || x >= 0x80) as u64) << k;
    }
    m
}

/// Where a tag name starting at `p` ends (the first byte up to 0x20, `>`, `/`, a quote or
/// `<`) and where its first `:` is, if before that; `None` if the data ends first.
#[inline]
fn name_end(data: &[u8], p: usize) -> Option<(usize, Option<usize>)> {
    #[inline]
    fn ends(b: u8) -> bool {
        b <= 0x20 || matches!(b, b'>' | b'/' | b'"' | b'\'' | b'<')
    }
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let mut at = p;
        let mut colon = None;
        while let Some(w) = data.get(at..at + 16) {
            // SAFETY: SSE2 is part of every x86_64 target; `w` has 16 bytes.
            let (term, colons) = unsafe {
                let v = _mm_loadu_si128(w.as_ptr() as *const __m128i);
                let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
                let space = _mm_set1_epi8(0x20);
                let low = _mm_cmpeq_epi8(_mm_max_epu8(v, space), space);
                let t = _mm_or_si128(
                    _mm_or_si128(
                        _mm_or_si128(low, eq(b'>')),
                        _mm_or_si128(eq(b'/'), eq(b'<')),
                    ),
                    _mm_or_si128(eq(b'"'), eq(b'\'')),
                );
                (
                    _mm_movemask_epi8(t) as u32,
                    _mm_movemask_epi8(eq(b':')) as u32,
                )
            };
            if term != 0 {
                let e = term.trailing_zeros();
                let c = colons & ((1u32 << e) - 1);
                if colon.is_none() && c != 0 {
                    colon = Some(at + c.trailing_zeros() as usize);
                }
                return Some((at + e as usize, colon));
            }
            if colon.is_none() && colons != 0 {
                colon = Some(at + colons.trailing_zeros() as usize);
            }
            at += 16;
        }
        let e = at + data[at..].iter().position(|&b| ends(b))?;
        let colon = colon.or_else(|| data[at..e].iter().position(|&b| b == b':').map(|c| at + c));
        Some((e, colon))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let e = p + data[p..].iter().position(|&b| ends(b))?;
        Some((e, data[p..e].iter().position(|&b| b == b':').map(|c| p + c)))
    }
}

/// The first `<` at or after `i`, and whether a byte before it is `&` or not ASCII (the
/// `odd` bytes of `Block`); `None` when there is no `<`.
#[inline]
pub(super) fn text_end(data: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut at = i;
    #[cfg(target_arch = "x86_64")]
    while let Some(w) = data.get(at..at + 16) {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of every x86_64 target; `w` has 16 bytes.
        let (lt, odd) = unsafe {
            let v = _mm_loadu_si128(w.as_ptr() as *const __m128i);
            let lt = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'<' as i8));
            let amp = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'&' as i8));
            (
                _mm_movemask_epi8(lt) as u32,
                _mm_movemask_epi8(_mm_or_si128(amp, v)) as u32,
            )
        };
        if lt != 0 {
            let e = lt.trailing_zeros();
            return Some((at + e as usize, odd & ((1 << e) - 1) != 0));
        }
        if odd != 0 {
            let e = at + memchr::memchr(b'<', &data[at..])?;
            return Some((e, true));
        }
        at += 16;
    }
    let e = at + memchr::memchr(b'<', &data[at..])?;
    let odd = data[at..e].iter().any(|&b| b == b'&' || b >= 0x80);
    Some((e, odd))
}

/// The masks of the chunk, one block at a time as the scanner moves forward, and whether the
/// current document has an odd byte.
struct Masks<'a> {
    data: &'a [u8],
    /// Start of the current block (a multiple of 64), `usize::MAX` before the first.
    base: usize,
    blk: Block,
    doc_start: usize,
    /// The odd bits of the document's blocks before the current one.
    odd: u64,
}

impl<'a> Masks<'a> {
    fn new(data: &'a [u8]) -> Self {
        Masks {
            data,
            base: usize::MAX,
            blk: Block::default(),
            doc_start: 0,
            odd: 0,
        }
    }

    fn compute(&mut self, base: usize) {
        self.base = base;
        let rest = &self.data[base..];
        self.blk = if let Some(b) = rest.first_chunk::<64>() {
            block_masks(b)
        } else {
            // The chunk's last, short block: pad it, and drop the bits past the end.
            let mut pad = [0u8; 64];
            pad[..rest.len()].copy_from_slice(rest);
            let m = block_masks(&pad);
            let keep = (1u64 << rest.len()) - 1;
            Block {
                lt: m.lt & keep,
                odd: m.odd & keep,
            }
        };
    }

    /// Starts a document at `start`.
    fn begin(&mut self, start: usize) {
        self.doc_start = start;
        self.odd = 0;
        let b = start & !63;
        if self.base != b {
            self.compute(b);
        }
    }

    /// Moves to the block at `b`, through every block between, so each block of the
    /// document counts towards `odd`.
    #[inline]
    fn goto(&mut self, b: usize) {
        if b < self.base {
            self.compute(b);
            return;
        }
        while self.base < b {
            let from = self.doc_start.saturating_sub(self.base).min(63);
            self.odd |= self.blk.odd & (!0u64 << from);
            self.compute(self.base + 64);
        }
    }

    /// The first `<` at or after `p`.
    #[inline]
    fn next_lt(&mut self, p: usize) -> Option<usize> {
        if p >= self.data.len() {
            return None;
        }
        let mut b = p & !63;
        self.goto(b);
        let mut m = self.blk.lt & (!0u64 << (p - b));
        while m == 0 {
            b += 64;
            if b >= self.data.len() {
                return None;
            }
            self.goto(b);
            m = self.blk.lt;
        }
        Some(b + m.trailing_zeros() as usize)
    }

    /// Whether the document `doc_start..end` has an odd byte.
    fn odd_until(&mut self, end: usize) -> bool {
        self.goto((end - 1) & !63);
        let lo = if self.doc_start > self.base {
            !0u64 << (self.doc_start - self.base)
        } else {
            !0
        };
        let hi = match end - self.base {
            64 => !0,
            k => (1u64 << k) - 1,
        };
        self.odd != 0 || self.blk.odd & lo & hi != 0
    }
}

/// The scanner's state, reused for every document of a chunk.
pub(super) struct Scan<'a> {
    pub(super) walk: Walk<'a>,
    masks: Masks<'a>,
    bindings: Vec<Binding<'a>>,
    /// Open element names (qualified, as written), to match end tags.
    names: [&'a [u8]; MAX_DEPTH],
    /// The last document the scanner read in full, as a template for the next ones.
    shape: Shape<'a>,
    /// The template being recorded while a document is read in full.
    record: Shape<'a>,
}

/// A document read in full, reduced to what decides how the scanner reads it: its markup
/// (everything but the texts between tags, as runs of bytes: `runs[k]`, then a text that
/// fills `gaps[k]`, then `runs[k + 1]`, ...) and what its markup alone made of it (`doc`,
/// texts left out).
///
/// The scanner's every step depends only on the bytes of the tag at hand and on what the
/// tags before it opened and declared; a text (bytes up to the next `<`) only fills a field,
/// chosen by the tags around it. So a document whose markup equals the template's byte for
/// byte, with a non-empty text exactly where the template had one, reads as the template
/// did with its own texts: nothing to parse but the texts' ends. Adapters write every
/// document of a kind with the same markup (the signature block included); the first one
/// that differs is read in full and becomes the template.
#[derive(Default)]
struct Shape<'a> {
    runs: Vec<&'a [u8]>,
    gaps: Vec<Option<Field>>,
    doc: Option<Doc<'a>>,
    /// Recording: where the current run of markup started.
    from: usize,
}

impl<'a> Shape<'a> {
    fn clear(&mut self, from: usize) {
        self.runs.clear();
        self.gaps.clear();
        self.doc = None;
        self.from = from;
    }

    /// A text at `t0..t1` that went to `field`: the markup run before it ends there.
    #[inline]
    fn text(&mut self, data: &'a [u8], t0: usize, t1: usize, field: Option<Field>) {
        self.runs.push(&data[self.from..t0]);
        self.gaps.push(field);
        self.from = t1;
    }
}

/// Equality for the short names and prefixes of tags: whole words, the last one
/// overlapping, instead of a call into `memcmp`.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w8 = |s: &[u8], i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let w4 = |s: &[u8], i: usize| u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes"));
    match n {
        0..4 => a == b,
        4..8 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        _ => {
            let mut i = 0;
            while i + 8 < n {
                if w8(a, i) != w8(b, i) {
                    return false;
                }
                i += 8;
            }
            w8(a, n - 8) == w8(b, n - 8)
        }
    }
}

/// Whether the bytes are valid UTF-8, as quick-xml requires of every piece it reads.
fn valid_utf8(b: &[u8]) -> bool {
    b.is_ascii() || std::str::from_utf8(b).is_ok()
}

impl<'a> Scan<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Scan {
            walk: Walk::new(),
            masks: Masks::new(data),
            bindings: Vec::new(),
            names: [&[]; MAX_DEPTH],
            shape: Shape::default(),
            record: Shape::default(),
        }
    }

    /// Reads the document at `p` by the template (see `Shape`); `None` when it does not
    /// follow the template (or has a byte the scanner looks at closer), for `doc` to read.
    pub(super) fn by_shape(&mut self, p: usize) -> Option<Scanned> {
        let shape_doc = self.shape.doc?;
        let data = self.masks.data;
        let n = data.len();
        let mut i = p;
        while i < n && data[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        let first = self.shape.runs.first()?;
        if data.get(i..i + first.len()) != Some(first) {
            return None;
        }
        let mut doc = shape_doc;
        let last = self.shape.runs.len() - 1;
        for (k, run) in self.shape.runs.iter().enumerate() {
            if k > 0 && data.get(i..i + run.len()) != Some(run) {
                return None;
            }
            i += run.len();
            if k == last {
                break;
            }
            // A text: not empty, up to the next `<`, nothing in it to look at closer (the
            // markup has nothing either: it is the template's).
            if data.get(i).is_none_or(|&b| b == b'<') {
                return None;
            }
            let t = match text_end(data, i)? {
                (t, false) => t,
                (_, true) => return None,
            };
            if let Some(f) = self.shape.gaps[k] {
                doc.fill(f, data[i..t].trim_ascii());
            }
            i = t;
        }
        if !resumable(data, i) {
            return None;
        }
        self.walk.doc = doc;
        Some(Scanned::Doc { start, end: i })
    }

    /// Reads the document at `p`: by the template when it fits, else in full (which makes
    /// it the template when the scanner reads it).
    pub(super) fn next(&mut self, p: usize) -> Scanned {
        if let Some(s) = self.by_shape(p) {
            return s;
        }
        let s = self.doc(p);
        if let Scanned::Doc { end, .. } = s
            && self.record.doc.is_some()
        {
            let data = self.masks.data;
            self.record.runs.push(&data[self.record.from..end]);
            std::mem::swap(&mut self.shape, &mut self.record);
        }
        s
    }

    /// Reads one document starting at `p`, just after the previous one (or where the
    /// reference reader would start afresh).
    pub(super) fn doc(&mut self, p: usize) -> Scanned {
        use Scanned::GiveUp;
        let data = self.masks.data;
        let n = data.len();
        let mut i = p;
        // Whitespace between documents (as the reference reader ignores it).
        while i < n && data[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == n {
            return Scanned::Rest;
        }
        if data[i] != b'<' {
            return GiveUp;
        }
        let start = i;
        // The XML declaration, if any: up to the first `?>`.
        if data[i + 1..].starts_with(b"?xml") && data.get(i + 5).is_some_and(|&b| xml_ws(b)) {
            let mut from = i + 6;
            // Up to the first `?>`, giving up at a `<` (which a declaration never holds), so
            // a declaration that never closes costs the distance to the next tag.
            let close = loop {
                let Some(k) = memchr::memchr2(b'>', b'<', &data[from..]) else {
                    return GiveUp;
                };
                if data[from + k] == b'<' {
                    return GiveUp;
                }
                if data[from + k - 1] == b'?' {
                    break from + k - 1;
                }
                from += k + 1;
            };
            i = close + 2;
            while i < n && data[i].is_ascii_whitespace() {
                i += 1;
            }
            if i == n || data[i] != b'<' {
                return GiveUp;
            }
        }
        self.masks.begin(start);
        self.bindings.clear();
        self.walk.depth = 0;
        self.walk.foreign_depth = 0;
        self.record.clear(start);
        // At `data[i] == b'<'`: one tag per turn, then the text after it.
        loop {
            let (closed, after) = match data.get(i + 1) {
                Some(b'/') => match self.end_tag(i) {
                    Some(r) => r,
                    None => return GiveUp,
                },
                Some(b'!' | b'?') | None => return GiveUp,
                Some(_) => match self.start_tag(i) {
                    Some(r) => r,
                    None => return GiveUp,
                },
            };
            i = after;
            if closed {
                break;
            }
            if data.get(i) == Some(&b'<') {
                continue; // the next tag follows at once, as it mostly does
            }
            let Some(k) = self.masks.next_lt(i) else {
                return GiveUp;
            };
            let f = self.walk.text(&data[i..k]);
            self.record.text(data, i, k, f);
            i = k;
        }
        // What follows must let the reference reader start afresh there, should the next
        // document need it. A reference (`&`) is the reference reader's to read, and
        // quick-xml reads only valid UTF-8.
        if !resumable(data, i)
            || self.masks.odd_until(i)
                && (memchr::memchr(b'&', &data[start..i]).is_some() || !valid_utf8(&data[start..i]))
        {
            return GiveUp;
        }
        // A template only of a document without `&` or bytes that are not ASCII, so that
        // one that follows it needs no closer look than its texts get.
        if !self.masks.odd_until(i) {
            self.record.doc = Some(self.walk.doc.without_texts());
        }
        Scanned::Doc { start, end: i }
    }

    /// A start or empty tag at `data[i] == b'<'`: (completes the document, position after).
    #[inline]
    fn start_tag(&mut self, i: usize) -> Option<(bool, usize)> {
        let data = self.masks.data;
        let n = data.len();
        let (mut j, colon) = name_end(data, i + 1)?;
        let name = &data[i + 1..j];
        if name.is_empty() {
            return None;
        }
        let level = self.walk.depth + 1;
        let is_empty;
        loop {
            match *data.get(j)? {
                b'>' => {
                    is_empty = false;
                    j += 1;
                    break;
                }
                b'/' => {
                    if data.get(j + 1) != Some(&b'>') {
                        return None;
                    }
                    is_empty = true;
                    j += 2;
                    break;
                }
                b if xml_ws(b) => {
                    j += 1;
                    while j < n && xml_ws(data[j]) {
                        j += 1;
                    }
                    if matches!(data.get(j), Some(b'>' | b'/') | None) {
                        continue;
                    }
                    // An attribute: key="value" or key='value', nothing looser.
                    let k0 = j;
                    while j < n && KEY_CLASS[data[j] as usize] == 0 {
                        j += 1;
                    }
                    let key = &data[k0..j];
                    if key.is_empty() || data.get(j) != Some(&b'=') {
                        return None;
                    }
                    let quote = *data.get(j + 1)?;
                    if quote != b'"' && quote != b'\'' {
                        return None;
                    }
                    let v0 = j + 2;
                    let v1 = v0 + memchr::memchr2(quote, b'<', data.get(v0..)?)?;
                    if data[v1] != quote {
                        return None;
                    }
                    let value = &data[v0..v1];
                    j = v1 + 1;
                    if key.starts_with(b"xmlns") {
                        let prefix: &[u8] = match &key[5..] {
                            [] => &[],
                            [b':', p @ ..] if !p.is_empty() => p,
                            [b':'] => return None,
                            _ => continue, // `xmlnsfoo`: an ordinary attribute
                        };
                        if value.is_empty()
                            || memchr::memchr(b'&', value).is_some()
                            || value == NS_XML
                            || value == NS_XMLNS
                            || prefix == b"xml"
                            || prefix == b"xmlns"
                            || self.bindings.len() >= 64
                        {
                            return None;
                        }
                        self.bindings.push(Binding {
                            key: prefix_key(prefix),
                            prefix,
                            accepted: value == NS_DUIS || value == NS_MMC,
                            level,
                        });
                    }
                }
                _ => return None, // a quote, `<` or control character in the name
            }
        }
        // Resolve the element's namespace as quick-xml does: the prefix before the first
        // `:`, the innermost binding of it; no prefix takes the default namespace, or none.
        let (prefix, local) = match colon {
            Some(c) => (Some(&data[i + 1..c]), &data[c + 1..i + 1 + name.len()]),
            None => (None, name),
        };
        let accepted = match prefix {
            None => self
                .bindings
                .iter()
                .rev()
                .find(|b| b.prefix.is_empty())
                .is_none_or(|b| b.accepted),
            Some([]) => return None, // `:name`: no binding has an empty prefix
            Some(p) => {
                let key = prefix_key(p);
                self.bindings
                    .iter()
                    .rev()
                    .find(|b| {
                        b.key == key
                            && b.prefix.len() == p.len()
                            && (p.len() <= 8 || same(b.prefix, p))
                    })
                    .is_some_and(|b| b.accepted)
            }
        };
        if self.walk.depth > 0 && crate::source::is_root_name(name) {
            // An inner element named as a root: its end tag is a place a chunk may end, so the
            // reference reader reads this document only up to there (`decode`).
            return None;
        }
        if is_empty {
            self.pop_bindings(level - 1);
        } else {
            if self.walk.depth >= MAX_DEPTH {
                return None;
            }
            self.names[self.walk.depth] = name;
        }
        let closed = self.walk.start(accepted, local, is_empty);
        Some((closed, j))
    }

    /// An end tag at `data[i..]` (`</`): it must name the open element.
    #[inline]
    fn end_tag(&mut self, i: usize) -> Option<(bool, usize)> {
        let data = self.masks.data;
        let depth = self.walk.depth;
        if depth == 0 {
            return None;
        }
        let open = self.names[depth - 1];
        let at = i + 2;
        // The usual case first: the open name, then `>`.
        let gt = if data.get(at..at + open.len()).is_some_and(|d| same(d, open))
            && data.get(at + open.len()) == Some(&b'>')
        {
            at + open.len()
        } else {
            let gt = at + memchr::memchr(b'>', data.get(at..)?)?;
            let content = &data[at..gt];
            if memchr::memchr3(b'"', b'\'', b'<', content).is_some() {
                return None;
            }
            let end = content
                .iter()
                .rposition(|&b| !xml_ws(b))
                .map_or(0, |e| e + 1);
            if &content[..end] != open {
                return None;
            }
            gt
        };
        self.pop_bindings(depth - 1);
        let closed = self.walk.end();
        Some((closed, gt + 1))
    }

    /// Drops the bindings declared deeper than `level`.
    #[inline]
    fn pop_bindings(&mut self, level: usize) {
        while self.bindings.last().is_some_and(|b| b.level > level) {
            self.bindings.pop();
        }
    }
}
