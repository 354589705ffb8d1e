//! Writing generated records: alert streams as CSV, JSON lines or DUIS XML (with a GBCS payload
//! shaped like a real one), malformed records on purpose, and optional gzip.

use super::stream::Rec;
use crate::model::DeviceId;
use crate::model::time::timestamp_bytes;
use std::fs::File;
use std::io::Result;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

crate::keyword_enum!(
    /// The format of a generated alert stream.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Format {
        Csv = "csv": "CSV with a header row",
        Jsonl = "jsonl": "JSON lines",
        Duis = "duis": "DUIS XML documents back to back, with GBCS payloads",
    }
);

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Duis => "xml",
        }
    }
}

/// The service user that receives the alerts (recipient of every message).
pub const RECIPIENT: &str = "90-B3-D5-1F-30-01-00-00";
/// The DCC's own originator id, for DCC alerts.
pub const DCC_ORIGINATOR: &str = "90-B3-D5-1F-30-00-00-02";

/// A file being written, plain or gzip.
pub struct Out {
    inner: BufWriter<Box<dyn Write>>,
    pub path: PathBuf,
}

/// An I/O error that names the file (the generator's errors are plain I/O errors).
fn named(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

impl Out {
    pub fn create(dir: &Path, name: &str, gzip: bool) -> Result<Out> {
        let path = dir.join(if gzip {
            format!("{name}.gz")
        } else {
            name.to_string()
        });
        let f = File::create(&path).map_err(|e| named(&path, e))?;
        let w: Box<dyn Write> = if gzip {
            Box::new(flate2::write::GzEncoder::new(
                f,
                flate2::Compression::fast(),
            ))
        } else {
            Box::new(f)
        };
        Ok(Out {
            inner: BufWriter::with_capacity(1 << 20, w),
            path,
        })
    }

    pub fn w(&mut self) -> &mut impl Write {
        &mut self.inner
    }

    pub fn finish(self) -> Result<PathBuf> {
        let path = self.path.clone();
        let w = self
            .inner
            .into_inner()
            .map_err(|e| named(&path, e.into_error()))?;
        drop(w); // GzEncoder writes its trailer on drop
        Ok(path)
    }
}

/// The code as text, without allocating: `81B8`, `N24`, `AD1`.
fn code_text(r: &Rec) -> CodeText {
    let mut t = CodeText([0; 8], 0);
    let _ = std::fmt::Write::write_fmt(&mut t, format_args!("{}", r.code));
    t
}

struct CodeText([u8; 8], usize);

impl std::fmt::Write for CodeText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.1 + s.len();
        self.0
            .get_mut(self.1..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.1 = end;
        Ok(())
    }
}

impl std::ops::Deref for CodeText {
    type Target = str;
    fn deref(&self) -> &str {
        std::str::from_utf8(&self.0[..self.1]).unwrap_or("")
    }
}

impl std::fmt::Display for CodeText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self)
    }
}

/// Kinds of malformed record, cycled through by the generator.
pub const MALFORMED_KINDS: usize = 3;

pub struct AlertWriter {
    pub format: Format,
    out: Out,
    pub records: u64,
    b64: Vec<u8>,
    payload: Vec<u8>,
}

impl AlertWriter {
    pub fn create(dir: &Path, format: Format, gzip: bool) -> Result<AlertWriter> {
        let mut out = Out::create(dir, &format!("alerts.{}", format.extension()), gzip)?;
        if format == Format::Csv {
            out.w()
                .write_all(b"timestamp,device_id,alert_code,message_id,count\n")?;
        }
        Ok(AlertWriter {
            format,
            out,
            records: 0,
            b64: Vec::with_capacity(512),
            payload: Vec::with_capacity(256),
        })
    }

    pub fn finish(self) -> Result<PathBuf> {
        self.out.finish()
    }

    pub fn record(&mut self, r: &Rec) -> Result<()> {
        self.records += 1;
        let id = DeviceId(r.id).to_bytes();
        let ts = timestamp_bytes(r.ts);
        let code = code_text(r);
        let w = self.out.w();
        match self.format {
            Format::Csv => {
                w.write_all(&ts)?;
                w.write_all(b",")?;
                w.write_all(&id)?;
                writeln!(w, ",{code},{},{}", r.message, r.count)?;
            }
            Format::Jsonl => {
                w.write_all(b"{\"timestamp\":\"")?;
                w.write_all(&ts)?;
                w.write_all(b"\",\"device_id\":\"")?;
                w.write_all(&id)?;
                write!(
                    w,
                    "\",\"alert_code\":\"{code}\",\"message_id\":\"{}\"",
                    r.message
                )?;
                if r.count > 1 {
                    write!(w, ",\"count\":{}", r.count)?;
                }
                w.write_all(b"}\n")?;
            }
            Format::Duis => self.duis(r, &id, &ts, &{ code }, None)?,
        }
        Ok(())
    }

    /// Writes a record that fleetwatch must reject (kind `k` of `MALFORMED_KINDS`).
    pub fn malformed(&mut self, r: &Rec, k: usize) -> Result<&'static str> {
        self.records += 1;
        let (idb, tsb) = (DeviceId(r.id).to_bytes(), timestamp_bytes(r.ts));
        if self.format == Format::Duis {
            let code = code_text(r);
            let mut id = idb;
            let (code, cut, what): (&str, _, _) = match k % MALFORMED_KINDS {
                0 => ("ZZZZ", None, "invalid alert code"),
                1 => (&code, Some(260), "truncated document"),
                _ => {
                    id[3] = b'X';
                    id[4] = b'Q';
                    (&code, None, "invalid device id")
                }
            };
            self.duis(r, &id, &tsb, code, cut)?;
            return Ok(what);
        }
        let ts = std::str::from_utf8(&tsb).unwrap();
        let id = std::str::from_utf8(&idb).unwrap();
        let w = self.out.w();
        let what = match (self.format, k % MALFORMED_KINDS) {
            (Format::Csv, 0) => {
                writeln!(w, "{ts},{id},ZZZZ,{},1", r.message)?;
                "invalid alert code"
            }
            (Format::Csv, 1) => {
                writeln!(w, "{ts},not-a-device,{},{},1", r.code, r.message)?;
                "invalid device id"
            }
            (Format::Csv, _) => {
                writeln!(w, "{ts},{id}")?;
                "missing fields"
            }
            (Format::Jsonl, 0) => {
                writeln!(
                    w,
                    "{{\"timestamp\":\"{ts}\",\"device_id\":\"{id}\",\"alert_code\":\"ZZZZ\"}}"
                )?;
                "invalid alert code"
            }
            (Format::Jsonl, 1) => {
                writeln!(
                    w,
                    "{{\"timestamp\":\"{ts}\",\"device_id\":\"{id}\",\"alert_co"
                )?;
                "truncated JSON"
            }
            (Format::Jsonl, _) => {
                writeln!(
                    w,
                    "{{\"timestamp\":\"31-02-2024\",\"device_id\":\"{id}\",\"alert_code\":\"{}\"}}",
                    r.code
                )?;
                "invalid timestamp"
            }
            (Format::Duis, _) => unreachable!("DUIS is written above"),
        };
        Ok(what)
    }

    /// One DUIS `Response` document; `cut` truncates it after that many bytes (a torn write).
    fn duis(
        &mut self,
        r: &Rec,
        id: &[u8],
        ts: &[u8],
        code: &str,
        cut: Option<usize>,
    ) -> Result<()> {
        let mut doc: Vec<u8> = Vec::with_capacity(1024);
        let id_s = std::str::from_utf8(id).unwrap_or("");
        let ts_s = std::str::from_utf8(ts).unwrap_or("");
        let dcc = !r.code.is_device();
        let originator = if dcc { DCC_ORIGINATOR } else { id_s };
        write!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.4\">\n\
             \x20 <sr:Header>\n\
             \x20   <sr:ResponseID>{originator}:{RECIPIENT}:{}</sr:ResponseID>\n\
             \x20   <sr:ResponseCode>I0</sr:ResponseCode>\n\
             \x20   <sr:ResponseDateTime>{ts_s}</sr:ResponseDateTime>\n\
             \x20 </sr:Header>\n\
             \x20 <sr:Body>",
            r.message
        )?;
        let future_dated = matches!(r.code.device_code(), Some(0x8F66 | 0x8F67));
        if dcc {
            let mpxn = r.id % 10_000_000_000_000;
            write!(
                doc,
                "<sr:DCCAlertMessage><sr:DCCAlertCode>{code}</sr:DCCAlertCode><sr:DCCAlert><sr:PowerOutageEvent>\
                 <sr:CommsHubDeviceID>{id_s}</sr:CommsHubDeviceID><sr:StartDateTime>{ts_s}</sr:StartDateTime>\
                 <sr:MPxN>{mpxn:013}</sr:MPxN></sr:PowerOutageEvent></sr:DCCAlert></sr:DCCAlertMessage>"
            )?;
        } else {
            self.payload.clear();
            super::gbcs::alert(r, &mut self.payload);
            self.b64.clear();
            base64(&self.payload, &mut self.b64);
            let b64 = std::str::from_utf8(&self.b64).unwrap();
            if future_dated {
                write!(
                    doc,
                    "<sr:ResponseMessage><sr:ServiceReference>11.3</sr:ServiceReference>\
                     <sr:ServiceReferenceVariant>11.3</sr:ServiceReferenceVariant>\
                     <sr:FutureDatedDeviceAlertMessage><sr:FutureDatedAlertCode>{code}</sr:FutureDatedAlertCode>\
                     <sr:GBCSPayload>{b64}</sr:GBCSPayload><sr:InstructionNumber>1</sr:InstructionNumber>\
                     <sr:TotalCommandInstructions>1</sr:TotalCommandInstructions>\
                     </sr:FutureDatedDeviceAlertMessage></sr:ResponseMessage>"
                )?;
            } else {
                write!(
                    doc,
                    "<sr:DeviceAlertMessage><sr:AlertCode>{code}</sr:AlertCode>"
                )?;
                if r.count > 1 {
                    write!(
                        doc,
                        "<sr:ThrottledAlertSequenceId>{}</sr:ThrottledAlertSequenceId>\
                         <sr:ThrottledAlertCount>{}</sr:ThrottledAlertCount>",
                        r.message % 100_000,
                        r.count
                    )?;
                }
                write!(
                    doc,
                    "<sr:GBCSPayload>{b64}</sr:GBCSPayload></sr:DeviceAlertMessage>"
                )?;
            }
        }
        doc.extend_from_slice(b"</sr:Body>\n</sr:Response>\n");
        if let Some(n) = cut {
            doc.truncate(n.min(doc.len() - 1));
            doc.push(b'\n');
        }
        self.out.w().write_all(&doc)?;
        Ok(())
    }
}

/// Standard base64 with padding.
pub fn base64(data: &[u8], out: &mut Vec<u8>) {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63]);
        out.push(T[(n >> 12) as usize & 63]);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63]
        } else {
            b'='
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut v = Vec::new();
            base64(i.as_bytes(), &mut v);
            assert_eq!(v, o.as_bytes());
        }
    }
}
