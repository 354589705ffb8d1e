//! SMETS1 migration: how each cohort's migration progresses, week by week.
//!
//! The input is a migration log (`log.rs`): one row per device event (migrated,
//! commissioned/operated by a supplier, failed with a reason), with the device's cohort (IOC,
//! MOC, MOC Secure, FOC). `weekly.rs` turns it into per-cohort weekly counts, cumulative curves,
//! the backlog (and what missing report days add to it), the pace and its changes, failures by
//! reason and reporting gaps. `outlook.rs` says where each cohort stands (size, remaining,
//! stall) and `forecast.rs` when it finishes, from its pace since the last change, with a
//! range. `report.rs` puts the log, its analysis and the cohorts' alert rates into one typed
//! `MigrationReport`.

pub mod forecast;
pub mod log;
pub mod outlook;
pub mod report;
pub mod week;
pub mod weekly;

/// The cohorts in migration order; other names are kept as they are written.
pub const COHORTS: [&str; 4] = ["IOC", "MOC", "MOC Secure", "FOC"];

/// The canonical name of a cohort: `moc_secure`, `MOC (Secure)` -> `MOC Secure`.
pub fn cohort_name(s: &str) -> String {
    let squashed: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_uppercase();
    COHORTS
        .iter()
        .find(|c| c.replace(' ', "").to_ascii_uppercase() == squashed)
        .map(|c| c.to_string())
        .unwrap_or_else(|| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cohort_names() {
        assert_eq!(super::cohort_name("moc_secure"), "MOC Secure");
        assert_eq!(super::cohort_name("MOC (Secure)"), "MOC Secure");
        assert_eq!(super::cohort_name(" foc "), "FOC");
        assert_eq!(super::cohort_name("Pilot"), "Pilot");
    }
}
