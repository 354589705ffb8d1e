//! An `alerts` report as a Parquet dataset: one file per partition, partitioned by `day`
//! (grouped by day or hour) and `region` (grouped by region); the other dimensions and the
//! measures are the columns, named as in the CSV output.

use super::columns::{dictionary_of, dictionary_type, field, timestamp_type};
use super::{Dataset, FileLayout, ParquetError, partition_dir, writer_properties};
use crate::analyze::alerts::{AlertReport, AlertRow, Dim};
use crate::inventory::Inventory;
use crate::model::Day;
use crate::model::Region;
use crate::model::time::format_day;
use crate::render::alerts::key_value;
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Schema};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The partition columns of a report: `day` when grouped by day or hour, `region` when
/// grouped by region.
pub fn partition_dims(by: &[Dim]) -> (bool, bool) {
    (
        by.contains(&Dim::Day) || by.contains(&Dim::Hour),
        by.contains(&Dim::Region),
    )
}

/// Writes the report's rows into `dataset`, one file per partition. Returns the rows written.
pub fn write_report(
    r: &AlertReport,
    inv: &Inventory,
    dataset: &Dataset,
) -> Result<u64, ParquetError> {
    let (by_day, by_region) = partition_dims(&r.by);
    let mut parts: BTreeMap<(Option<Day>, Option<Region>), Vec<&AlertRow>> = BTreeMap::new();
    for row in &r.rows {
        let day = row.key.day.filter(|_| by_day);
        let region = row.key.region.filter(|_| by_region);
        parts.entry((day, region)).or_default().push(row);
    }
    let props = writer_properties(&["hour", "device_id"], &[], 1 << 20);
    let mut layout = None;
    for ((day, region), rows) in &parts {
        let mut dirs = Vec::new();
        if by_day {
            dirs.push(partition_dir(
                "day",
                &day.map(format_day).unwrap_or_default(),
            ));
        }
        if by_region {
            dirs.push(partition_dir(
                "region",
                region.map(|r| r.name()).unwrap_or_default(),
            ));
        }
        let batch = report_batch(r, inv, rows)?;
        // Every partition's batch has the same columns: one layout for all the files.
        if layout.is_none() {
            let made = FileLayout::new(batch.schema(), &props)
                .map_err(|cause| ParquetError::parquet(dataset.root(), cause))?;
            layout = Some(made);
        }
        let layout = layout.as_ref().expect("made for the first partition");
        dataset.write_with(&dirs, &[batch], layout)?;
    }
    Ok(r.rows.len() as u64)
}

/// The columns of some of a report's rows (the partition columns left out).
pub fn report_batch(
    r: &AlertReport,
    inv: &Inventory,
    rows: &[&AlertRow],
) -> Result<RecordBatch, ParquetError> {
    let arrow = |cause| ParquetError::Arrow {
        what: "the alerts table",
        cause,
    };
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for &d in &r.by {
        match d {
            Dim::Day | Dim::Region => continue,
            Dim::Hour => {
                let v: Vec<Option<i64>> = rows
                    .iter()
                    .map(|x| x.key.hour.map(|h| h as i64 * 3_600_000_000))
                    .collect();
                fields.push(field("hour", timestamp_type(), true));
                cols.push(Arc::new(
                    TimestampMicrosecondArray::from(v).with_timezone("UTC"),
                ));
            }
            Dim::Device => {
                fields.push(field("device_id", DataType::Utf8, true));
                cols.push(super::columns::device_ids(
                    rows.iter().map(|x| x.key.device),
                ));
            }
            _ => {
                let text: Vec<String> = rows
                    .iter()
                    .map(|x| key_value(d, &x.key, &r.labels, inv, &r.scope.clock))
                    .collect();
                fields.push(field(d.column(), dictionary_type(), true));
                cols.push(
                    dictionary_of(
                        text.iter()
                            .map(|s| Some(s.as_str()).filter(|s| !s.is_empty())),
                    )
                    .map_err(arrow)?,
                );
            }
        }
    }
    let int = |f: &dyn Fn(&AlertRow) -> Option<u64>| -> ArrayRef {
        Arc::new(Int64Array::from(
            rows.iter()
                .map(|x| f(x).map(|v| v.min(i64::MAX as u64) as i64))
                .collect::<Vec<_>>(),
        ))
    };
    fields.push(field("alerts", DataType::Int64, false));
    cols.push(int(&|x| Some(x.alerts)));
    fields.push(field("records", DataType::Int64, false));
    cols.push(int(&|x| Some(x.records)));
    if r.distinct {
        fields.push(field("alerting_devices", DataType::Int64, false));
        cols.push(int(&|x| Some(x.devices)));
        fields.push(field("alerting_devices_exact", DataType::Boolean, false));
        cols.push(Arc::new(BooleanArray::from(
            rows.iter().map(|x| x.devices_exact).collect::<Vec<_>>(),
        )));
    }
    let (denominator, rate) = if r.by_day() {
        ("installed_devices", "per_1000_per_day")
    } else {
        ("device_days", "per_1000_per_day")
    };
    let rate = if r.by.contains(&Dim::Hour) {
        "per_1000_per_hour"
    } else {
        rate
    };
    fields.push(field(denominator, DataType::Int64, true));
    cols.push(int(&|x| x.denominator));
    fields.push(field(rate, DataType::Float64, true));
    cols.push(Arc::new(Float64Array::from(
        rows.iter().map(|x| x.per_1000).collect::<Vec<_>>(),
    )));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(arrow)
}
