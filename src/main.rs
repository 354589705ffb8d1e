//! The `fleetwatch` command line: parse arguments, call the library, map the outcome to an
//! exit status. Everything testable lives in the library.

use clap::{Parser, Subcommand};
use fleetwatch::analyze::alerts::{AlertQuery, CodeFilter, Dedup, GroupBy};
use fleetwatch::cmd::{self, Status};
use fleetwatch::decode::ColumnMap;
use fleetwatch::model::Day;
use fleetwatch::render::OutputFormat;
use fleetwatch::scan::ReadOptions;
use std::path::PathBuf;
use std::process::ExitCode;

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
        #[command(flatten)]
        common: Common,
    },
    /// Explain alert codes: the official name and category of a code, or every code whose name
    /// or category contains a word. Without an argument, list the whole catalogue.
    Codes {
        /// A code (81B8, N24) or a word (polarity, firmware, supply).
        query: Option<String>,
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
    /// message_id, count, region, device_type, generation.
    #[arg(long, default_value = "")]
    columns: ColumnMap,
    /// Duplicate detection: `auto` drops repeats of records that carry a message id (same
    /// device, code, time and id), `on` also repeats of rows without one, `off` keeps all.
    #[arg(long, value_enum, default_value_t = Dedup::Auto)]
    dedup: Dedup,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
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
    let result = match cli.command {
        Command::Alerts {
            inputs,
            inventory,
            by,
            codes,
            since,
            until,
            common,
        } => {
            let query = AlertQuery {
                by: by.0,
                codes,
                since,
                until,
                dedup: common.dedup,
            };
            cmd::alerts::run(cmd::alerts::AlertsConfig {
                inputs,
                inventory,
                query,
                read: ReadOptions {
                    columns: common.columns,
                    threads: common.threads,
                },
                format: common.format,
                rejects: common.rejects,
            })
        }
        Command::Codes { query } => cmd::codes::run(query.as_deref()),
    };
    match result {
        Ok(s) => s.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            Status::Failed.into()
        }
    }
}
