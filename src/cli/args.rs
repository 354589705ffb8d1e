//! The command line as clap parses it: one `Args` struct per subcommand, and the argument groups
//! the analysis commands share (inputs, filters, common options). Doc comments are the help.
//! Each `Args` resolves itself, once, into its command's configuration (`resolve`): nothing
//! downstream looks at a raw flag.

use super::Selection;
use super::commands;
use anyhow::{Result, bail};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use fleetwatch::analyze::alerts::{AlertQuery, CodeFilter, Dedup, Dim, GroupBy};
use fleetwatch::analyze::labels::Labels;
use fleetwatch::analyze::ota::run::OtaParams;
use fleetwatch::analyze::spikes::SpikeParams;
use fleetwatch::decode::ColumnMap;
use fleetwatch::engine::Filters;
use fleetwatch::engine::scan::ReadOptions;
use fleetwatch::model::{AlertCode, Clock, Day, DeviceType, Generation, Keyword, Region};
use fleetwatch::render::OutputFormat;
use fleetwatch::render::chart::ChartKind;
use std::path::PathBuf;
use std::sync::Arc;

pub const EXIT_HELP: &str = "\
Exit status: 0 ok; 1 failed (an input could not be read, or another error);
2 usage error; 3 completed, but some records were rejected (see the quarantine file).";

/// Smart-meter fleet alert analytics: alerts per 1,000 devices per CSP region, from DUIS XML,
/// CSV and JSON lines (plain, gzip or zstd).
#[derive(Parser)]
#[command(name = "fleetwatch", version, after_help = EXIT_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Alert counts, distinct alerting devices, installed devices and alerts per 1,000 devices
    /// per day, per group.
    ///
    /// Inputs are files, directories (read recursively) or `-` for stdin, in DUIS XML, CSV or
    /// JSON lines, plain or compressed with gzip or zstd: the format is detected from the content.
    ///
    /// Example: fleetwatch alerts samples/alerts.csv --inventory samples/inventory.csv --by region,code
    #[command(after_help = EXIT_HELP)]
    Alerts(AlertsArgs),
    /// Hand the alerts on to a data lake: Hive-partitioned Parquet that DuckDB, Spark, Trino
    /// and ClickHouse read as they are.
    ///
    /// Writes OUT/events/day=YYYY-MM-DD/region=REGION/part-RUN-N.parquet (one row per accepted
    /// alert record: ts as a UTC timestamp in microseconds, device_id, alert_code, device_type,
    /// generation, model, firmware_version as the device ran it then, alerts, message_id,
    /// source), OUT/daily/day=.../region=.../ (the `alerts --by day,region,type,gen,code`
    /// table with installed devices and the rate) and OUT/inventory/part-0.parquet (the device
    /// table, every device whatever the filters). Files are written under hidden temporary names and renamed into place when the
    /// run succeeds: a reader never sees a partial file. RUN is a hash of the inputs' paths,
    /// sizes and times and of the filters: exporting other inputs into OUT adds files, and a
    /// re-run of the same inputs replaces its own. The filters apply as in `alerts`.
    ///
    /// Query it: duckdb -c "SELECT region, sum(alerts) FROM read_parquet('OUT/events/**/*.parquet', hive_partitioning=true) GROUP BY region"
    ///
    /// Example: fleetwatch export samples/alerts.csv --inventory samples/inventory.csv --out lake/
    #[command(after_help = EXIT_HELP)]
    Export(ExportArgs),
    /// Draw one chart as PNG or SVG (by the extension of --out).
    ///
    /// Kinds: rate (alerts per 1,000 devices per day, a line per CSP region), top-codes
    /// (stacked bars per region), heatmap (code x region), growth (alerts and installed base on
    /// twin axes). Each region keeps its colour in every chart.
    ///
    /// Example: fleetwatch chart rate samples/alerts.csv -i samples/inventory.csv --codes supply --out supply.png
    #[command(after_help = EXIT_HELP)]
    Chart(ChartArgs),
    /// Write a self-contained HTML report (inline charts, totals, sortable tables) with the
    /// charts as PNG and SVG and the tables as CSV, into a directory.
    ///
    /// Example: fleetwatch report samples/alerts.csv -i samples/inventory.csv --out report/
    #[command(after_help = EXIT_HELP)]
    Report(ReportArgs),
    /// Find spikes: episodes of days on which a group's alert count rose well above its baseline.
    ///
    /// Per group (CSP region x code x device type by default) each day is judged from the days
    /// before it only: the baseline is the median of the trailing --window days, with the
    /// group's weekday pattern (medians over the previous 8 weeks, once 3 weeks exist) divided
    /// out; the spread is their median absolute deviation, floored by Poisson noise. A device
    /// counts at most --device-cap alerts a day, so one chattering meter cannot make a spike. A
    /// day is flagged when its robust z-score reaches --threshold, its count is --min-ratio
    /// times the expected count, and the excess is at least --min-excess. Consecutive flagged
    /// days of a group are one episode, ranked by excess; each is explained by the cohorts
    /// (model, model and firmware, device type, generation) that carry the excess on its
    /// largest day, against their share of the group's devices.
    ///
    /// With --campaign or --outcomes, episodes of the campaign's own firmware codes during its
    /// run are known events, listed apart ("campaign_episodes" in JSON), not among the incidents.
    ///
    /// Example: fleetwatch spikes samples/alerts.csv -i samples/inventory.csv --charts spikes/
    #[command(after_help = EXIT_HELP)]
    Spikes(SpikesArgs),
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
    Offenders(OffendersArgs),
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
    Whatif(WhatifArgs),
    /// Track an OTA firmware campaign: funnel, failures, stragglers, guard rails, effect.
    ///
    /// The funnel (targeted -> delivered -> transferred ->
    /// verified -> activated -> running the target version) per campaign, region, model and
    /// source version; failures by stage and reason as a Pareto; time to upgrade; devices
    /// never heard from; devices that likely cannot be upgraded remotely; guard rails replayed
    /// day by day; and the firmware's effect on every alert code (difference in differences
    /// of upgraded against never-upgraded devices, with a 95% device-bootstrap interval, a
    /// pre-trend check, the top 1% of devices' share, and a verdict: clear effect, no clear
    /// effect, dominated by few devices, pre-trends differ).
    ///
    /// Evidence: service-request outcome records (--outcomes) and/or the firmware alerts in
    /// the alert stream (the positional inputs). Devices are counted once however their events
    /// arrive: out of order, twice, or with stages missing. "Running the target version" needs
    /// a record or alert carrying that version. The device filters narrow the targets, the
    /// period the evidence, and --codes the firmware-effect table. Formats in docs/ota.md.
    ///
    /// Example: fleetwatch ota samples/alerts.csv -i samples/inventory.csv --campaign samples/ota_campaign.csv --outcomes samples/ota_outcomes.csv
    #[command(after_help = EXIT_HELP)]
    Ota(OtaArgs),
    /// SMETS1 migration per cohort and week: pace, backlog, gaps, stalls, forecasts, charts.
    ///
    /// Per cohort (IOC, MOC, MOC Secure, FOC) and week: migrated, operated by
    /// suppliers (commissioned), failed, backlog; cumulative curves; the weekly pace with its
    /// changes flagged; failures by reason; reporting gaps (weekdays with no report); stalled
    /// cohorts and a forecast of each cohort's end at its recent pace; and, with --alerts, the
    /// cohorts' alert rates before and after migration. --since/--until bound the log's period
    /// (a report missing at the very end is a gap too); the device filters narrow --alerts.
    ///
    /// Example: fleetwatch migration samples/migration.csv -i samples/inventory.csv --out migration/
    #[command(after_help = EXIT_HELP)]
    Migration(MigrationArgs),
    /// Decode GBCS messages (a DUIS GBCSPayload in base64, or hex from a log).
    ///
    /// Shows the protection, encoding, originating device, alert code, the device's time, the
    /// command a future-dated alert reports on, and firmware outcomes. Messages as arguments, or
    /// one per line on stdin. Layout in docs/gbcs.md.
    ///
    /// Example: fleetwatch gbcs DF090300000000000007D0...
    #[command(after_help = EXIT_HELP)]
    Gbcs(GbcsArgs),
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
    /// Security: --token-file makes every request but /healthz and the dashboard page need a
    /// bearer token (401 without); --tls-cert/--tls-key serve HTTPS. Without a token file only a
    /// loopback address is accepted (unless --insecure). Slow headers and bodies time out
    /// (--header-timeout, --body-timeout: 408), and connections are bounded in total and per
    /// client address; /healthz and SIGTERM are answered even when every slot is taken.
    ///
    /// Example: fleetwatch serve --listen 127.0.0.1:8080 --data received/ --inventory inventory.csv
    #[command(after_help = EXIT_HELP)]
    Serve(ServeArgs),
    /// Consume alerts from a Kafka topic in a consumer group, durably, with the live view of
    /// serve.
    ///
    /// Each message value is one DUIS XML document, a JSON line, or a CSV line (its columns named
    /// by --csv-header); keys are ignored. Messages are read in batches (--batch-max messages or
    /// --batch-ms); a batch's good records are appended to the same durable log serve writes
    /// (DATA/segment-*.fwlog, read by `fleetwatch alerts DATA` and the other batch commands) and
    /// synced, bad ones go to DATA/quarantine.jsonl with topic, partition and offset; only then
    /// is each partition's next offset committed. After a crash the uncommitted tail is delivered
    /// again and counted once (message-id dedup): at-least-once delivery, exactly-once counting.
    /// Instances with the same --group share the topic's partitions and take over each other's
    /// on a rebalance or a failure (after --session-timeout-ms). SIGTERM stops fetching, syncs,
    /// commits and exits 0. With --listen: /metrics (consumed, accepted, duplicates, rejected,
    /// lag per partition, commit latency), /api/summary and the dashboard. Design in
    /// docs/kafka.md.
    ///
    /// Example: fleetwatch consume --brokers 127.0.0.1:9092 --topic alerts --group fleetwatch --data received/ --inventory inventory.csv --listen 127.0.0.1:8081
    #[command(after_help = EXIT_HELP)]
    Consume(ConsumeArgs),
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
    Generate(GenerateArgs),
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

/// A clap parser for a `Keyword` enum: the choices listed in `--help`, with their help.
fn keyword<T: Keyword + std::str::FromStr + Clone + Send + Sync>()
-> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(
        T::ALL
            .iter()
            .map(|v| PossibleValue::new(v.keyword()).help(v.help())),
    )
    .map(|s| {
        s.parse::<T>()
            .unwrap_or_else(|_| unreachable!("a listed keyword"))
    })
}

fn parse_period(s: &str) -> Result<(Day, Day), String> {
    let (a, b) = s.split_once("..").ok_or_else(|| {
        format!("`{s}` is not a period: write START..END, e.g. 2024-01-01..2024-01-31")
    })?;
    let (a, b) = (parse_day(a.trim())?, parse_day(b.trim())?);
    if b < a {
        return Err(format!("`{s}`: the period ends before it starts"));
    }
    Ok((a, b))
}

fn parse_day(s: &str) -> Result<Day, String> {
    fleetwatch::model::time::parse_date(s.as_bytes())
        .ok_or_else(|| format!("`{s}` is not a date (YYYY-MM-DD)"))
}

/// Where the alerts are, and the inventory they are joined to.
#[derive(clap::Args)]
pub struct InputArgs {
    /// Alert inputs: files, directories, or `-` for stdin.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Device inventory (one row per device, or a count table). Without it, rates are n/a.
    #[arg(long, short = 'i')]
    pub inventory: Option<PathBuf>,
}

/// The filters every analysis command takes. Values are comma-separated; the rates' installed
/// bases follow the device filters (a North ESME rate divides by North ESME devices).
#[derive(clap::Args, Clone, Default)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
    /// First day to include (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_day)]
    pub since: Option<Day>,
    /// Last day to include (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_day)]
    pub until: Option<Day>,
    /// Keep only these codes and/or categories, e.g. `81B8,8F35` or `supply,tamper`.
    #[arg(long, alias = "code", value_parser = CodeFilter::parse)]
    pub codes: Option<CodeFilter>,
    /// Keep only devices in these CSP regions (North, Central, South, 4G North, ..., SMETS1).
    #[arg(long, value_delimiter = ',')]
    pub region: Vec<Region>,
    /// Keep only these device types (ESME, GSME, CHF, GPF, PPMID, IHD, ...).
    #[arg(long = "type", value_delimiter = ',')]
    pub device_type: Vec<DeviceType>,
    /// Keep only these generations (SMETS1, SMETS2).
    #[arg(long = "gen", value_delimiter = ',')]
    pub generation: Vec<Generation>,
    /// Keep only these models (as the inventory names them).
    #[arg(long, value_delimiter = ',')]
    pub model: Vec<String>,
    /// Keep only devices on these firmware versions (as the inventory names them).
    #[arg(long, value_delimiter = ',')]
    pub firmware: Vec<String>,
    /// Cut days (and hours, `--by hour`) in this IANA time zone, e.g. `Europe/London`; UTC by
    /// default. Dates in --since/--until are then local dates too.
    #[arg(long, value_parser = Clock::zone)]
    pub tz: Option<Clock>,
}

impl FilterArgs {
    pub fn filters(&self) -> Filters {
        Filters {
            since: self.since,
            until: self.until,
            codes: self.codes.clone(),
            regions: self.region.clone(),
            device_types: self.device_type.clone(),
            generations: self.generation.clone(),
            models: self.model.clone(),
            firmwares: self.firmware.clone(),
            tz: self.tz.clone(),
        }
    }
}

/// Firmware evidence for the analyses that credit alerts to firmware versions.
#[derive(clap::Args, Clone, Default)]
#[command(next_help_heading = "Firmware evidence")]
pub struct EvidenceArgs {
    /// OTA outcome records (CSV or JSON lines, as `fleetwatch ota` reads them): a device's
    /// running version from the time a record reports it. With the 8F43 alerts in the inputs,
    /// alerts raised before an upgrade are credited to the version the device ran then.
    #[arg(long, value_name = "FILE")]
    pub outcomes: Vec<PathBuf>,
    /// An OTA campaign file: its source versions say what targeted devices ran before.
    #[arg(long, value_name = "FILE")]
    pub campaign: Option<PathBuf>,
}

fleetwatch::keyword_enum!(
    /// `--format`: the output formats, and Parquet for `alerts --out DIR`.
    pub enum FormatArg {
        Table = "table": "aligned columns for reading in a terminal",
        Csv = "csv": "comma-separated, with a header row, for spreadsheets and other tools",
        Json = "json": "one JSON document with the rows, the filters and the totals",
        Parquet = "parquet": "alerts only: Parquet files under --out DIR, partitioned by day (and region), for DuckDB and Spark",
    }
);

/// Options shared by the commands that read alert inputs.
#[derive(clap::Args)]
pub struct Common {
    /// Output format.
    #[arg(long, short = 'f', value_parser = keyword::<FormatArg>(), default_value = "table")]
    pub format: FormatArg,
    /// Where rejected records go (JSON lines: source, line, offset, reason, raw). Written only
    /// when something is rejected.
    #[arg(long, default_value = "fleetwatch-rejects.jsonl")]
    pub rejects: PathBuf,
    /// Map CSV columns or JSON keys to fields when their names are not recognised, e.g.
    /// `code=Alert Type,device=Meter EUI,timestamp=When`. Fields: timestamp, device, code,
    /// message_id, count, region, device_type, generation, payload (a GBCS message, hex or
    /// base64: it fills a missing code, device or time, and must agree with the code).
    #[arg(long, default_value = "")]
    pub columns: ColumnMap,
    /// Duplicate detection: `auto` drops repeats of records that carry a message id (same
    /// device, code, time and id), `on` also repeats of rows without one, `off` keeps all.
    #[arg(long, value_parser = keyword::<Dedup>(), default_value = "auto")]
    pub dedup: Dedup,
    /// Days of event time a record's identity is remembered to detect a redelivery (DUIS
    /// redelivers within days). Memory follows the traffic of this window, not the input; a
    /// repeat dated more than this before the newest record read may count as a new record.
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    pub dedup_window: i32,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    #[command(flatten)]
    pub window: WindowArgs,
    /// Reclassification rules (TOML): give codes, per generation or model, a label and a
    /// category of your own (81B8 on SMETS1 -> "reverse current"). Group by `label` to use
    /// them; `category` follows them too. Format in docs/investigation.md.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
}

/// The plausible window of record times.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct WindowArgs {
    /// Records dated before this (a date or date-time, UTC) are rejected as implausible
    /// [default: 2000-01-01].
    #[arg(long, value_name = "DATE", value_parser = parse_instant)]
    pub earliest: Option<i64>,
    /// Records dated after this are rejected as implausible [default: a day after the run
    /// starts]. A leap second (23:59:60) is read as 23:59:59.
    #[arg(long, value_name = "DATE", value_parser = parse_instant)]
    pub latest: Option<i64>,
}

impl WindowArgs {
    /// Sets the window for the run (`model::time::set_window`).
    pub fn apply(self) {
        fleetwatch::model::time::set_window(self.earliest, self.latest);
    }
}

fn parse_instant(s: &str) -> Result<i64, String> {
    fleetwatch::model::time::parse_timestamp(s.as_bytes()).ok_or_else(|| {
        format!("`{s}` is not a date or date-time (YYYY-MM-DD or 2024-03-01T12:00:00Z)")
    })
}

impl Common {
    /// The output format of a command that writes to stdout (Parquet is for `alerts --out`).
    fn output(&self) -> Result<OutputFormat> {
        Ok(match self.format {
            FormatArg::Table => OutputFormat::Table,
            FormatArg::Csv => OutputFormat::Csv,
            FormatArg::Json => OutputFormat::Json,
            FormatArg::Parquet => bail!(
                "--format parquet is for `alerts --format parquet --out DIR`; `fleetwatch export` writes the events"
            ),
        })
    }

    fn read(&self) -> ReadOptions {
        self.window.apply();
        ReadOptions {
            columns: self.columns.clone(),
            threads: self.threads,
            dedup_window: Some(self.dedup_window.max(0)),
        }
    }

    /// The selection of an analysis command: its inputs, filters and these options.
    fn selection(
        &self,
        inputs: Vec<PathBuf>,
        inventory: Option<PathBuf>,
        filters: &FilterArgs,
    ) -> Result<Selection> {
        Ok(Selection {
            outcomes: Vec::new(),
            campaign: None,
            firmware_history: !filters.firmware.is_empty(),
            inputs,
            inventory,
            read: self.read(),
            filters: filters.filters(),
            labels: Arc::new(match &self.labels {
                Some(p) => Labels::load(p)?,
                None => Labels::none(),
            }),
            rejects: self.rejects.clone(),
        })
    }
}

impl Selection {
    /// Adds the firmware evidence; `needed` says whether the command credits alerts to
    /// firmware versions (a `--firmware` filter always does).
    fn with_evidence(mut self, evidence: EvidenceArgs, needed: bool) -> Selection {
        self.outcomes = evidence.outcomes;
        self.campaign = evidence.campaign;
        self.firmware_history |= needed;
        self
    }
}

#[derive(clap::Args)]
pub struct AlertsArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Dimensions to group by, comma-separated: day, hour, region, type, gen, code, category,
    /// model, firmware, label, device. `hour` is an hourly series (with its day's installed
    /// base: the rate is per 1,000 devices per hour), shown in the --tz zone with its offset.
    #[arg(long, default_value = "day,region,type,gen,code")]
    pub by: GroupBy,
    /// Skip the distinct alerting-device count (the `devices` column): counts and rates are
    /// unchanged, and big inputs read faster (no per-group sketch to update per record).
    #[arg(long)]
    pub no_distinct: bool,
    /// Grouped by day: write a row of 0 alerts for every day a group had installed devices and
    /// no alert, so each group's series has every day (averages taken in a spreadsheet are then
    /// right).
    #[arg(long)]
    pub zeros: bool,
    /// Compare the selected period (--since..--until) with this one, e.g.
    /// `2024-01-01..2024-01-31`: each group's alerts and rate in both, the change with its 95%
    /// interval, and whether it is beyond what Poisson noise explains (at a 5% false discovery
    /// rate over the groups). Groups are periods' totals: --by without day or hour.
    #[arg(long, value_name = "START..END", value_parser = parse_period)]
    pub compare: Option<(Day, Day)>,
    /// With --format parquet: the directory the table goes to, as
    /// DIR/day=YYYY-MM-DD/region=REGION/part-RUN-N.parquet (partitioned by day when grouped by
    /// day or hour, by region when grouped by region). A re-run of the same inputs and options
    /// replaces its own files.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub common: Common,
}

impl AlertsArgs {
    pub fn resolve(self) -> Result<commands::alerts::AlertsConfig> {
        let by_firmware = self.by.0.contains(&Dim::Firmware);
        if self.compare.is_some() {
            if self.by.0.contains(&Dim::Day) || self.by.0.contains(&Dim::Hour) {
                bail!(
                    "--compare compares whole periods: group --by without day or hour (e.g. --by region,code)"
                );
            }
            if self.filters.since.is_none() || self.filters.until.is_none() {
                bail!(
                    "--compare needs the period it is compared with: give --since and --until too"
                );
            }
        }
        let output = match (self.common.format, self.out) {
            (FormatArg::Parquet, Some(dir)) => {
                if self.compare.is_some() {
                    bail!("--compare writes a table to read, not Parquet: drop --format parquet");
                }
                commands::alerts::AlertsOutput::Parquet(dir)
            }
            (FormatArg::Parquet, None) => {
                bail!("--format parquet writes a directory of files: give --out DIR")
            }
            (_, Some(_)) => bail!("--out is for --format parquet"),
            _ => commands::alerts::AlertsOutput::Stdout(self.common.output()?),
        };
        let selection = self
            .common
            .selection(self.input.inputs, self.input.inventory, &self.filters)?
            .with_evidence(self.evidence, by_firmware);
        Ok(commands::alerts::AlertsConfig {
            compare: self.compare,
            query: AlertQuery {
                by: self.by.0,
                dedup: self.common.dedup,
                distinct: !self.no_distinct,
                zeros: self.zeros,
                labels: selection.labels.clone(),
                ..Default::default()
            },
            selection,
            output,
        })
    }
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The directory the datasets go to (events/, daily/, inventory/); created if missing.
    /// Other exports' files there are left as they are.
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: PathBuf,
    /// Rows per events file at most (each file is one row group). A worker writes a
    /// partition's file when it holds this many of its rows, or, past --buffer-rows in all,
    /// its largest partition: memory stays bounded whatever the input's size.
    #[arg(long, default_value_t = 1 << 17, value_name = "ROWS")]
    pub row_group: usize,
    /// Rows each worker buffers in all before it writes out its largest partition.
    #[arg(long, default_value_t = 1 << 20, value_name = "ROWS")]
    pub buffer_rows: usize,
    /// Where rejected records go (JSON lines: source, line, offset, reason, raw). Written only
    /// when something is rejected.
    #[arg(long, default_value = "fleetwatch-rejects.jsonl")]
    pub rejects: PathBuf,
    /// Map CSV columns or JSON keys to fields when their names are not recognised (as in
    /// `alerts`).
    #[arg(long, default_value = "")]
    pub columns: ColumnMap,
    /// Duplicate detection: `auto` drops repeats of records that carry a message id (same
    /// device, code, time and id), `on` also repeats of rows without one, `off` keeps all.
    #[arg(long, value_parser = keyword::<Dedup>(), default_value = "auto")]
    pub dedup: Dedup,
    /// Worker threads (default: all cores).
    /// Days of event time a record's identity is remembered to detect a redelivery (as on
    /// `alerts`).
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    pub dedup_window: i32,
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    #[command(flatten)]
    pub window: WindowArgs,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
}

impl ExportArgs {
    pub fn resolve(self) -> Result<commands::export::ExportRun> {
        if self.row_group == 0 || self.buffer_rows == 0 {
            bail!("--row-group and --buffer-rows must be at least 1");
        }
        let settings = format!(
            "export {:?} dedup={} columns={:?}",
            self.filters.filters().items(),
            self.dedup,
            self.columns
        );
        // Alerts carry the firmware their device ran then whenever evidence is given.
        let evidence = !self.evidence.outcomes.is_empty() || self.evidence.campaign.is_some();
        let selection = Selection {
            inputs: self.input.inputs,
            inventory: self.input.inventory,
            read: {
                self.window.apply();
                ReadOptions {
                    columns: self.columns,
                    threads: self.threads,
                    dedup_window: Some(self.dedup_window.max(0)),
                }
            },
            filters: self.filters.filters(),
            labels: Arc::new(Labels::none()),
            rejects: self.rejects,
            outcomes: Vec::new(),
            campaign: None,
            firmware_history: !self.filters.firmware.is_empty(),
        }
        .with_evidence(self.evidence, evidence);
        Ok(commands::export::ExportRun {
            selection,
            out: self.out,
            dedup: self.dedup,
            row_group: self.row_group,
            buffer_rows: self.buffer_rows,
            settings,
        })
    }
}

#[derive(clap::Args)]
pub struct ChartArgs {
    #[arg(value_parser = keyword::<ChartKind>())]
    pub kind: ChartKind,
    #[command(flatten)]
    pub input: InputArgs,
    /// The chart file: .png or .svg.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub common: Common,
}

impl ChartArgs {
    pub fn resolve(self) -> Result<commands::chart::ChartConfig> {
        Ok(commands::chart::ChartConfig {
            kind: self.kind,
            selection: self
                .common
                .selection(self.input.inputs, self.input.inventory, &self.filters)?
                .with_evidence(self.evidence, false),
            out: self.out,
        })
    }
}

#[derive(clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output directory (created if needed).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// SMETS1 migration log(s): adds the migration charts and tables.
    #[arg(long, value_name = "FILE")]
    pub migration: Vec<PathBuf>,
    /// Devices in a cohort for the migration forecast, e.g. `FOC=3132` (repeatable).
    #[arg(long, value_name = "COHORT=DEVICES")]
    pub cohort_size: Vec<String>,
    /// A remediation for the what-if section, as `fleetwatch whatif --remediate` takes it
    /// (e.g. `model=EDMI-ES2,firmware=2.0.1,code=81B8`; repeatable, any may match).
    #[arg(long, value_name = "RULE")]
    pub remediate: Vec<String>,
    /// Compare the selected period (--since..--until) with this one in "What changed"
    /// (default: the last 7 days of the data against the 7 before).
    #[arg(long, value_name = "START..END", value_parser = parse_period)]
    pub compare: Option<(Day, Day)>,
    /// The OTA section's target version, when the campaign is read from --outcomes alone
    /// (with --campaign the file says it).
    #[arg(long, value_name = "VERSION")]
    pub target_version: Option<String>,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub common: Common,
}

impl ReportArgs {
    pub fn resolve(self) -> Result<commands::report::ReportConfig> {
        if self.compare.is_some() && (self.filters.since.is_none() || self.filters.until.is_none())
        {
            bail!("--compare needs the period it is compared with: give --since and --until too");
        }
        Ok(commands::report::ReportConfig {
            selection: self
                .common
                .selection(self.input.inputs, self.input.inventory, &self.filters)?
                .with_evidence(self.evidence, true),
            out: self.out,
            migration: self.migration,
            cohort_sizes: self.cohort_size,
            remediate: self.remediate,
            compare: self.compare,
            target_version: self.target_version,
        })
    }
}

#[derive(clap::Args)]
pub struct SpikesArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The dimensions of a group, comma-separated (day is the series axis): region, type,
    /// gen, code, category, model, firmware, label.
    #[arg(long, default_value = "region,code,type")]
    pub by: GroupBy,
    /// Trailing days the baseline is taken over.
    #[arg(long, default_value_t = 28)]
    pub window: usize,
    /// Fewest trailing days before a day is judged.
    #[arg(long, default_value_t = 7)]
    pub min_history: usize,
    /// Robust z-score (excess over spread) a spike must reach.
    #[arg(long, default_value_t = 5.0)]
    pub threshold: f64,
    /// Count over expected count a spike must reach.
    #[arg(long, default_value_t = 1.3)]
    pub min_ratio: f64,
    /// Alerts above the expected count a spike must reach.
    #[arg(long, default_value_t = 10.0)]
    pub min_excess: f64,
    /// Most alerts one device counts for in a group on one day (0: no cap). At the default 3, a
    /// single device moves a day by at most 3, under --min-excess: it cannot make a spike alone.
    #[arg(long, default_value_t = 3)]
    pub device_cap: u32,
    /// Take these codes out before anything is counted, e.g. `8F8A,8F89` (a known event you do
    /// not want judged).
    #[arg(long, value_name = "CODES", value_delimiter = ',')]
    pub exclude_codes: Vec<String>,
    /// Take every code of these catalogue categories out, e.g. `firmware` (see `fleetwatch
    /// codes`).
    #[arg(long, value_name = "CAT", value_delimiter = ',')]
    pub exclude_category: Vec<String>,
    /// Episodes to show, largest excess first, and as many campaign episodes (0: all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// Write a chart per flagged group (rate, baseline, flagged days) into this directory.
    #[arg(long, value_name = "DIR")]
    pub charts: Option<PathBuf>,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub common: Common,
}

impl SpikesArgs {
    pub fn resolve(self) -> Result<commands::spikes::SpikesConfig> {
        if self.by.0.contains(&Dim::Day) || self.by.0.contains(&Dim::Hour) {
            bail!("--by names the dimensions of a group; `day` is always the series axis");
        }
        Ok(commands::spikes::SpikesConfig {
            selection: self
                .common
                .selection(self.input.inputs, self.input.inventory, &self.filters)?
                .with_evidence(self.evidence, true),
            by: self.by.0,
            params: SpikeParams {
                window: self.window.max(1),
                min_history: self.min_history,
                threshold: self.threshold,
                min_ratio: self.min_ratio,
                min_excess: self.min_excess,
                device_cap: self.device_cap,
                ..SpikeParams::default()
            },
            exclude: exclusions(&self.exclude_codes, &self.exclude_category)?,
            top: self.top,
            charts: self.charts,
            format: self.common.output()?,
        })
    }
}

/// `--exclude-codes` and `--exclude-category` as one filter of what to take out.
fn exclusions(codes: &[String], categories: &[String]) -> Result<Option<CodeFilter>> {
    let mut f = CodeFilter::default();
    for c in codes.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        match AlertCode::parse(c.as_bytes()) {
            Some(code) => f.codes.push(code),
            None => bail!("--exclude-codes: `{c}` is not an alert code (81B8, N24)"),
        }
    }
    let names = fleetwatch::catalogue::category_names();
    for c in categories
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
    {
        match names.iter().position(|n| n.eq_ignore_ascii_case(c)) {
            Some(i) => f.categories.push(i as u8),
            None => bail!(
                "--exclude-category: `{c}` is not a category ({})",
                names.join(", ")
            ),
        }
    }
    Ok((f != CodeFilter::default()).then_some(f))
}

#[derive(clap::Args)]
pub struct OffendersArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Devices to list, most alerts first (0: all).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// The table `--format csv` writes.
    #[arg(long, value_parser = keyword::<commands::offenders::Show>(), default_value = "devices")]
    pub show: commands::offenders::Show,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub common: Common,
}

impl OffendersArgs {
    pub fn resolve(self) -> Result<commands::offenders::OffendersConfig> {
        if self.filters.codes.is_none() {
            bail!("say which code(s): --codes 81B8 (or a category, e.g. --codes tamper)");
        }
        Ok(commands::offenders::OffendersConfig {
            selection: self
                .common
                .selection(self.input.inputs, self.input.inventory, &self.filters)?
                .with_evidence(self.evidence, true),
            top: self.top,
            show: self.show,
            format: self.common.output()?,
        })
    }
}

#[derive(clap::Args)]
pub struct WhatifArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// A remediation rule, e.g. `model=EDMI-ES2,firmware=2.0.1,code=81B8`.
    #[arg(long, value_name = "RULE")]
    pub remediate: Vec<String>,
    /// The groups of the before/after table: region, type, gen, code, category, model,
    /// firmware, label.
    #[arg(long, default_value = "region")]
    pub by: GroupBy,
    /// Draw the before/after bars into this file (.png or .svg).
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub common: Common,
}

impl WhatifArgs {
    pub fn resolve(self) -> Result<commands::whatif::WhatifConfig> {
        let by_firmware = self.by.0.contains(&Dim::Firmware)
            || self.remediate.iter().any(|r| r.contains("firmware"));
        if self.remediate.is_empty() && self.common.labels.is_none() {
            bail!(
                "nothing to compare: give --remediate RULE (e.g. model=EDMI-ES2,firmware=2.0.1,code=81B8) and/or --labels FILE"
            );
        }
        if [Dim::Day, Dim::Hour, Dim::Device]
            .iter()
            .any(|d| self.by.0.contains(d))
        {
            bail!(
                "--by takes device attributes and codes (region, type, gen, code, category, model, firmware, label)"
            );
        }
        Ok(commands::whatif::WhatifConfig {
            selection: self
                .common
                .selection(self.input.inputs, self.input.inventory, &self.filters)?
                .with_evidence(self.evidence, by_firmware),
            remediate: self.remediate,
            by: self.by.0,
            chart: self.chart,
            format: self.common.output()?,
        })
    }
}

#[derive(clap::Args)]
pub struct OtaArgs {
    /// Alert inputs (files, directories, `-`): their firmware alerts are evidence, and all
    /// their alerts feed the firmware-effect comparison. Optional with --outcomes.
    pub alerts: Vec<PathBuf>,
    /// Device inventory: region and model of each device.
    #[arg(long, short = 'i')]
    pub inventory: Option<PathBuf>,
    /// Campaign file (CSV: campaign, device_id, model, source_version, target_version).
    #[arg(long, value_name = "FILE")]
    pub campaign: Option<PathBuf>,
    /// Instead of a campaign file, a rule over the inventory, e.g. `model=EDMI-ES2+SEC-LIB110,type=ESME`.
    #[arg(long, value_name = "RULE", conflicts_with = "campaign")]
    pub targets: Option<String>,
    /// The version the campaign brings (overrides the campaign file's).
    #[arg(long, value_name = "VERSION")]
    pub target_version: Option<String>,
    /// The campaign's name with --targets.
    #[arg(long, default_value = "campaign")]
    pub name: String,
    /// Service-request outcome records (CSV or JSON lines; gzip/zstd welcome).
    #[arg(long, value_name = "FILE")]
    pub outcomes: Vec<PathBuf>,
    /// Failed attempts after which a device is listed as likely not upgradable remotely.
    #[arg(long, default_value_t = OtaParams::DEFAULT_MAX_FAILURES)]
    pub max_failures: u32,
    /// Guard-rail threshold: the failure rate whose 95% Wilson lower bound trips it.
    #[arg(long, default_value_t = OtaParams::DEFAULT_GUARD_THRESHOLD)]
    pub guard_threshold: f64,
    /// Devices that must have finished an attempt before a guard rail may trip.
    #[arg(long, default_value_t = OtaParams::DEFAULT_GUARD_MIN_DEVICES)]
    pub guard_min_devices: u64,
    /// Write every table as CSV and the cumulative-upgrades chart into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub common: Common,
}

impl OtaArgs {
    pub fn resolve(self) -> Result<commands::ota::OtaConfig> {
        if self.alerts.is_empty() && self.outcomes.is_empty() {
            bail!("no evidence: give alert inputs and/or --outcomes FILE");
        }
        if self.targets.is_some() && self.target_version.is_none() {
            bail!("--targets needs --target-version");
        }
        if self.campaign.is_none() && self.targets.is_none() && self.target_version.is_none() {
            bail!(
                "without --campaign or --targets, the targets are the devices the outcome records name, and --target-version is needed"
            );
        }
        Ok(commands::ota::OtaConfig {
            selection: self
                .common
                .selection(self.alerts, self.inventory, &self.filters)?,
            campaign: self.campaign,
            targets: self.targets,
            target_version: self.target_version,
            name: self.name,
            outcomes: self.outcomes,
            max_failures: self.max_failures,
            guard_threshold: self.guard_threshold,
            guard_min_devices: self.guard_min_devices,
            out: self.out,
            format: self.common.output()?,
        })
    }
}

#[derive(clap::Args)]
pub struct MigrationArgs {
    /// Migration logs (CSV or JSON lines: timestamp, device_id, cohort, event, reason).
    #[arg(required = true)]
    pub logs: Vec<PathBuf>,
    /// Device inventory with `cohort` and `migration_date` columns: migrations before the log,
    /// and each cohort's size when it lists devices of the cohort with no migration date.
    #[arg(long, short = 'i')]
    pub inventory: Option<PathBuf>,
    /// Devices in a cohort, e.g. `FOC=3132` (repeatable): for the remaining devices and the
    /// forecast; overrides the inventory's count, and is needed when the inventory lists only
    /// migrated devices.
    #[arg(long, value_name = "COHORT=DEVICES")]
    pub cohort_size: Vec<String>,
    /// Alert inputs: the cohorts' alert rates per 1,000 devices before and after migration.
    #[arg(long, value_name = "FILE")]
    pub alerts: Vec<PathBuf>,
    /// A pace change is at least this fraction away from the three weeks before.
    #[arg(long, default_value_t = 0.4)]
    pub min_change: f64,
    /// ... and at least this many devices a week.
    #[arg(long, default_value_t = 10.0)]
    pub min_pace: f64,
    /// Write every table as CSV and the charts (PNG, SVG) into this directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub filters: FilterArgs,
    #[command(flatten)]
    pub common: Common,
}

impl MigrationArgs {
    pub fn resolve(self) -> Result<commands::migration::MigrationConfig> {
        Ok(commands::migration::MigrationConfig {
            params: fleetwatch::analyze::migration::weekly::PaceParams {
                min_change: self.min_change,
                min_pace: self.min_pace,
                since: self.filters.since,
                until: self.filters.until,
                ..Default::default()
            },
            selection: self
                .common
                .selection(self.alerts, self.inventory, &self.filters)?,
            logs: self.logs,
            sizes: self.cohort_size,
            out: self.out,
            format: self.common.output()?,
        })
    }
}

#[derive(clap::Args)]
pub struct GbcsArgs {
    /// Messages, hex or base64 (none or `-`: read stdin).
    pub messages: Vec<String>,
    /// Output format.
    #[arg(long, short = 'f', value_parser = keyword::<OutputFormat>(), default_value = "table")]
    pub format: OutputFormat,
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Directory of the durable log (created if needed; recovered at start).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Device inventory: regions, types and installed bases for the live rates.
    #[arg(long, short = 'i')]
    pub inventory: Option<PathBuf>,
    /// Largest POST body, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Connections served at once. A connection beyond this (or beyond --max-conns-per-ip) is
    /// still read far enough to answer GET /healthz; anything else on it gets 503 with
    /// Retry-After and the connection is closed.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Connections one client address may hold at once (so one client cannot take every slot).
    #[arg(long, default_value_t = 128, value_name = "N")]
    pub max_conns_per_ip: usize,
    /// Seconds a client may take to send a request's headers (and finish the TLS handshake);
    /// an idle keep-alive connection is closed after this too.
    #[arg(long, default_value_t = 10, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds a client may take to send a request's whole body; a slower one gets 408, nothing
    /// is stored, and the connection is closed (its slot freed).
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,
    /// Bearer tokens, one per line (blank lines and # comments ignored); re-read on SIGHUP.
    /// Every request but GET /healthz and the dashboard page then needs
    /// `Authorization: Bearer TOKEN`, else 401.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS (TLS 1.2 and 1.3) with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Leave GET /metrics open without a token (for a Prometheus scraper without one).
    #[arg(long)]
    pub metrics_public: bool,
    /// Allow listening on a non-loopback address without --token-file (when a proxy in front
    /// authenticates). Without it such an address is refused.
    #[arg(long)]
    pub insecure: bool,
    /// Bodies waiting for the disk before new ones get 503.
    #[arg(long, default_value_t = 10_000)]
    pub max_pending: usize,
    /// Log size in bytes at which new bodies get 503 (fleetwatch never deletes the log).
    #[arg(long, default_value_t = u64::MAX)]
    pub max_log_bytes: u64,
    /// Segment file size in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub segment_bytes: u64,
    /// Sync after every message instead of once per group (for comparison; slower).
    #[arg(long)]
    pub fsync_each: bool,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    #[command(flatten)]
    pub window: WindowArgs,
}

impl ServeArgs {
    pub fn resolve(self) -> commands::serve::ServeRun {
        use fleetwatch::live::log::SyncMode;
        self.window.apply();
        commands::serve::ServeRun {
            inventory: self.inventory,
            config: fleetwatch::live::ServeConfig {
                listen: self.listen,
                data: self.data,
                max_body: self.max_body,
                max_connections: self.max_connections,
                max_pending: self.max_pending,
                max_log_bytes: self.max_log_bytes,
                segment_bytes: self.segment_bytes,
                sync: if self.fsync_each {
                    SyncMode::EachRecord
                } else {
                    SyncMode::Group
                },
                threads: self.threads,
                header_timeout: std::time::Duration::from_secs(self.header_timeout),
                body_timeout: std::time::Duration::from_secs(self.body_timeout),
                max_conns_per_ip: self.max_conns_per_ip,
                token_file: self.token_file,
                tls: self.tls_cert.zip(self.tls_key),
                metrics_public: self.metrics_public,
                insecure: self.insecure,
            },
        }
    }
}

#[derive(clap::Args)]
pub struct ConsumeArgs {
    /// Bootstrap brokers, host:port[,host:port...].
    #[arg(long, value_name = "HOST:PORT[,...]")]
    pub brokers: String,
    /// The topic to read (its partitions are shared by the group's instances).
    #[arg(long)]
    pub topic: String,
    /// Consumer group: instances with the same group share the partitions.
    #[arg(long)]
    pub group: String,
    /// Directory of the durable log (created if needed; recovered at start). One per instance.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Device inventory: regions, types and installed bases for the live rates.
    #[arg(long, short = 'i')]
    pub inventory: Option<PathBuf>,
    /// Serve /metrics, /api/summary and the live dashboard on this address (unauthenticated:
    /// a loopback address, unless --insecure).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Allow --listen on a non-loopback address, whose view anyone who reaches it can read
    /// (put an authenticating proxy in front).
    #[arg(long)]
    pub insecure: bool,
    /// The header row of a CSV topic (messages are header-less CSV lines), e.g.
    /// "timestamp,device_id,alert_code,message_id".
    #[arg(long, value_name = "H")]
    pub csv_header: Option<String>,
    /// A batch (one log sync, one commit) ends after this many messages...
    #[arg(long, default_value_t = 1000)]
    pub batch_max: usize,
    /// ... or this many milliseconds after its first message.
    #[arg(long, default_value_t = 100)]
    pub batch_ms: u64,
    /// A member silent this long is dropped from the group and its partitions move on.
    #[arg(long, default_value_t = 10_000)]
    pub session_timeout_ms: u32,
    /// Heartbeat interval (below --session-timeout-ms, typically a third of it).
    #[arg(long, default_value_t = 3_000)]
    pub heartbeat_ms: u32,
    /// How often librdkafka reports statistics (the per-partition lag in /metrics).
    #[arg(long, default_value_t = 1_000)]
    pub stats_ms: u32,
    /// Stop as on SIGTERM after this many seconds without a message or a partition assignment
    /// (for tests and one-off catch-ups).
    #[arg(long, value_name = "SECS")]
    pub exit_when_idle: Option<f64>,
    /// Segment file size in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub segment_bytes: u64,
    /// A further librdkafka property, KEY=VALUE (repeatable), e.g. -X client.id=fw-1.
    #[arg(long = "kafka-option", short = 'X', value_name = "KEY=VALUE")]
    pub kafka_options: Vec<String>,
}

impl ConsumeArgs {
    pub fn resolve(self) -> Result<commands::consume::ConsumeRun> {
        if self.heartbeat_ms >= self.session_timeout_ms {
            anyhow::bail!(
                "--heartbeat-ms ({}) must be below --session-timeout-ms ({})",
                self.heartbeat_ms,
                self.session_timeout_ms
            );
        }
        let mut kafka_options = Vec::new();
        for o in &self.kafka_options {
            let Some((k, v)) = o.split_once('=') else {
                anyhow::bail!("--kafka-option `{o}`: expected KEY=VALUE");
            };
            kafka_options.push((k.trim().to_string(), v.trim().to_string()));
        }
        let exit_when_idle = match self.exit_when_idle {
            Some(s) if !(s.is_finite() && s >= 0.0) => {
                anyhow::bail!("--exit-when-idle {s}: expected seconds, 0 or more")
            }
            Some(s) => Some(std::time::Duration::from_secs_f64(s)),
            None => None,
        };
        let mut config = fleetwatch::live::kafka::ConsumeConfig::new(
            &self.brokers,
            &self.topic,
            &self.group,
            self.data,
        );
        if let Some(addr) = self.listen
            && !addr.ip().is_loopback()
            && !self.insecure
        {
            bail!(
                "refusing --listen {addr}: the consumer's view has no authentication, so anyone who reaches it could read every group. Listen on a loopback address (127.0.0.1) behind an authenticating proxy, or pass --insecure"
            );
        }
        config.listen = self.listen;
        config.csv_header = self.csv_header;
        config.batch_max = self.batch_max.max(1);
        config.batch_ms = self.batch_ms;
        config.session_timeout_ms = self.session_timeout_ms;
        config.heartbeat_ms = self.heartbeat_ms;
        config.stats_ms = self.stats_ms;
        config.exit_when_idle = exit_when_idle;
        config.segment_bytes = self.segment_bytes;
        config.kafka_options = kafka_options;
        Ok(commands::consume::ConsumeRun {
            inventory: self.inventory,
            config,
        })
    }
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Devices in the fleet (SMETS1 devices not yet migrated included).
    #[arg(long, default_value_t = 10_000)]
    pub devices: usize,
    /// Days of alert traffic.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_day, default_value = "2024-01-01")]
    pub start: Day,
    /// Output directory (created if needed).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Format of the alert stream.
    #[arg(long, value_parser = keyword::<fleetwatch::generate::Format>(), default_value = "csv")]
    pub format: fleetwatch::generate::Format,
    /// Compress the alert stream with gzip.
    #[arg(long)]
    pub gzip: bool,
    /// Share of records preceded by a malformed record (to exercise rejects).
    #[arg(long, default_value_t = 0.001)]
    pub malformed: f64,
    /// Share of records delivered twice (same message id).
    #[arg(long, default_value_t = 0.001)]
    pub duplicates: f64,
}

impl GenerateArgs {
    pub fn resolve(self) -> (fleetwatch::generate::Config, PathBuf) {
        let mut cfg = fleetwatch::generate::Config::new(self.devices, self.days, self.seed);
        cfg.start = self.start;
        cfg.format = self.format;
        cfg.gzip = self.gzip;
        cfg.malformed = self.malformed.clamp(0.0, 1.0);
        cfg.duplicates = self.duplicates.clamp(0.0, 1.0);
        (cfg, self.out)
    }
}
