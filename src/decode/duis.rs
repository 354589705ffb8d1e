//! DUIS XML: many documents back to back, as an adapter logs them.
//!
//! One `quick_xml::NsReader` walks the whole chunk, borrowing from it; elements are matched on
//! local name *and* namespace URI (the DUIS or the MMC namespace, or none), never on a prefix.
//! Each document becomes one record: an alert (`DeviceAlertMessage`,
//! `FutureDatedDeviceAlertMessage`, `DCCAlertMessage`, a SMETS1 device alert, `S1SPAlert`), or a
//! response or request, which is counted but is not an alert. DTDs are never processed, so an
//! external entity (`&xxe;`) stays an unexpanded reference. A document that is not well formed
//! is rejected and decoding resumes at the next document start.

use super::Sink;
use crate::model::time::parse_timestamp;
use crate::model::{AlertCode, DeviceId, Event, MessageKind, RecordAttrs, hash_bytes};
use memchr::memmem;
use quick_xml::events::Event as X;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use std::borrow::Cow;

pub const NS_DUIS: &[u8] = b"http://www.dccinterface.co.uk/ServiceUserGateway";
pub const NS_MMC: &[u8] = b"http://www.dccinterface.co.uk/ResponseAndAlert";

/// The elements the decoder cares about; everything else is `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum El {
    Response,
    Request,
    S1SPAlert,
    Header,
    Body,
    RequestID,
    ResponseID,
    ResponseDateTime,
    ResponseMessage,
    DeviceAlertMessage,
    FutureDatedDeviceAlertMessage,
    DCCAlertMessage,
    SMETS1ResponseMessage,
    AlertCode,
    FutureDatedAlertCode,
    DCCAlertCode,
    DCCAlert,
    ThrottledAlertCount,
    GBCSPayload,
    GBCSHexAlertCode,
    BusinessOriginatorID,
    DeviceID,
    S1SPAlertCode,
    DateTime,
    Other,
}

fn classify(local: &[u8]) -> El {
    match local {
        b"Response" => El::Response,
        b"Request" => El::Request,
        b"S1SPAlert" => El::S1SPAlert,
        b"Header" => El::Header,
        b"Body" => El::Body,
        b"RequestID" => El::RequestID,
        b"ResponseID" => El::ResponseID,
        b"ResponseDateTime" => El::ResponseDateTime,
        b"ResponseMessage" => El::ResponseMessage,
        b"DeviceAlertMessage" => El::DeviceAlertMessage,
        b"FutureDatedDeviceAlertMessage" => El::FutureDatedDeviceAlertMessage,
        b"DCCAlertMessage" => El::DCCAlertMessage,
        b"SMETS1ResponseMessage" => El::SMETS1ResponseMessage,
        b"AlertCode" => El::AlertCode,
        b"FutureDatedAlertCode" => El::FutureDatedAlertCode,
        b"DCCAlertCode" => El::DCCAlertCode,
        b"DCCAlert" => El::DCCAlert,
        b"ThrottledAlertCount" => El::ThrottledAlertCount,
        b"GBCSPayload" => El::GBCSPayload,
        b"GBCSHexAlertCode" => El::GBCSHexAlertCode,
        b"BusinessOriginatorID" => El::BusinessOriginatorID,
        b"DeviceID" | b"CommsHubDeviceID" => El::DeviceID,
        b"S1SPAlertCode" => El::S1SPAlertCode,
        b"DateTime" => El::DateTime,
        _ => El::Other,
    }
}

/// What one document said, as slices of the chunk.
#[derive(Default)]
struct Doc<'a> {
    root: Option<El>,
    body: Option<El>,
    future_dated: bool,
    smets1_alert: bool,
    in_header: bool,
    in_dcc_alert: bool,
    request_id: Option<&'a [u8]>,
    response_id: Option<&'a [u8]>,
    response_time: Option<&'a [u8]>,
    code: Option<&'a [u8]>,
    count: Option<&'a [u8]>,
    device_id: Option<&'a [u8]>,
    originator: Option<&'a [u8]>,
    date_time: Option<&'a [u8]>,
    /// The base64 GBCS payload (decoded by a later stage when present).
    pub payload: Option<&'a [u8]>,
}

const MAX_DEPTH: usize = 64;

/// Splits `EUI:EUI:counter`; returns the two EUIs.
fn split_id(id: &[u8]) -> Option<(DeviceId, DeviceId)> {
    let mut parts = id.trim_ascii().split(|&b| b == b':');
    let a = DeviceId::parse(parts.next()?)?;
    let b = DeviceId::parse(parts.next()?)?;
    let counter = parts.next()?;
    if parts.next().is_some() || counter.is_empty() || !counter.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((a, b))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(80)]).into_owned()
}

impl<'a> Doc<'a> {
    /// Turns a finished document into a record. `scratch` holds a decoded GBCS payload.
    fn finish(&self, scratch: &mut Vec<u8>) -> Result<Event, String> {
        let root = self.root.ok_or("no root element")?;
        let id = self.response_id.or(self.request_id);
        let message_id = id.map(|i| hash_bytes(i.trim_ascii())).unwrap_or(0);
        for (name, v) in [
            ("RequestID", self.request_id),
            ("ResponseID", self.response_id),
        ] {
            if let Some(v) = v
                && split_id(v).is_none()
            {
                return Err(format!(
                    "invalid {name} `{}` (expected EUI:EUI:counter)",
                    text(v)
                ));
            }
        }
        let mut ev = Event {
            kind: MessageKind::Response,
            ts: 0,
            device: None,
            code: None,
            count: 1,
            message_id,
            attrs: RecordAttrs::default(),
            firmware: None,
        };
        let ts_text = match root {
            El::Request => {
                ev.kind = MessageKind::Request;
                return Ok(ev);
            }
            El::S1SPAlert => {
                ev.kind = MessageKind::DccAlert;
                self.date_time
            }
            El::Response => {
                ev.kind = match self.body {
                    Some(El::DeviceAlertMessage) => MessageKind::DeviceAlert,
                    Some(El::DCCAlertMessage) => MessageKind::DccAlert,
                    Some(El::ResponseMessage) if self.future_dated => MessageKind::FutureDatedAlert,
                    Some(El::SMETS1ResponseMessage) if self.smets1_alert => {
                        MessageKind::DeviceAlert
                    }
                    Some(_) => MessageKind::Response,
                    None => return Err("Response has no Body message".into()),
                };
                self.response_time
            }
            _ => return Err("not a DUIS message".into()),
        };
        let ts_raw = ts_text.ok_or("missing ResponseDateTime")?;
        ev.ts = parse_timestamp(ts_raw)
            .ok_or_else(|| format!("invalid date-time `{}`", text(ts_raw)))?;
        if !ev.kind.is_alert() {
            // A response names the device it came from first in its ResponseID, or as the
            // target of its RequestID.
            ev.device = match (self.response_id, self.request_id) {
                (Some(r), _) => split_id(r).map(|(dev, _)| dev),
                (None, Some(q)) => split_id(q).map(|(_, target)| target),
                (None, None) => None,
            };
            return Ok(ev);
        }
        let code_raw = self.code.ok_or("alert without an alert code")?;
        ev.code = Some(
            AlertCode::parse(code_raw)
                .ok_or_else(|| format!("invalid alert code `{}`", text(code_raw)))?,
        );
        if let (Some(payload), Some(code)) = (self.payload, ev.code) {
            ev.firmware = check_payload(payload, code, scratch)?;
        }
        if let Some(c) = self.count {
            ev.count = std::str::from_utf8(c.trim_ascii())
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("invalid ThrottledAlertCount `{}`", text(c)))?;
        }
        let parse_dev = |v: &[u8], what: &str| {
            DeviceId::parse(v).ok_or_else(|| format!("invalid {what} `{}`", text(v)))
        };
        ev.device = if let Some(o) = self.originator {
            Some(parse_dev(o, "BusinessOriginatorID")?)
        } else if let Some(d) = self.device_id {
            Some(parse_dev(d, "DeviceID")?)
        } else if ev.kind == MessageKind::DccAlert {
            None
        } else if let Some(r) = self.response_id {
            // Alerts flow device -> user: the ResponseID names the device first.
            split_id(r).map(|(dev, _)| dev)
        } else {
            self.request_id.and_then(split_id).map(|(_, target)| target)
        };
        if ev.device.is_none() && ev.kind != MessageKind::DccAlert {
            return Err("device alert without a device id (no ResponseID or RequestID)".into());
        }
        Ok(ev)
    }

    /// The text (or CDATA) of the innermost open element, the last of `open`. Text the
    /// reader had to copy (entities) is never a field fleetwatch reads.
    fn element_text(&mut self, open: &[El], text: Cow<'a, str>) {
        let (Cow::Borrowed(v), Some((&el, outer))) = (text, open.split_last()) else {
            return;
        };
        let parent = outer.last().copied().unwrap_or(El::Other);
        self.text(el, parent, v.as_bytes().trim_ascii());
    }

    fn text(&mut self, el: El, parent: El, v: &'a [u8]) {
        let slot = match el {
            El::RequestID if self.in_header => &mut self.request_id,
            El::ResponseID if self.in_header => &mut self.response_id,
            El::ResponseDateTime if self.in_header => &mut self.response_time,
            El::AlertCode if parent == El::DeviceAlertMessage => &mut self.code,
            El::FutureDatedAlertCode
            | El::DCCAlertCode
            | El::GBCSHexAlertCode
            | El::S1SPAlertCode => &mut self.code,
            El::ThrottledAlertCount => &mut self.count,
            El::GBCSPayload => &mut self.payload,
            El::BusinessOriginatorID => &mut self.originator,
            El::DeviceID if self.in_dcc_alert || self.root == Some(El::S1SPAlert) => {
                &mut self.device_id
            }
            El::DateTime if self.root == Some(El::S1SPAlert) => &mut self.date_time,
            _ => return,
        };
        slot.get_or_insert(v);
    }
}

/// Finds the start of the next document at or after `from`: an `<?xml` declaration or a root
/// start tag.
fn next_doc_start(data: &[u8], from: usize) -> Option<usize> {
    let decl = memmem::find(&data[from..], b"<?xml").map(|i| from + i);
    let mut root = None;
    let mut at = from;
    while let Some(i) = memchr::memchr(b'<', &data[at..]) {
        let p = at + i + 1;
        let end = data[p..]
            .iter()
            .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')
            .map(|k| p + k);
        if let Some(end) = end {
            let name = &data[p..end];
            let local = name.rsplit(|&b| b == b':').next().unwrap_or(name);
            if matches!(local, b"Response" | b"Request" | b"S1SPAlert") {
                root = Some(p - 1);
                break;
            }
        }
        at = p;
        if decl.is_some_and(|d| d < at) {
            break;
        }
    }
    match (decl, root) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Where to look for the next document after a broken one starting at `start`: past its own
/// root start tag when it opened with a declaration, so the same document is not found again.
fn after_own_root(data: &[u8], start: usize) -> usize {
    if data[start..].starts_with(b"<?xml")
        && let Some(end) = memmem::find(&data[start..], b"?>")
        && let Some(lt) = memchr::memchr(b'<', &data[start + end..])
    {
        return start + end + lt + 1;
    }
    start + 1
}

/// Where a broken document starting at `start` really ends: at the next document start after
/// its own, if that comes before `found` (where the problem surfaced). A document cut inside a
/// tag (`<sr:Respo`, then the next `<?xml`) makes the reader swallow the documents after it as
/// children; those must be read again, not rejected with it.
fn end_of_broken(data: &[u8], start: usize, found: usize) -> usize {
    next_doc_start(data, after_own_root(data, start)).map_or(found, |next| next.min(found))
}

/// Where things are in a chunk: line numbers counted incrementally (positions only move
/// forward), and the chunk's offset in its source, for rejects.
struct Positions<'d> {
    data: &'d [u8],
    offset: u64,
    pos: usize,
    line: u64,
}

impl Positions<'_> {
    fn line_at(&mut self, pos: usize) -> u64 {
        if pos > self.pos {
            self.line += memchr::memchr_iter(b'\n', &self.data[self.pos..pos]).count() as u64;
            self.pos = pos;
        }
        self.line
    }

    /// Rejects the bytes `start..end` of the chunk as one record.
    fn reject(&mut self, sink: &mut impl Sink, start: usize, end: usize, reason: String) {
        let line = self.line_at(start);
        let raw = &self.data[start..end.min(self.data.len())];
        sink.reject(line, self.offset + start as u64, reason, raw);
    }
}

/// Decodes the documents of one chunk.
pub fn decode(data: &[u8], first_line: u64, offset: u64, sink: &mut impl Sink) {
    let mut at = Positions {
        data,
        offset,
        pos: 0,
        line: first_line,
    };
    let mut base = 0usize;
    // Decoded GBCS payloads, reused for every document of the chunk.
    let mut scratch = Vec::new();
    'reader: while base < data.len() {
        let mut reader = NsReader::from_reader(&data[base..]);
        reader.config_mut().check_end_names = true;
        let mut doc = Doc::default();
        let mut doc_start: Option<usize> = None;
        let mut stack = [El::Other; MAX_DEPTH];
        let mut depth = 0usize;
        let mut foreign_depth = 0usize;
        loop {
            let before = base + reader.buffer_position() as usize;
            let res = reader.read_resolved_event();
            let (ns, event) = match res {
                Ok(pair) => pair,
                Err(e) => {
                    let err_at = base + reader.buffer_position() as usize;
                    let start = doc_start.unwrap_or(before);
                    // Resume at the next document after the broken one's start: an error
                    // found at the end of input may belong to a document cut short much earlier.
                    let resume = end_of_broken(data, start, data.len());
                    let reason = if resume < err_at && resume < data.len() {
                        format!(
                            "truncated XML document (the next document starts before it ends): {e}"
                        )
                    } else if err_at >= data.len() {
                        format!("truncated XML document (the input ends inside it): {e}")
                    } else {
                        format!("malformed XML: {e}")
                    };
                    at.reject(sink, start, resume, reason);
                    base = resume;
                    continue 'reader;
                }
            };
            let accepted_ns = match &ns {
                ResolveResult::Bound(n) => {
                    n.as_ref().as_bytes() == NS_DUIS || n.as_ref().as_bytes() == NS_MMC
                }
                ResolveResult::Unbound => true,
                ResolveResult::Unknown(_) => false,
            };
            match event {
                X::Start(ref e) | X::Empty(ref e) => {
                    let is_empty = matches!(event, X::Empty(_));
                    if depth == 0 {
                        doc_start.get_or_insert(before);
                        doc = Doc::default();
                    }
                    let el = if accepted_ns && foreign_depth == 0 {
                        classify(e.local_name().as_ref().as_bytes())
                    } else {
                        El::Other
                    };
                    let parent = if depth > 0 {
                        stack[(depth - 1).min(MAX_DEPTH - 1)]
                    } else {
                        El::Other
                    };
                    if depth == 0 {
                        doc.root = Some(el);
                    } else if parent == El::Body && doc.body.is_none() && depth == 2 {
                        doc.body = Some(el);
                    }
                    match el {
                        El::Header if depth == 1 => doc.in_header = !is_empty,
                        El::FutureDatedDeviceAlertMessage => doc.future_dated = true,
                        El::DeviceAlertMessage if doc.body == Some(El::SMETS1ResponseMessage) => {
                            doc.smets1_alert = true
                        }
                        El::DCCAlert => doc.in_dcc_alert = !is_empty,
                        _ => {}
                    }
                    if !is_empty {
                        if !accepted_ns || foreign_depth > 0 {
                            foreign_depth += 1;
                        }
                        if depth < MAX_DEPTH {
                            stack[depth] = el;
                        }
                        depth += 1;
                    } else if depth == 0 {
                        let end = base + reader.buffer_position() as usize;
                        finish(
                            &doc,
                            doc_start.take().unwrap_or(before),
                            end,
                            &mut at,
                            sink,
                            &mut scratch,
                        );
                    }
                }
                X::End(_) => {
                    depth = depth.saturating_sub(1);
                    foreign_depth = foreign_depth.saturating_sub(1);
                    let el = if depth < MAX_DEPTH {
                        stack[depth]
                    } else {
                        El::Other
                    };
                    match el {
                        El::Header if depth == 1 => doc.in_header = false,
                        El::DCCAlert => doc.in_dcc_alert = false,
                        _ => {}
                    }
                    if depth == 0 {
                        let end = base + reader.buffer_position() as usize;
                        finish(
                            &doc,
                            doc_start.take().unwrap_or(before),
                            end,
                            &mut at,
                            sink,
                            &mut scratch,
                        );
                    }
                }
                X::Text(t) if depth > 0 && depth <= MAX_DEPTH => {
                    doc.element_text(&stack[..depth], t.into_inner())
                }
                X::CData(t) if depth > 0 && depth <= MAX_DEPTH => {
                    doc.element_text(&stack[..depth], t.into_inner())
                }
                X::Text(ref t)
                    if depth == 0 && !t.as_ref().as_bytes().iter().all(u8::is_ascii_whitespace) =>
                {
                    // Junk between documents: reject it as one record and move on.
                    let start = before
                        + data[before..]
                            .iter()
                            .take_while(|b| b.is_ascii_whitespace())
                            .count();
                    let resume = next_doc_start(data, start + 1).unwrap_or(data.len());
                    at.reject(sink, start, resume, "text outside any XML document".into());
                    base = resume;
                    continue 'reader;
                }
                X::DocType(_) | X::Decl(_) | X::PI(_) | X::Comment(_) if depth == 0 => {
                    doc_start.get_or_insert(before);
                }
                X::Decl(_) | X::DocType(_) => {
                    // A declaration inside an open document: the document was cut short, and
                    // the next one begins here, or earlier if the cut swallowed it.
                    let start = doc_start.unwrap_or(before);
                    let resume = end_of_broken(data, start, before);
                    let reason = "truncated XML document (the next document starts before it ends)";
                    at.reject(sink, start, resume, reason.into());
                    base = resume;
                    continue 'reader;
                }
                X::Eof => {
                    let Some(start) = doc_start else {
                        break 'reader;
                    };
                    let resume = end_of_broken(data, start, data.len());
                    let reason = if resume < data.len() {
                        "truncated XML document (the next document starts before it ends)"
                    } else {
                        "truncated XML document (ends before its root element closes)"
                    };
                    at.reject(sink, start, resume, reason.into());
                    base = resume;
                    continue 'reader;
                }
                _ => {}
            }
        }
    }
}

/// The GBCS payload must be readable, and name the alert code the envelope gives.
/// Returns the firmware outcome the payload carries, if any.
fn check_payload(
    payload: &[u8],
    code: AlertCode,
    scratch: &mut Vec<u8>,
) -> Result<Option<crate::model::firmware::FirmwareResult>, String> {
    let bytes =
        super::gbcs::payload_bytes(payload, scratch).map_err(|e| format!("GBCSPayload: {e}"))?;
    let g = super::gbcs::decode(bytes).map_err(|e| format!("GBCSPayload: {e}"))?;
    match (g.alert_code, code.device_code()) {
        (Some(inner), Some(outer)) if inner != outer => Err(format!(
            "the envelope's alert code {outer:04X} disagrees with the GBCS payload's {inner:04X}"
        )),
        _ => Ok(g.firmware.map(|f| f.result())),
    }
}

fn finish(
    doc: &Doc,
    start: usize,
    end: usize,
    at: &mut Positions,
    sink: &mut impl Sink,
    scratch: &mut Vec<u8>,
) {
    match doc.finish(scratch) {
        Ok(ev) => sink.event(&ev),
        Err(reason) => at.reject(sink, start, end, reason),
    }
}
