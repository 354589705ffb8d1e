//! Decoders: bytes of one chunk in, `Event`s and `Reject`s out, one module per format.
//!
//! A decoder never allocates per record on the good path: it borrows field slices from the
//! chunk, parses them to integers, fills an `Event` on the stack and hands it to a `Sink`.
//! Anything it cannot read becomes a reject with the line, byte offset, a reason that says
//! what was wrong, and the raw bytes; the records around it are still decoded.

pub mod csv;
pub(crate) use csv_plain::line_and_field_ends;
mod csv_layout;
mod csv_plain;
pub mod duis;
pub mod gbcs;
pub mod jsonl;

use crate::model::time::{check_window, in_window, parse_timestamp};
use crate::model::{
    AlertCode, DeviceId, DeviceType, Event, Generation, MessageKind, RecordAttrs, Region,
    hash_bytes,
};

/// Where decoded records go.
pub trait Sink {
    fn event(&mut self, ev: &Event);
    /// `line` is 1-based; `offset` is the byte offset of the record in the decompressed stream.
    fn reject(&mut self, line: u64, offset: u64, reason: String, raw: &[u8]);
}

/// A sink that keeps every event and every reject's line and reason: for tests and small inputs.
#[derive(Debug, Default)]
pub struct Collect {
    pub events: Vec<Event>,
    pub rejects: Vec<(u64, String)>,
    /// Each reject's bytes: (offset in the stream, the record as read), in `rejects`' order.
    pub rejected: Vec<(u64, Vec<u8>)>,
}

impl Sink for Collect {
    fn event(&mut self, ev: &Event) {
        self.events.push(*ev);
    }
    fn reject(&mut self, line: u64, offset: u64, reason: String, raw: &[u8]) {
        self.rejects.push((line, reason));
        self.rejected.push((offset, raw.to_vec()));
    }
}

/// The fields an export row may carry, found by column name or JSON key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    Timestamp,
    Device,
    Code,
    MessageId,
    Count,
    Region,
    DeviceType,
    Generation,
    /// The device's own GBCS message, hex or base64.
    Payload,
}

impl Field {
    pub const COUNT: usize = 9;
    pub const ALL: [Field; Field::COUNT] = [
        Field::Timestamp,
        Field::Device,
        Field::Code,
        Field::MessageId,
        Field::Count,
        Field::Region,
        Field::DeviceType,
        Field::Generation,
        Field::Payload,
    ];

    /// The name used in `--columns` and in docs.
    pub fn key(self) -> &'static str {
        match self {
            Field::Timestamp => "timestamp",
            Field::Device => "device",
            Field::Code => "code",
            Field::MessageId => "message_id",
            Field::Count => "count",
            Field::Region => "region",
            Field::DeviceType => "device_type",
            Field::Generation => "generation",
            Field::Payload => "payload",
        }
    }

    /// Column names recognised for each field, compared after lower-casing and dropping
    /// everything but letters and digits (so `AlertCode`, `alert_code` and `Alert Code` match).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::Timestamp => &[
                "timestamp",
                "time",
                "datetime",
                "ts",
                "alerttime",
                "alertdatetime",
                "alerttimestamp",
                "eventtime",
                "eventdatetime",
                "responsedatetime",
                "occurredat",
                "createdat",
                "date",
            ],
            Field::Device => &[
                "deviceid",
                "device",
                "eui",
                "eui64",
                "deviceeui",
                "deviceeui64",
                "devid",
            ],
            Field::Code => &[
                "alertcode",
                "code",
                "alert",
                "dccalertcode",
                "gbcshexalertcode",
                "eventcode",
            ],
            Field::MessageId => &["messageid", "msgid", "responseid", "alertid"],
            Field::Count => &["count", "throttledalertcount", "occurrences", "alertcount"],
            Field::Region => &["region", "cspregion", "csp"],
            Field::DeviceType => &["devicetype", "type"],
            Field::Generation => &["generation", "smets", "gen", "smetsgeneration"],
            Field::Payload => &[
                "gbcspayload",
                "payload",
                "gbcs",
                "gbcshex",
                "rawpayload",
                "gbcsmessage",
            ],
        }
    }

    /// The field a column name or key stands for, if any.
    pub fn from_name(name: &[u8]) -> Option<Field> {
        let mut buf = [0u8; 48];
        let n = squash_name(name, &mut buf)?;
        let s = &buf[..n];
        Field::ALL
            .into_iter()
            .find(|f| f.aliases().iter().any(|a| a.as_bytes() == s))
    }

    pub fn from_key(key: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|f| f.key() == key)
            .or_else(|| Field::from_name(key.as_bytes()))
    }
}

/// Lower-cases ASCII letters and digits of `name` into `buf`, dropping everything else.
pub fn squash_name(name: &[u8], buf: &mut [u8; 48]) -> Option<usize> {
    let mut n = 0;
    for &b in name {
        if b.is_ascii_alphanumeric() {
            *buf.get_mut(n)? = b.to_ascii_lowercase();
            n += 1;
        }
    }
    Some(n)
}

/// A user's explicit column mapping (`--columns code=Alert_Type,device=MPAN`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColumnMap(pub Vec<(Field, String)>);

impl std::str::FromStr for ColumnMap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected FIELD=COLUMN, e.g. code=AlertType"))?;
            let field = Field::from_key(k.trim()).ok_or_else(|| {
                let keys: Vec<_> = Field::ALL.iter().map(|f| f.key()).collect();
                format!("`{k}` is not a field; fields are: {}", keys.join(", "))
            })?;
            out.push((field, v.trim().to_string()));
        }
        Ok(ColumnMap(out))
    }
}

/// The raw field values of one export row, borrowed from the chunk (or a scratch buffer).
#[derive(Default, Clone, Copy)]
pub struct RawFields<'a> {
    pub values: [Option<&'a [u8]>; Field::COUNT],
}

impl<'a> RawFields<'a> {
    pub fn get(&self, f: Field) -> Option<&'a [u8]> {
        self.values[f as usize].filter(|v| !v.trim_ascii().is_empty())
    }
    pub fn set(&mut self, f: Field, v: &'a [u8]) {
        self.values[f as usize] = Some(v);
    }
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(80)]);
    if b.len() > 80 {
        format!("{s}...")
    } else {
        s.into_owned()
    }
}

/// Builds an event from an export row's fields, or says why it cannot.
pub fn event_from_fields(f: &RawFields) -> Result<Event, String> {
    // A GBCS payload, when the row has one, stands in for a missing code, device or time, and
    // must agree with the code the row gives.
    let payload = match f.get(Field::Payload) {
        Some(p) => Some(payload_fields(p)?),
        None => None,
    };
    let code = match (f.get(Field::Code), payload.and_then(|p| p.alert_code)) {
        (Some(code_raw), inner) => {
            let code = AlertCode::parse(code_raw).ok_or_else(|| {
                format!(
                    "invalid alert code `{}` (expected 4 hex digits like 81B8, or N1..N999, AD1)",
                    show(code_raw)
                )
            })?;
            if let (Some(inner), Some(outer)) = (inner, code.device_code())
                && inner != outer
            {
                return Err(format!(
                    "the row's alert code {outer:04X} disagrees with the GBCS payload's {inner:04X}"
                ));
            }
            code
        }
        (None, Some(inner)) => AlertCode::device(inner),
        (None, None) => return Err("missing alert code".into()),
    };
    let ts = match (f.get(Field::Timestamp), payload.and_then(|p| p.timestamp)) {
        (Some(ts_raw), _) => parse_timestamp(ts_raw).ok_or_else(|| {
            format!(
                "invalid timestamp `{}` (expected ISO 8601, e.g. 2024-03-01T12:00:00Z)",
                show(ts_raw)
            )
        })?,
        (None, Some(t)) => t,
        (None, None) => return Err("missing timestamp".into()),
    };
    check_window(ts).map_err(|why| match f.get(Field::Timestamp) {
        Some(raw) => format!("timestamp `{}` is {why}", show(raw)),
        None => format!(
            "the GBCS payload's time {} is {why}",
            crate::model::time::format_timestamp(ts)
        ),
    })?;
    let device = match f.get(Field::Device) {
        Some(d) => Some(DeviceId::parse(d).ok_or_else(|| {
            format!(
                "invalid device id `{}` (expected EUI-64, e.g. 00-DB-12-34-56-78-90-A0)",
                show(d)
            )
        })?),
        None if payload.is_some() => payload.map(|p| DeviceId(p.originator)),
        None if code.is_device() => return Err("missing device id".into()),
        None => None,
    };
    let count = match f.get(Field::Count) {
        Some(c) => match std::str::from_utf8(c.trim_ascii())
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        {
            Some(n) if n >= 1 => n,
            _ => {
                return Err(format!(
                    "invalid count `{}` (expected a whole number of at least 1)",
                    show(c)
                ));
            }
        },
        None => 1,
    };
    let mut attrs = RecordAttrs::default();
    if let Some(r) = f.get(Field::Region) {
        attrs.region =
            Some(Region::parse(r).ok_or_else(|| format!("invalid region `{}`", show(r)))?);
    }
    if let Some(t) = f.get(Field::DeviceType) {
        attrs.device_type =
            Some(DeviceType::parse(t).ok_or_else(|| format!("invalid device type `{}`", show(t)))?);
    }
    if let Some(g) = f.get(Field::Generation) {
        attrs.generation =
            Some(Generation::parse(g).ok_or_else(|| format!("invalid generation `{}`", show(g)))?);
    }
    Ok(Event {
        kind: if code.is_device() {
            MessageKind::DeviceAlert
        } else {
            MessageKind::DccAlert
        },
        ts,
        device,
        code: Some(code),
        count,
        message_id: f
            .get(Field::MessageId)
            .map(|m| hash_bytes(m.trim_ascii()))
            .unwrap_or(0),
        attrs,
        firmware: payload.and_then(|p| p.firmware).map(|f| f.result()),
    })
}

/// `event_from_fields` for a row of a timestamp, a device id and an alert code alone, each
/// without blanks around it (`CsvLayout::plain`): the same event, or `None` where any part is
/// not valid, and the caller then asks `event_from_fields`, which words the reason. On the
/// reference job the general function's checks for the fields such a row lacks, trims and
/// the `Result` it returns were a tenth of the time spent on a row.
#[inline(always)]
pub(crate) fn plain_alert(ts: &[u8], id: &[u8], code: &[u8]) -> Option<Event> {
    let tight = |v: &[u8]| {
        matches!((v.first(), v.last()), (Some(a), Some(b))
            if !a.is_ascii_whitespace() && !b.is_ascii_whitespace())
    };
    if !(tight(ts) && tight(id) && tight(code)) {
        return None;
    }
    let code = AlertCode::parse(code)?;
    let ts = parse_timestamp(ts)?;
    if !in_window(ts) {
        return None;
    }
    let device = DeviceId::parse(id)?;
    let kind = if code.is_device() {
        MessageKind::DeviceAlert
    } else {
        MessageKind::DccAlert
    };
    Some(Event {
        kind,
        ..Event::alert(ts, device, code)
    })
}

/// Decodes a row's GBCS payload with a per-thread buffer (no allocation per record).
fn payload_fields(text: &[u8]) -> Result<gbcs::Gbcs, String> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        let bytes = gbcs::payload_bytes(text, buf).map_err(|e| format!("GBCS payload: {e}"))?;
        gbcs::decode(bytes).map_err(|e| format!("GBCS payload: {e}"))
    })
}

/// Iterates the lines of a chunk as (1-based line number, byte offset, line without `\r\n`).
pub fn lines(data: &[u8], first_line: u64, offset: u64) -> impl Iterator<Item = (u64, u64, &[u8])> {
    let mut pos = 0usize;
    let mut line = first_line;
    std::iter::from_fn(move || {
        if pos >= data.len() {
            return None;
        }
        let end = memchr::memchr(b'\n', &data[pos..])
            .map(|i| pos + i)
            .unwrap_or(data.len());
        let mut l = &data[pos..end];
        if let [rest @ .., b'\r'] = l {
            l = rest;
        }
        let item = (line, offset + pos as u64, l);
        pos = end + 1;
        line += 1;
        Some(item)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// `plain_alert` gives the event `event_from_fields` gives, or leaves the row to it:
        /// times across years and time zones (some out of range), ids in every form (some
        /// damaged), device and DCC codes (some invalid), blanks around any field.
        #[test]
        fn plain_alert_is_event_from_fields(
            (y, mo, d, h, mi, sec) in (1995u32..2040, 0u32..14, 0u32..33, 0u32..25, 0u32..61, 0u32..61),
            zone in 0usize..4,
            id in proptest::num::u64::ANY,
            id_form in 0usize..4,
            code in 0usize..6,
            blank in 0usize..8,
        ) {
            let zone = ["Z", "+01:00", "", "z"][zone];
            let ts = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{zone}");
            let hex = format!("{id:016X}");
            let id = match id_form {
                0 => hex.as_bytes().chunks(2).map(|p| std::str::from_utf8(p).unwrap()).collect::<Vec<_>>().join("-"),
                1 => hex.clone(),
                2 => hex.to_lowercase(),
                _ => format!("{}G", &hex[1..]),
            };
            let code = ["8F35", "81b8", "N12", "AD1", "XYZ1", "8F3"][code].to_string();
            let mut parts = [ts, id, code];
            if blank < 3 {
                parts[blank] = format!(" {}", parts[blank]);
            } else if blank < 6 {
                parts[blank - 3].push('\t');
            }
            let mut f = RawFields::default();
            f.values[Field::Timestamp as usize] = Some(parts[0].as_bytes());
            f.values[Field::Device as usize] = Some(parts[1].as_bytes());
            f.values[Field::Code as usize] = Some(parts[2].as_bytes());
            let general = event_from_fields(&f);
            match plain_alert(parts[0].as_bytes(), parts[1].as_bytes(), parts[2].as_bytes()) {
                Some(ev) => proptest::prop_assert_eq!(Ok(ev), general),
                None => proptest::prop_assert!(
                    general.is_err() || blank < 6,
                    "a row without blanks that the general path takes is the plain path's too"
                ),
            }
        }
    }

    #[test]
    fn aliases_match_common_spellings() {
        for (name, f) in [
            ("AlertCode", Field::Code),
            ("alert_code", Field::Code),
            ("code", Field::Code),
            ("DeviceID", Field::Device),
            ("device_id", Field::Device),
            ("eui", Field::Device),
            ("Time Stamp", Field::Timestamp),
            ("smets", Field::Generation),
            ("CSPRegion", Field::Region),
        ] {
            assert_eq!(Field::from_name(name.as_bytes()), Some(f), "{name}");
        }
        assert_eq!(Field::from_name(b"colour"), None);
    }

    #[test]
    fn column_map_parses() {
        let m: ColumnMap = "code=Alert Type, device=MPAN_EUI".parse().unwrap();
        assert_eq!(
            m.0,
            vec![
                (Field::Code, "Alert Type".into()),
                (Field::Device, "MPAN_EUI".into())
            ]
        );
        assert!(
            "nonsense=x"
                .parse::<ColumnMap>()
                .unwrap_err()
                .contains("fields are")
        );
        assert!("code".parse::<ColumnMap>().is_err());
    }

    #[test]
    fn lines_strip_crlf_and_number() {
        let v: Vec<_> = lines(b"a\r\nbb\n\nc", 5, 100).collect();
        assert_eq!(
            v,
            vec![
                (5, 100, &b"a"[..]),
                (6, 103, &b"bb"[..]),
                (7, 106, &b""[..]),
                (8, 107, &b"c"[..])
            ]
        );
    }
}
