//! Judging one device from its events: how far it got, how often it failed, whether it runs
//! the target version. Events are sorted and exact repeats dropped first, so the order and
//! number of deliveries never change the answer.

use super::events::FwEvent;
use crate::model::Millis;
use crate::model::firmware::Stage;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Runs the target version: an 8F43 or running record carrying it.
    Upgraded,
    /// Not upgraded, and its last attempt failed: no stage past distribution succeeded after
    /// its last failure.
    Failed,
    /// Events, not yet running the target version, and no failure since the last success (a
    /// retry under way, or an activation whose version is unconfirmed).
    InProgress,
    /// The image was distributed, and the device never reported anything.
    NeverHeardFrom,
    /// No event at all.
    NotStarted,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Upgraded => "upgraded",
            Status::Failed => "failed",
            Status::InProgress => "in progress",
            Status::NeverHeardFrom => "never heard from",
            Status::NotStarted => "not started",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceOutcome {
    pub status: Status,
    /// Stages reached successfully (a later success implies the earlier stages).
    pub reached: [bool; 5],
    pub upgraded_at: Option<Millis>,
    /// An 8F43 without a version: activation happened, the version is unconfirmed.
    pub version_unconfirmed: bool,
    pub first_seen: Option<Millis>,
    pub last_seen: Option<Millis>,
    pub attempts: u32,
    pub failed_attempts: u32,
    /// Distinct (stage, reason) failures, in order of first occurrence.
    pub failures: Vec<(Stage, u16)>,
    /// The reason of the last failure (0 none).
    pub last_reason: u16,
    pub last_failed_stage: Option<Stage>,
    /// When the first failure and the first activation (or upgrade) happened: which came
    /// first decides how the device's first attempt ended (guard rails).
    pub first_failure_at: Option<Millis>,
    pub first_activated_at: Option<Millis>,
}

/// Judges a device. `target` is the interned target version.
///
/// When the device has outcome records, they alone give its attempts and failures; its
/// alerts still count as evidence of the stages it reached (an alert and the record of the
/// same outcome must not count as two failures).
pub fn judge(events: &mut Vec<FwEvent>, target: u16) -> DeviceOutcome {
    events.sort();
    events.dedup();
    let has_records = events.iter().any(|e| !e.from_alert);
    let mut o = DeviceOutcome {
        status: Status::NotStarted,
        reached: [false; 5],
        upgraded_at: None,
        version_unconfirmed: false,
        first_seen: events.first().map(|e| e.ts),
        last_seen: events.last().map(|e| e.ts),
        attempts: 0,
        failed_attempts: 0,
        failures: Vec::new(),
        last_reason: 0,
        last_failed_stage: None,
        first_failure_at: None,
        first_activated_at: None,
    };
    let mut failed_attempt_ids: Vec<u8> = Vec::new();
    let mut unnumbered_failures = 0u32;
    let mut max_attempt = 0u8;
    let mut heard_from = false;
    // The last counted failure, and the last success past distribution: a success after the
    // last failure means a later attempt got further, and the device is not failed.
    let mut last_failure_at: Option<Millis> = None;
    let mut last_success_at: Option<Millis> = None;
    for e in events.iter() {
        max_attempt = max_attempt.max(e.attempt);
        heard_from |= e.stage > Stage::Distribution;
        if e.ok {
            let upto = match e.stage {
                Stage::Running if e.version == target && target != 0 => {
                    o.upgraded_at.get_or_insert(e.ts);
                    Stage::Running
                }
                Stage::Running => {
                    if e.version == 0 {
                        o.version_unconfirmed = true;
                    }
                    Stage::Activation
                }
                s => s,
            };
            if upto >= Stage::Activation {
                o.first_activated_at.get_or_insert(e.ts);
            }
            if upto >= Stage::Transfer {
                last_success_at = Some(e.ts);
            }
            for s in Stage::ALL.into_iter().filter(|&s| s <= upto) {
                o.reached[s as usize] = true;
            }
        } else if !(has_records && e.from_alert) {
            if !o.failures.contains(&(e.stage, e.reason)) {
                o.failures.push((e.stage, e.reason));
            }
            o.last_reason = e.reason;
            o.last_failed_stage = Some(e.stage);
            o.first_failure_at.get_or_insert(e.ts);
            last_failure_at = Some(e.ts);
            if e.attempt > 0 {
                if !failed_attempt_ids.contains(&e.attempt) {
                    failed_attempt_ids.push(e.attempt);
                }
            } else {
                unnumbered_failures += 1;
            }
        }
    }
    o.failed_attempts = failed_attempt_ids.len() as u32 + unnumbered_failures;
    let succeeded_after = o.upgraded_at.is_some() || o.reached[Stage::Activation as usize];
    o.attempts = (max_attempt as u32).max(o.failed_attempts + u32::from(succeeded_after));
    if o.attempts == 0 && !events.is_empty() {
        o.attempts = 1;
    }
    let retried_past_failure = match (last_failure_at, last_success_at) {
        (Some(f), Some(s)) => s > f,
        _ => false,
    };
    o.status = if o.upgraded_at.is_some() {
        Status::Upgraded
    } else if o.failed_attempts > 0 && !retried_past_failure {
        Status::Failed
    } else if events.is_empty() {
        Status::NotStarted
    } else if !heard_from {
        Status::NeverHeardFrom
    } else {
        Status::InProgress
    };
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: u16 = 7;
    const HOUR: Millis = 3_600_000;

    fn ev(h: i64, stage: Stage, ok: bool, attempt: u8) -> FwEvent {
        FwEvent {
            ts: h * HOUR,
            stage,
            ok,
            reason: if ok { 0 } else { 3 },
            version: if stage == Stage::Running { TARGET } else { 0 },
            attempt,
            from_alert: false,
        }
    }

    fn clean(attempt: u8, from: i64) -> Vec<FwEvent> {
        Stage::ALL
            .iter()
            .enumerate()
            .map(|(i, &s)| ev(from + i as i64, s, true, attempt))
            .collect()
    }

    #[test]
    fn clean_success() {
        let o = judge(&mut clean(1, 0), TARGET);
        assert_eq!(o.status, Status::Upgraded);
        assert_eq!(o.reached, [true; 5]);
        assert_eq!((o.attempts, o.failed_attempts), (1, 0));
        assert_eq!(o.upgraded_at, Some(4 * HOUR));
    }

    #[test]
    fn retry_then_success_is_one_upgraded_device_with_one_failed_attempt() {
        let mut v = vec![
            ev(0, Stage::Distribution, true, 1),
            ev(1, Stage::Transfer, false, 1),
        ];
        v.extend(clean(2, 100));
        let o = judge(&mut v, TARGET);
        assert_eq!(o.status, Status::Upgraded);
        assert_eq!((o.attempts, o.failed_attempts), (2, 1));
        assert_eq!(o.failures, vec![(Stage::Transfer, 3)]);
    }

    #[test]
    fn out_of_order_and_duplicated_events_give_the_same_answer() {
        let mut v = vec![
            ev(0, Stage::Distribution, true, 1),
            ev(1, Stage::Transfer, false, 1),
        ];
        v.extend(clean(2, 100));
        let want = judge(&mut v.clone(), TARGET);
        let mut shuffled: Vec<FwEvent> = v.iter().rev().copied().collect();
        shuffled.extend(v.iter().copied());
        assert_eq!(judge(&mut shuffled, TARGET), want);
    }

    #[test]
    fn missing_events_are_implied_by_later_ones() {
        // Only the running record arrived: every stage before it was passed.
        let mut v = vec![ev(5, Stage::Running, true, 1)];
        let o = judge(&mut v, TARGET);
        assert_eq!(o.status, Status::Upgraded);
        assert_eq!(o.reached, [true; 5]);
    }

    #[test]
    fn failures_never_heard_from_and_unconfirmed_versions() {
        let mut v = vec![
            ev(0, Stage::Distribution, true, 1),
            ev(1, Stage::Transfer, false, 1),
            ev(90, Stage::Transfer, false, 2),
            ev(200, Stage::Transfer, false, 3),
        ];
        let o = judge(&mut v, TARGET);
        assert_eq!(o.status, Status::Failed);
        assert_eq!((o.attempts, o.failed_attempts), (3, 3));
        assert_eq!(
            o.failures.len(),
            1,
            "same stage and reason: one failure kind"
        );
        let o = judge(&mut vec![ev(0, Stage::Distribution, true, 1)], TARGET);
        assert_eq!(o.status, Status::NeverHeardFrom);
        assert_eq!(judge(&mut vec![], TARGET).status, Status::NotStarted);
        // An 8F43 alert without a version: activated, not counted as upgraded.
        let mut a = vec![FwEvent {
            version: 0,
            from_alert: true,
            ..ev(3, Stage::Running, true, 0)
        }];
        let o = judge(&mut a, TARGET);
        assert_eq!(o.status, Status::InProgress);
        assert!(o.version_unconfirmed && o.reached[Stage::Activation as usize]);
        assert!(!o.reached[Stage::Running as usize]);
    }

    /// An alert-only event: no attempt number, the version a payload gave (0 none).
    fn alert(h: i64, stage: Stage, ok: bool, version: u16) -> FwEvent {
        FwEvent {
            ts: h * HOUR,
            stage,
            ok,
            reason: if ok { 0 } else { 3 },
            version,
            attempt: 0,
            from_alert: true,
        }
    }

    #[test]
    fn a_later_attempt_that_succeeded_is_never_failed() {
        // The device: 8F89 (transfer failed), then 8F8A, 8F72 and, the next day, 8F43.
        let retry = |v43: u16| {
            vec![
                alert(10, Stage::Transfer, false, 0),
                alert(30, Stage::Transfer, true, 0),
                alert(31, Stage::Verification, true, 0),
                alert(50, Stage::Running, true, v43),
            ]
        };
        // No version on the 8F43: activated, version unconfirmed, so in progress.
        let o = judge(&mut retry(0), TARGET);
        assert_eq!(o.status, Status::InProgress);
        assert!(o.version_unconfirmed);
        // Its failed attempt still counts (attempts, failure kinds for the Pareto).
        assert_eq!((o.attempts, o.failed_attempts), (2, 1));
        assert_eq!(o.failures, vec![(Stage::Transfer, 3)]);
        assert_eq!(o.first_failure_at, Some(10 * HOUR));
        // The 8F43 carries the target version: upgraded.
        let o = judge(&mut retry(TARGET), TARGET);
        assert_eq!(o.status, Status::Upgraded);
        assert_eq!(o.upgraded_at, Some(50 * HOUR));
        assert_eq!(o.failures, vec![(Stage::Transfer, 3)]);
        // Another version running: not upgraded, but the retry succeeded, so not failed.
        assert_eq!(judge(&mut retry(9), TARGET).status, Status::InProgress);
        // A retry under way (its transfer succeeded) is in progress too.
        let mut v = retry(0);
        v.truncate(2);
        assert_eq!(judge(&mut v, TARGET).status, Status::InProgress);
        // Arrival order does not matter.
        let mut rev: Vec<FwEvent> = retry(0).into_iter().rev().collect();
        assert_eq!(judge(&mut rev, TARGET).status, Status::InProgress);
    }

    #[test]
    fn a_failure_after_the_last_success_is_failed() {
        // The retry got through transfer, then its activation failed.
        let mut v = vec![
            alert(10, Stage::Transfer, false, 0),
            alert(30, Stage::Transfer, true, 0),
            alert(31, Stage::Verification, true, 0),
            alert(50, Stage::Activation, false, 0),
        ];
        let o = judge(&mut v, TARGET);
        assert_eq!(o.status, Status::Failed);
        assert_eq!(o.failed_attempts, 2);
        // A retry only distributed (the device has not answered since it failed) is failed.
        let mut v = vec![
            ev(0, Stage::Distribution, true, 1),
            ev(1, Stage::Transfer, false, 1),
            ev(90, Stage::Distribution, true, 2),
        ];
        assert_eq!(judge(&mut v, TARGET).status, Status::Failed);
        // Records: attempt 2's transfer and verification succeeded after attempt 1 failed.
        let mut v = vec![
            ev(1, Stage::Transfer, false, 1),
            ev(90, Stage::Distribution, true, 2),
            ev(91, Stage::Transfer, true, 2),
            ev(92, Stage::Verification, true, 2),
        ];
        let o = judge(&mut v, TARGET);
        assert_eq!(o.status, Status::InProgress);
        assert_eq!((o.attempts, o.failed_attempts), (2, 1));
    }

    #[test]
    fn an_alert_and_a_record_of_the_same_failure_count_once() {
        let mut v = vec![
            ev(1, Stage::Transfer, false, 1),
            FwEvent {
                from_alert: true,
                attempt: 0,
                reason: 0,
                ..ev(1, Stage::Transfer, false, 1)
            },
        ];
        let o = judge(&mut v, TARGET);
        assert_eq!(o.failed_attempts, 1);
        // Alerts alone count their failures.
        let mut a = vec![
            FwEvent {
                from_alert: true,
                attempt: 0,
                ..ev(1, Stage::Transfer, false, 0)
            },
            FwEvent {
                from_alert: true,
                attempt: 0,
                ..ev(50, Stage::Verification, false, 0)
            },
        ];
        assert_eq!(judge(&mut a, TARGET).failed_attempts, 2);
    }
}
