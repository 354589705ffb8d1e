//! The OTA firmware campaign: which ESMEs are targeted, and for each the attempts and their
//! outcome at every stage (distribution, transfer, verification, activation, running the new
//! version), with realistic failure reasons, retries, devices that fail every time, devices
//! never heard from, and one model whose hardware does not match the image.

use super::fleet::{Fleet, model_index};
use super::rng::Rng;
pub use crate::model::firmware::Stage;
use crate::model::time::day_start;
use crate::model::{Day, DeviceType, Generation, Millis};
use serde::Serialize;

pub const CAMPAIGN: &str = "OTA-2024-ESME-4.0";
pub const TARGET_VERSION: &str = "4.0.0";
/// Models the campaign targets (SMETS2 ESMEs); the last one's hardware cannot take the image.
pub const TARGET_MODELS: [&str; 3] = ["EDMI-ES2", "SEC-LIB110", "ARO-AM2"];
pub const HARDWARE_MISMATCH_MODEL: &str = "ARO-AM2";
/// Attempts before the campaign gives up on a device.
pub const MAX_ATTEMPTS: u8 = 3;

/// GBCS response codes carried in firmware alert payloads (CCS08 transfer, CS06 activation).
pub fn response_code(stage: Stage, reason: &str) -> u8 {
    match (stage, reason) {
        (Stage::Transfer, "image discarded") => 1,
        (Stage::Transfer, "hardware version mismatch") => 2,
        (Stage::Transfer, "file transfer failure") => 3,
        (Stage::Activation, "no image held") => 1,
        (Stage::Activation, "hash mismatch") => 2,
        (Stage::Activation, "activation failure") => 3,
        _ => 0,
    }
}

#[derive(Clone, Debug)]
pub struct OtaEvent {
    pub ts: Millis,
    pub device: u32,
    pub stage: Stage,
    pub ok: bool,
    pub reason: &'static str,
    pub attempt: u8,
    /// Message id shared by the outcome row and the alert record.
    pub message: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct OtaTruth {
    pub campaign: String,
    pub target_version: String,
    pub target_models: Vec<String>,
    pub start: String,
    pub targeted: usize,
    /// Devices running the target version by the end (an 8F43 with it was sent).
    pub upgraded: usize,
    /// Targeted devices not upgraded whose last attempt failed (a retry that got past the
    /// failure, its activation or running record beyond the data, is in progress instead).
    pub failed_not_upgraded: usize,
    /// Targeted devices not upgraded with a failed attempt and a later attempt that got past
    /// it before the data ends.
    pub retry_in_progress: usize,
    /// Targeted devices that never reported anything after distribution.
    pub never_heard_from: usize,
    /// Devices that fail every attempt (file transfer failure) and need a visit.
    pub always_failing: usize,
    pub hardware_mismatch_model: String,
    pub hardware_mismatch_devices: usize,
    /// Devices that reached `MAX_ATTEMPTS` failed attempts.
    pub max_attempts_reached: usize,
    pub max_attempts: u8,
    pub attempts: usize,
    pub outcome_rows: usize,
    /// Outcome rows written twice (same message id), and rows written a day late.
    pub duplicated_rows: usize,
    pub late_rows: usize,
    /// The new firmware multiplies this code's rate on upgraded devices by `factor`.
    pub firmware_effect: FirmwareEffect,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FirmwareEffect {
    pub code: String,
    pub factor: f64,
}

/// 81B8 on upgraded devices is halved by the new firmware.
pub const EFFECT_CODE: u16 = 0x81B8;
pub const EFFECT_FACTOR: f64 = 0.5;

pub struct OtaPlan {
    /// Events in time order.
    pub events: Vec<OtaEvent>,
    /// Targeted device indexes, in fleet order.
    pub targets: Vec<u32>,
    /// Per device: when it started running the target version (`Millis::MAX` if never).
    pub upgraded_at: Vec<Millis>,
    pub truth: OtaTruth,
}

fn pick(rng: &mut Rng, items: &[(&'static str, f64)]) -> &'static str {
    let w: Vec<f64> = items.iter().map(|i| i.1).collect();
    items[rng.weighted(&w)].0
}

pub fn plan(fleet: &Fleet, seed: u64) -> OtaPlan {
    let mut rng = Rng::fork(seed, "ota");
    let start: Day = fleet.start + (fleet.days as Day * 3 / 10);
    let window = (fleet.days as Day * 2 / 5).max(1);
    let models: Vec<usize> = TARGET_MODELS.iter().map(|m| model_index(m)).collect();
    let mismatch = model_index(HARDWARE_MISMATCH_MODEL);
    let mut truth = OtaTruth {
        campaign: CAMPAIGN.into(),
        target_version: TARGET_VERSION.into(),
        target_models: TARGET_MODELS.iter().map(|s| s.to_string()).collect(),
        start: crate::model::time::format_day(start),
        hardware_mismatch_model: HARDWARE_MISMATCH_MODEL.into(),
        max_attempts: MAX_ATTEMPTS,
        firmware_effect: FirmwareEffect {
            code: format!("{EFFECT_CODE:04X}"),
            factor: EFFECT_FACTOR,
        },
        ..Default::default()
    };
    let mut events = Vec::new();
    let mut targets = Vec::new();
    let mut upgraded_at = vec![Millis::MAX; fleet.devices.len()];
    let end = fleet.end();
    let mut message = 0u64;
    for (i, d) in fleet.devices.iter().enumerate() {
        if d.device_type != DeviceType::Esme
            || d.generation != Generation::Smets2
            || !models.contains(&(d.model as usize))
            || d.installed >= start
        {
            continue;
        }
        targets.push(i as u32);
        truth.targeted += 1;
        let hw = d.model as usize == mismatch;
        truth.hardware_mismatch_devices += usize::from(hw);
        let silent = rng.chance(0.005);
        let stubborn = !hw && !silent && rng.chance(0.01);
        truth.never_heard_from += usize::from(silent);
        truth.always_failing += usize::from(stubborn);
        // Waves: the rollout speeds up over its window (density rising linearly).
        let mut day = start + (rng.f64().sqrt() * window as f64) as Day;
        let mut failed = 0u8;
        // Whether a stage past distribution succeeded after the last failure.
        let mut got_past_failure = false;
        let mut push = |ts: Millis, stage: Stage, ok: bool, reason, attempt| {
            message += 1;
            events.push(OtaEvent {
                ts,
                device: i as u32,
                stage,
                ok,
                reason,
                attempt,
                message,
            });
        };
        'attempts: for attempt in 1..=MAX_ATTEMPTS {
            if day >= end {
                break;
            }
            truth.attempts += 1;
            // Runs the stages in turn; a failure ends the attempt with its time, stage and reason.
            let (ts, stage, reason) = 'attempt: {
                let mut ts = day_start(day) + rng.range(3600, 5 * 3600) * 1000;
                if !silent && rng.chance(0.02) {
                    break 'attempt (ts, Stage::Distribution, "CSP delivery failure");
                }
                push(ts, Stage::Distribution, true, "", attempt);
                if silent {
                    break 'attempts;
                }
                ts += rng.range(2 * 3600, 6 * 3600) * 1000;
                let transfer_fail = if hw {
                    Some("hardware version mismatch")
                } else if stubborn {
                    Some("file transfer failure")
                } else if rng.chance(0.04) {
                    Some(pick(
                        &mut rng,
                        &[("file transfer failure", 0.7), ("image discarded", 0.3)],
                    ))
                } else {
                    None
                };
                if let Some(reason) = transfer_fail {
                    break 'attempt (ts, Stage::Transfer, reason);
                }
                push(ts, Stage::Transfer, true, "", attempt);
                got_past_failure = true;
                ts += rng.range(600, 3600) * 1000;
                if rng.chance(0.015) {
                    break 'attempt (ts, Stage::Verification, "verification failed");
                }
                push(ts, Stage::Verification, true, "", attempt);
                // Activation is future-dated to 02:00 the next day.
                let act = day_start(day + 1) + 2 * 3_600_000 + rng.range(0, 1800) * 1000;
                if act >= day_start(end) {
                    break 'attempts;
                }
                if rng.chance(0.02) {
                    let reason = pick(
                        &mut rng,
                        &[
                            ("no image held", 0.3),
                            ("hash mismatch", 0.3),
                            ("activation failure", 0.4),
                        ],
                    );
                    break 'attempt (act, Stage::Activation, reason);
                }
                push(act, Stage::Activation, true, "", attempt);
                let run = act + rng.range(30, 300) * 1000;
                if run < day_start(end) {
                    push(run, Stage::Running, true, "", attempt);
                    upgraded_at[i] = run;
                    truth.upgraded += 1;
                }
                break 'attempts;
            };
            push(ts, stage, false, reason, attempt);
            failed += 1;
            got_past_failure = false;
            if stage == Stage::Transfer && hw && failed >= 2 {
                break; // a mismatch is not retried a third time
            }
            day += rng.range(3, 7) as Day;
        }
        if upgraded_at[i] == Millis::MAX && failed > 0 {
            if got_past_failure {
                truth.retry_in_progress += 1;
            } else {
                truth.failed_not_upgraded += 1;
            }
        }
        if failed >= MAX_ATTEMPTS {
            truth.max_attempts_reached += 1;
        }
    }
    events.sort_by_key(|e| (e.ts, e.device, e.message));
    OtaPlan {
        events,
        targets,
        upgraded_at,
        truth,
    }
}
