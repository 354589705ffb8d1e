//! The `fleetwatch` command line: parse arguments, call the library, map the outcome to an
//! exit status. Everything testable lives in the library.

use clap::{Parser, Subcommand};
use fleetwatch::analyze::alerts::{AlertQuery, CodeFilter, Dedup, GroupBy};
use fleetwatch::analyze::labels::Labels;
use fleetwatch::analyze::spikes::SpikeParams;
mod cli;

use cli::Status;
use cli::commands as cmd;
use fleetwatch::decode::ColumnMap;
use fleetwatch::engine::scan::ReadOptions;
use fleetwatch::generate::Format;
use fleetwatch::model::Day;
use fleetwatch::render::OutputFormat;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

const EXIT_HELP: &str = "\
Exit status: 0 ok; 1 failed (an input could not be read, or another error);
2 usage error; 3 completed, but some records were rejected (see the quarantine file).";

/// Smart-meter fleet alert analytics: alerts per 1,000 devices per CSP region, from DUIS XML,
/// CSV and JSON lines (plain, gzip or zstd).
#[derive(Parser)]
#[command(name = "fleetwatch", version, after_help = EXIT_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Alert counts, distinct alerting devices, installed devices and alerts per 1,000 devices
    /// per day, per group.
    ///
    /// Inputs are files, directories (read recursively) or `-` for stdin, in DUIS XML, CSV or
    /// JSON lines, plain or compressed with gzip or zstd: the format is detected from the content.
    ///
    /// Example: fleetwatch alerts samples/alerts.csv --inventory samples/inventory.csv --by region,code
    #[command(after_help = EXIT_HELP)]
    Alerts {
        /// Alert inputs: files, directories, or `-` for stdin.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Device inventory (one row per device, or a count table). Without it, rates are n/a.
        #[arg(long, short = 'i')]
        inventory: Option<PathBuf>,
        /// Dimensions to group by, comma-separated: day, region, type, gen, code, category, model, firmware.
        #[arg(long, default_value = "day,region,type,gen,code")]
        by: GroupBy,
        /// Keep only these codes and/or categories, e.g. `81B8,8F35` or `supply,tamper`.
        #[arg(long, value_parser = CodeFilter::parse)]
        codes: Option<CodeFilter>,
        /// First day to include (YYYY-MM-DD, UTC).
        #[arg(long, value_parser = parse_day)]
        since: Option<Day>,
        /// Last day to include (YYYY-MM-DD, UTC).
        #[arg(long, value_parser = parse_day)]
        until: Option<Day>,
        /// Skip the distinct alerting-device count (the `devices` column): counts and rates are
        /// unchanged, and big inputs read faster (no per-group sketch to update per record).
        #[arg(long)]
        no_distinct: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Draw one chart as PNG or SVG (by the extension of --out).
    ///
    /// Kinds: rate (alerts per 1,000 devices per day, a line per CSP region), top-codes
    /// (stacked bars per region), heatmap (code x region), growth (alerts and installed base on
    /// twin axes). Each region keeps its colour in every chart.
    ///
    /// Example: fleetwatch chart rate samples/alerts.csv -i samples/inventory.csv --codes supply --out supply.png
    #[command(after_help = EXIT_HELP)]
    Chart {
        #[arg(value_enum)]
        kind: fleetwatch::render::chart::ChartKind,
        #[command(flatten)]
        selection: SelectionArgs,
        /// The chart file: .png or .svg.
        #[arg(long, short = 'o')]
        out: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Write a self-contained HTML report (inline charts, totals, sortable tables) with the
    /// charts as PNG and SVG and the tables as CSV, into a directory.
    ///
    /// Example: fleetwatch report samples/alerts.csv -i samples/inventory.csv --out report/
    #[command(after_help = EXIT_HELP)]
    Report {
        #[command(flatten)]
        selection: SelectionArgs,
        /// Output directory (created if needed).
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// SMETS1 migration log(s): adds the migration charts and tables.
        #[arg(long, value_name = "FILE")]
        migration: Vec<PathBuf>,
        /// Devices in a cohort for the migration forecast, e.g. `FOC=3132` (repeatable).
        #[arg(long, value_name = "COHORT=DEVICES")]
        cohort_size: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Find spikes: days on which a group's alert rate rose well above its own baseline.
    ///
    /// Per group (CSP region x code x device type by default) the baseline of each day is the
    /// median rate of the trailing --window days, with the group's weekday pattern divided out;
    /// the spread is their median absolute deviation, floored by Poisson noise. A day is flagged
    /// when its robust z-score reaches --threshold, its count is --min-ratio times the expected
    /// count, and the excess is at least --min-excess alerts. Spikes are ranked by excess
    /// alerts; each is explained by the cohorts (model, model and firmware, device type,
    /// generation) that carry the excess, against their share of the group's devices.
    ///
    /// Example: fleetwatch spikes samples/alerts.csv -i samples/inventory.csv --charts spikes/
    #[command(after_help = EXIT_HELP)]
    Spikes {
        #[command(flatten)]
        selection: SelectionArgs,
        /// The dimensions of a group, comma-separated (day is the series axis): region, type,
        /// gen, code, category, model, firmware, label.
        #[arg(long, default_value = "region,code,type")]
        by: GroupBy,
        /// Trailing days the baseline is taken over.
        #[arg(long, default_value_t = 28)]
        window: usize,
        /// Fewest trailing days before a day is judged.
        #[arg(long, default_value_t = 7)]
        min_history: usize,
        /// Robust z-score (excess over spread) a spike must reach.
        #[arg(long, default_value_t = 5.0)]
        threshold: f64,
        /// Count over expected count a spike must reach.
        #[arg(long, default_value_t = 1.3)]
        min_ratio: f64,
        /// Alerts above the expected count a spike must reach.
        #[arg(long, default_value_t = 10.0)]
        min_excess: f64,
        /// Spikes to show, largest excess first (0: all).
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Write a chart per flagged group (rate, baseline, flagged days) into this directory.
        #[arg(long, value_name = "DIR")]
        charts: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Who is behind a code's volume: top devices, concentration, rate per model, trend.
    ///
    /// The top devices, how concentrated the volume is (the share from the top 1% and 10% of
    /// alerting devices), the rate per model and firmware version per 1,000 devices, and whether
    /// the volume is steady (Mann-Kendall trend test on the daily rate, with Sen's slope).
    ///
    /// `--format csv` writes one table: the devices (default) or, with --show models, the
    /// models; the table and JSON forms hold everything.
    ///
    /// Example: fleetwatch offenders samples/alerts.csv -i samples/inventory.csv --code 81B8
    #[command(after_help = EXIT_HELP)]
    Offenders {
        #[command(flatten)]
        selection: SelectionArgs,
        /// Devices to list, most alerts first (0: all).
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// The table `--format csv` writes.
        #[arg(long, value_enum, default_value_t = cmd::offenders::Show::Devices)]
        show: cmd::offenders::Show,
        #[command(flatten)]
        common: Common,
    },
    /// What if a remediation worked: alerts and rates before and after, per region.
    ///
    /// The alerts and rate per group (CSP region by default) and overall, before and after, if
    /// the devices a rule names stopped raising the code(s);
    /// with the share of the fleet and of the volume the rule touches. With --labels, also the
    /// reclassification rules replayed over history: alerts per label before and after.
    ///
    /// A rule is conditions that must all hold, comma-separated: model, firmware, gen, region,
    /// type, code (the codes it stops; all when absent), devices=FILE (one id per line). Join
    /// alternatives with `+`. Give --remediate more than once for the union of rules.
    ///
    /// Example: fleetwatch whatif samples/alerts.csv -i samples/inventory.csv --remediate model=S1-ELSTER-AS300,firmware=1.2,code=81B8
    #[command(after_help = EXIT_HELP)]
    Whatif {
        #[command(flatten)]
        selection: SelectionArgs,
        /// A remediation rule, e.g. `model=EDMI-ES2,firmware=2.0.1,code=81B8`.
        #[arg(long, value_name = "RULE")]
        remediate: Vec<String>,
        /// The groups of the before/after table: region, type, gen, code, category, model,
        /// firmware, label.
        #[arg(long, default_value = "region")]
        by: GroupBy,
        /// Draw the before/after bars into this file (.png or .svg).
        #[arg(long, value_name = "FILE")]
        chart: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Track an OTA firmware campaign: funnel, failures, stragglers, guard rails, effect.
    ///
    /// The funnel (targeted -> delivered -> transferred ->
    /// verified -> activated -> running the target version) per campaign, region, model and
    /// source version; failures by stage and reason as a Pareto; time to upgrade; devices
    /// never heard from; devices that likely cannot be upgraded remotely; guard rails replayed
    /// day by day; and the firmware's effect on every alert code (difference in differences).
    ///
    /// Evidence: service-request outcome records (--outcomes) and/or the firmware alerts in
    /// the alert stream (the positional inputs). Devices are counted once however their events
    /// arrive: out of order, twice, or with stages missing. "Running the target version" needs
    /// a record or alert carrying that version. Formats in docs/ota.md.
    ///
    /// Example: fleetwatch ota samples/alerts.csv -i samples/inventory.csv --campaign samples/ota_campaign.csv --outcomes samples/ota_outcomes.csv
    #[command(after_help = EXIT_HELP)]
    Ota {
        /// Alert inputs (files, directories, `-`): their firmware alerts are evidence, and all
        /// their alerts feed the firmware-effect comparison. Optional with --outcomes.
        alerts: Vec<PathBuf>,
        /// Device inventory: region and model of each device.
        #[arg(long, short = 'i')]
        inventory: Option<PathBuf>,
        /// Campaign file (CSV: campaign, device_id, model, source_version, target_version).
        #[arg(long, value_name = "FILE")]
        campaign: Option<PathBuf>,
        /// Instead of a campaign file, a rule over the inventory, e.g. `model=EDMI-ES2+SEC-LIB110,type=ESME`.
        #[arg(long, value_name = "RULE", conflicts_with = "campaign")]
        targets: Option<String>,
        /// The version the campaign brings (overrides the campaign file's).
        #[arg(long, value_name = "VERSION")]
        target_version: Option<String>,
        /// The campaign's name with --targets.
        #[arg(long, default_value = "campaign")]
        name: String,
        /// Service-request outcome records (CSV or JSON lines; gzip/zstd welcome).
        #[arg(long, value_name = "FILE")]
        outcomes: Vec<PathBuf>,
        /// Failed attempts after which a device is listed as likely not upgradable remotely.
        #[arg(long, default_value_t = 3)]
        max_failures: u32,
        /// Guard-rail threshold: the failure rate whose 95% Wilson lower bound trips it.
        #[arg(long, default_value_t = 0.2)]
        guard_threshold: f64,
        /// Devices that must have finished an attempt before a guard rail may trip.
        #[arg(long, default_value_t = 30)]
        guard_min_devices: u64,
        /// Write every table as CSV and the cumulative-upgrades chart into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// SMETS1 migration per cohort and week: pace, backlog, gaps, stalls, forecasts, charts.
    ///
    /// Per cohort (IOC, MOC, MOC Secure, FOC) and week: migrated, operated by
    /// suppliers (commissioned), failed, backlog; cumulative curves; the weekly pace with its
    /// changes flagged; failures by reason; reporting gaps (weekdays with no report); stalled
    /// cohorts and a forecast of each cohort's end at its recent pace; and, with --alerts, the
    /// cohorts' alert rates before and after migration.
    ///
    /// Example: fleetwatch migration samples/migration.csv -i samples/inventory.csv --out migration/
    #[command(after_help = EXIT_HELP)]
    Migration {
        /// Migration logs (CSV or JSON lines: timestamp, device_id, cohort, event, reason).
        #[arg(required = true)]
        logs: Vec<PathBuf>,
        /// Device inventory with `cohort` and `migration_date` columns: migrations before the log.
        #[arg(long, short = 'i')]
        inventory: Option<PathBuf>,
        /// Devices in a cohort, e.g. `FOC=3132` (repeatable): for the remaining devices and the
        /// forecast.
        #[arg(long, value_name = "COHORT=DEVICES")]
        cohort_size: Vec<String>,
        /// Alert inputs: the cohorts' alert rates per 1,000 devices before and after migration.
        #[arg(long, value_name = "FILE")]
        alerts: Vec<PathBuf>,
        /// A pace change is at least this fraction away from the three weeks before.
        #[arg(long, default_value_t = 0.4)]
        min_change: f64,
        /// ... and at least this many devices a week.
        #[arg(long, default_value_t = 10.0)]
        min_pace: f64,
        /// The last day the log should cover (default: its last row's day): a report missing
        /// at the very end is a gap too.
        #[arg(long, value_parser = parse_day)]
        until: Option<Day>,
        /// Write every table as CSV and the charts (PNG, SVG) into this directory.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Decode GBCS messages (a DUIS GBCSPayload in base64, or hex from a log).
    ///
    /// Shows the protection, encoding, originating device, alert code, the device's time, the
    /// command a future-dated alert reports on, and firmware outcomes. Messages as arguments, or
    /// one per line on stdin. Layout in docs/gbcs.md.
    ///
    /// Example: fleetwatch gbcs DF090300000000000007D0...
    #[command(after_help = EXIT_HELP)]
    Gbcs {
        /// Messages, hex or base64 (none or `-`: read stdin).
        messages: Vec<String>,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Receive DUIS alerts over HTTP, durably, with live rates per region.
    ///
    /// POST one message (or several back to back) to /alerts.
    ///
    /// A 200 means the message is in the durable log in --data and synced to disk (many
    /// requests share one sync). Malformed bodies get 400 with the reason and go to
    /// DATA/quarantine.jsonl; bodies over --max-body get 413; a redelivered message (same
    /// ResponseID) gets 200 and is counted once. When --max-pending bodies wait for the disk or
    /// the log reaches --max-log-bytes, the answer is 503 with Retry-After: backpressure, never
    /// deletion. GET / is a live dashboard, /metrics Prometheus text, /api/summary JSON,
    /// /healthz a liveness check. The batch commands read DATA directly. SIGTERM stops
    /// accepting, finishes requests in flight, syncs and exits 0. Design in docs/serve.md.
    ///
    /// Example: fleetwatch serve --listen 127.0.0.1:8080 --data received/ --inventory inventory.csv
    #[command(after_help = EXIT_HELP)]
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Directory of the durable log (created if needed; recovered at start).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// Device inventory: regions, types and installed bases for the live rates.
        #[arg(long, short = 'i')]
        inventory: Option<PathBuf>,
        /// Largest POST body, in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        max_body: usize,
        /// Connections served at once (more wait to be accepted).
        #[arg(long, default_value_t = 256)]
        max_connections: usize,
        /// Bodies waiting for the disk before new ones get 503.
        #[arg(long, default_value_t = 10_000)]
        max_pending: usize,
        /// Log size in bytes at which new bodies get 503 (fleetwatch never deletes the log).
        #[arg(long, default_value_t = u64::MAX)]
        max_log_bytes: u64,
        /// Segment file size in bytes.
        #[arg(long, default_value_t = 64 << 20)]
        segment_bytes: u64,
        /// Sync after every message instead of once per group (for comparison; slower).
        #[arg(long)]
        fsync_each: bool,
        /// Worker threads (default: all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Explain alert codes: the official name and category of a code, or every code whose name
    /// or category contains a word. Without an argument, list the whole catalogue.
    Codes {
        /// A code (81B8, N24) or a word (polarity, firmware, supply).
        query: Option<String>,
    },
    /// Write a realistic synthetic fleet: inventory, alert stream, OTA campaign and outcomes,
    /// SMETS1 migration log, and truth.json (what was planted, for checking analyses).
    ///
    /// The same seed gives the same bytes. Assumptions are listed in docs/generator.md.
    ///
    /// Example: fleetwatch generate --devices 100000 --days 30 --seed 1 --out fleet --format duis --gzip
    Generate {
        /// Devices in the fleet (SMETS1 devices not yet migrated included).
        #[arg(long, default_value_t = 10_000)]
        devices: usize,
        /// Days of alert traffic.
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First day (YYYY-MM-DD).
        #[arg(long, value_parser = parse_day, default_value = "2024-01-01")]
        start: Day,
        /// Output directory (created if needed).
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// Format of the alert stream.
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Compress the alert stream with gzip.
        #[arg(long)]
        gzip: bool,
        /// Share of records preceded by a malformed record (to exercise rejects).
        #[arg(long, default_value_t = 0.001)]
        malformed: f64,
        /// Share of records delivered twice (same message id).
        #[arg(long, default_value_t = 0.001)]
        duplicates: f64,
    },
    /// Generate a medium synthetic fleet, run every analysis on it, and print what was found
    /// and where each output is. Start here.
    Demo {
        /// Where the data and outputs go.
        #[arg(long, short = 'o', default_value = "fleetwatch-demo")]
        out: PathBuf,
        #[arg(long, default_value_t = 200_000)]
        devices: usize,
        #[arg(long, default_value_t = 60)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Options shared by the commands that read alert inputs.
#[derive(clap::Args)]
struct Common {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// Where rejected records go (JSON lines: source, line, offset, reason, raw). Written only
    /// when something is rejected.
    #[arg(long, default_value = "fleetwatch-rejects.jsonl")]
    rejects: PathBuf,
    /// Map CSV columns or JSON keys to fields when their names are not recognised, e.g.
    /// `code=Alert Type,device=Meter EUI,timestamp=When`. Fields: timestamp, device, code,
    /// message_id, count, region, device_type, generation, payload (a GBCS message, hex or
    /// base64: it fills a missing code, device or time, and must agree with the code).
    #[arg(long, default_value = "")]
    columns: ColumnMap,
    /// Duplicate detection: `auto` drops repeats of records that carry a message id (same
    /// device, code, time and id), `on` also repeats of rows without one, `off` keeps all.
    #[arg(long, value_enum, default_value_t = Dedup::Auto)]
    dedup: Dedup,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Reclassification rules (TOML): give codes, per generation or model, a label and a
    /// category of your own (81B8 on SMETS1 -> "reverse current"). Group by `label` to use
    /// them; `category` follows them too. Format in docs/investigation.md.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
}

impl Common {
    fn labels(&self) -> anyhow::Result<Arc<Labels>> {
        Ok(Arc::new(match &self.labels {
            Some(p) => Labels::load(p)?,
            None => Labels::none(),
        }))
    }

    fn read(&self) -> ReadOptions {
        ReadOptions {
            columns: self.columns.clone(),
            threads: self.threads,
        }
    }
}

/// The alerts a chart or report is drawn from.
#[derive(clap::Args)]
struct SelectionArgs {
    /// Alert inputs: files, directories, or `-` for stdin.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Device inventory (one row per device, or a count table). Without it, rates are n/a.
    #[arg(long, short = 'i')]
    inventory: Option<PathBuf>,
    /// Keep only these codes and/or categories, e.g. `81B8` or `supply,tamper`.
    #[arg(long, alias = "code", value_parser = CodeFilter::parse)]
    codes: Option<CodeFilter>,
}

impl SelectionArgs {
    fn with(self, common: &Common) -> anyhow::Result<cmd::chart::Selection> {
        Ok(cmd::chart::Selection {
            inputs: self.inputs,
            inventory: self.inventory,
            codes: self.codes,
            read: common.read(),
            labels: common.labels()?,
        })
    }
}

fn parse_day(s: &str) -> Result<Day, String> {
    fleetwatch::model::time::parse_date(s.as_bytes())
        .ok_or_else(|| format!("`{s}` is not a date (YYYY-MM-DD)"))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Status::Usage.into()
            } else {
                Status::Ok.into()
            };
        }
    };
    match run(cli.command) {
        Ok(s) => s.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            Status::Failed.into()
        }
    }
}

fn run(command: Command) -> anyhow::Result<Status> {
    match command {
        Command::Alerts {
            inputs,
            inventory,
            by,
            codes,
            since,
            until,
            no_distinct,
            common,
        } => {
            let query = AlertQuery {
                by: by.0,
                codes,
                since,
                until,
                dedup: common.dedup,
                distinct: !no_distinct,
                labels: common.labels()?,
                split: None,
                tap: None,
            };
            cmd::alerts::run(cmd::alerts::AlertsConfig {
                inputs,
                inventory,
                query,
                read: common.read(),
                format: common.format,
                rejects: common.rejects,
            })
        }
        Command::Codes { query } => cmd::codes::run(query.as_deref()),
        Command::Serve {
            listen,
            data,
            inventory,
            max_body,
            max_connections,
            max_pending,
            max_log_bytes,
            segment_bytes,
            fsync_each,
            threads,
        } => {
            let inv = cmd::alerts::inventory_or_empty(inventory.as_deref(), threads)?;
            let cfg = fleetwatch::live::ServeConfig {
                listen,
                data,
                max_body,
                max_connections,
                max_pending,
                max_log_bytes,
                segment_bytes,
                sync: if fsync_each {
                    fleetwatch::live::log::SyncMode::EachRecord
                } else {
                    fleetwatch::live::log::SyncMode::Group
                },
                threads,
            };
            fleetwatch::live::run(cfg, inv)?;
            Ok(Status::Ok)
        }
        Command::Gbcs { messages, format } => cmd::gbcs::run(messages, format),
        Command::Migration {
            logs,
            inventory,
            cohort_size,
            alerts,
            min_change,
            min_pace,
            until,
            out,
            common,
        } => cmd::migration::run(cmd::migration::MigrationConfig {
            logs,
            inventory,
            sizes: cohort_size,
            alerts,
            params: fleetwatch::analyze::migration::weekly::PaceParams {
                min_change,
                min_pace,
                until,
                ..Default::default()
            },
            out,
            format: common.format,
            read: common.read(),
            rejects: common.rejects,
        }),
        Command::Ota {
            alerts,
            inventory,
            campaign,
            targets,
            target_version,
            name,
            outcomes,
            max_failures,
            guard_threshold,
            guard_min_devices,
            out,
            common,
        } => cmd::ota::run(cmd::ota::OtaConfig {
            alerts,
            inventory,
            campaign,
            targets,
            target_version,
            name,
            outcomes,
            max_failures,
            guard_threshold,
            guard_min_devices,
            out,
            format: common.format,
            read: common.read(),
            rejects: common.rejects,
        }),
        Command::Whatif {
            selection,
            remediate,
            by,
            chart,
            common,
        } => cmd::whatif::run(cmd::whatif::WhatifConfig {
            selection: selection.with(&common)?,
            remediate,
            by: by.0,
            chart,
            format: common.format,
            rejects: common.rejects,
        }),
        Command::Offenders {
            selection,
            top,
            show,
            common,
        } => cmd::offenders::run(cmd::offenders::OffendersConfig {
            selection: selection.with(&common)?,
            top,
            show,
            format: common.format,
            rejects: common.rejects,
        }),
        Command::Spikes {
            selection,
            by,
            window,
            min_history,
            threshold,
            min_ratio,
            min_excess,
            top,
            charts,
            common,
        } => cmd::spikes::run(cmd::spikes::SpikesConfig {
            selection: selection.with(&common)?,
            by: by.0,
            params: SpikeParams {
                window: window.max(1),
                min_history,
                threshold,
                min_ratio,
                min_excess,
            },
            top,
            charts,
            format: common.format,
            rejects: common.rejects,
        }),
        Command::Chart {
            kind,
            selection,
            out,
            common,
        } => cmd::chart::run(cmd::chart::ChartConfig {
            kind,
            selection: selection.with(&common)?,
            out,
            rejects: common.rejects,
        }),
        Command::Report {
            selection,
            out,
            migration,
            cohort_size,
            common,
        } => cmd::report::run(cmd::report::ReportConfig {
            selection: selection.with(&common)?,
            out,
            migration,
            cohort_sizes: cohort_size,
        }),
        Command::Generate {
            devices,
            days,
            seed,
            start,
            out,
            format,
            gzip,
            malformed,
            duplicates,
        } => {
            let mut cfg = fleetwatch::generate::Config::new(devices, days, seed);
            cfg.start = start;
            cfg.format = format;
            cfg.gzip = gzip;
            cfg.malformed = malformed.clamp(0.0, 1.0);
            cfg.duplicates = duplicates.clamp(0.0, 1.0);
            cmd::generate::run(cfg, &out)
        }
        Command::Demo {
            out,
            devices,
            days,
            seed,
        } => cmd::demo::run(cmd::demo::DemoConfig {
            out,
            devices,
            days,
            seed,
        }),
    }
}
