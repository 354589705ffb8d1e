//! `fleetwatch gbcs`: decode GBCS messages (hex or base64) given on the command line or one
//! per line on stdin: what an analyst pastes from a log.

use super::Status;
use anyhow::Result;
use fleetwatch::catalogue;
use fleetwatch::decode::gbcs::{Encoding, Protection, decode, payload_bytes};
use fleetwatch::model::time::format_timestamp;
use fleetwatch::model::{AlertCode, DeviceId};
use fleetwatch::render::OutputFormat;
use fleetwatch::render::records::Records;
use std::io::BufRead;

pub fn run(messages: Vec<String>, format: OutputFormat) -> Result<Status> {
    let texts: Vec<String> = if messages.is_empty() || messages == ["-"] {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<std::io::Result<_>>()?
    } else {
        messages
    };
    let mut r = Records::new(&[
        ("n", true),
        ("kind", false),
        ("protection", false),
        ("encoding", false),
        ("originator", false),
        ("counter", true),
        ("message_code", false),
        ("alert_code", false),
        ("name", false),
        ("device_time", false),
        ("command_counter", true),
        ("firmware", false),
        ("error", false),
    ]);
    let mut buf = Vec::new();
    let mut failed = false;
    for (i, text) in texts.iter().filter(|t| !t.trim().is_empty()).enumerate() {
        let mut row = vec![(i + 1).to_string()];
        match payload_bytes(text.as_bytes(), &mut buf)
            .map_err(|e| e.to_string())
            .and_then(|b| decode(b).map_err(|e| e.to_string()))
        {
            Ok(g) => {
                row.extend([
                    match g.cra {
                        1 => "command",
                        2 => "response",
                        _ => "alert",
                    }
                    .to_string(),
                    match g.protection {
                        Protection::Signed => "signed",
                        Protection::MacOnly => "MAC only",
                    }
                    .to_string(),
                    match g.encoding {
                        Encoding::Dlms => "DLMS",
                        Encoding::Gbz => "GBZ",
                        Encoding::Asn1 => "ASN.1",
                        Encoding::Other => "",
                    }
                    .to_string(),
                    DeviceId(g.originator).to_string(),
                    g.counter.to_string(),
                    format!("{:04X}", g.message_code),
                    g.alert_code.map(|c| format!("{c:04X}")).unwrap_or_default(),
                    g.alert_code
                        .map(|c| catalogue::describe(AlertCode::device(c)).to_string())
                        .unwrap_or_default(),
                    g.timestamp.map(format_timestamp).unwrap_or_default(),
                    g.command_counter.map(|c| c.to_string()).unwrap_or_default(),
                    g.firmware
                        .map(|f| format!("{} {}: {}", f.stage.name(), f.version_text(), f.reason()))
                        .unwrap_or_default(),
                    String::new(),
                ]);
            }
            Err(e) => {
                failed = true;
                row.extend(std::iter::repeat_n(String::new(), 11));
                row.push(e);
            }
        }
        r.push(row);
    }
    super::stdout_write(|w| r.write(w, format, serde_json::json!({})))?;
    Ok(if failed {
        Status::CompletedWithRejects
    } else {
        Status::Ok
    })
}
