//! The device table as Parquet (`inventory/part-0.parquet`): one row per device, in row
//! groups of a million devices, with the columns a Spark job needs for installed bases.

use super::columns::{
    device_id_field, device_numbers, dictionary, dictionary_of_keys, dictionary_type, field,
};
use super::{Dataset, ParquetError, writer_properties};
use crate::inventory::{DeviceFilter, DeviceInfo, Inventory};
use crate::model::{DeviceType, Generation, Interner, Region};
use arrow_array::{ArrayRef, Date32Array, RecordBatch, UInt64Array, new_null_array};
use arrow_schema::{DataType, Schema, SchemaRef};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Columns of the inventory file the device table does not keep: each device's SMETS1
/// migration cohort and comms hub, when the file has them.
#[derive(Debug, Default)]
pub struct SideColumns {
    pub cohorts: Interner,
    /// Device -> (cohort id, 0 for none; comms hub).
    pub of_device: FxHashMap<u64, (u16, Option<u64>)>,
}

/// Devices per row group.
const ROW_GROUP: usize = 1 << 20;

/// The device table's columns, as batches have them: the ids as numbers, text in the file
/// (`columns::device_id_field`).
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        device_id_field("device_id", false),
        field("device_type", dictionary_type(), false),
        field("region", dictionary_type(), false),
        field("generation", dictionary_type(), false),
        field("model", dictionary_type(), true),
        field("firmware_version", dictionary_type(), true),
        field("install_date", DataType::Date32, true),
        field("cohort", dictionary_type(), true),
        device_id_field("comms_hub", true),
    ]))
}

/// The key-value metadata entry that records which inventory (and selection) a device table
/// was written from.
pub const IDENTITY_KEY: &str = "fleetwatch.inventory";

/// The number of devices in the device table at the dataset's root, if it was written from
/// the inventory `identity` (see `write_inventory`): it need not be written again.
pub fn current(dataset: &Dataset, identity: &str) -> Option<u64> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let f = std::fs::File::open(dataset.root().join("part-0.parquet")).ok()?;
    let r = SerializedFileReader::new(f).ok()?;
    let meta = r.metadata().file_metadata();
    let same = meta
        .key_value_metadata()?
        .iter()
        .any(|kv| kv.key == IDENTITY_KEY && kv.value.as_deref() == Some(identity));
    same.then(|| meta.num_rows() as u64)
}

/// Writes the devices the filter keeps as `part-0.parquet` at the dataset's root (replacing
/// the one there at `commit`), recording `identity` (the inventory file's and the
/// selection's) in its metadata. Returns the devices written.
pub fn write_inventory(
    inv: &Inventory,
    devices: &DeviceFilter,
    side: Option<&SideColumns>,
    identity: &str,
    dataset: &Dataset,
) -> Result<u64, ParquetError> {
    let props = writer_properties(
        &["device_id", "comms_hub"],
        &[
            "device_id",
            "device_type",
            "region",
            "generation",
            "model",
            "firmware_version",
            "cohort",
            "comms_hub",
        ],
        ROW_GROUP,
    )
    .into_builder()
    .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
        IDENTITY_KEY.to_string(),
        identity.to_string(),
    )]))
    .build();
    let mut file = dataset.create(&[], Some("part-0.parquet"), schema(), &props)?;
    let mut chunk: Vec<(u64, DeviceInfo)> = Vec::with_capacity(ROW_GROUP.min(inv.devices.len()));
    let mut total = 0;
    for (id, packed) in inv.devices.iter() {
        let info = DeviceInfo::unpack(packed);
        if !devices.is_all() && !devices.matches(&info) {
            continue;
        }
        chunk.push((id, info));
        if chunk.len() == ROW_GROUP {
            file.write(&batch(inv, side, &chunk)?)?;
            total += chunk.len() as u64;
            chunk.clear();
        }
    }
    if !chunk.is_empty() || total == 0 {
        file.write(&batch(inv, side, &chunk)?)?;
        total += chunk.len() as u64;
    }
    dataset.close(file)?;
    Ok(total)
}

fn batch(
    inv: &Inventory,
    side: Option<&SideColumns>,
    devices: &[(u64, DeviceInfo)],
) -> Result<RecordBatch, ParquetError> {
    let arrow = |cause| ParquetError::Arrow {
        what: "the inventory",
        cause,
    };
    let names = |all: &[&'static str]| all.to_vec();
    let regions = names(&Region::ALL.iter().map(|r| r.name()).collect::<Vec<_>>());
    let types = names(&DeviceType::ALL.iter().map(|r| r.name()).collect::<Vec<_>>());
    let gens = names(&Generation::ALL.iter().map(|r| r.name()).collect::<Vec<_>>());
    let models: Vec<&str> = inv.models.iter().map(String::as_str).collect();
    let firmwares: Vec<&str> = inv.firmwares.iter().map(String::as_str).collect();
    let named = |i: u16, list: &[&str]| {
        (list.get(i as usize).is_some_and(|s| !s.is_empty())).then_some(i as i32)
    };
    let side_of = |id: u64| side.and_then(|s| s.of_device.get(&id)).copied();
    let cohorts: Vec<&str> = side
        .map(|s| s.cohorts.names.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut cols: Vec<ArrayRef> = vec![
        device_numbers(devices.iter().map(|(id, _)| Some(*id))),
        dictionary_of_keys(
            devices.iter().map(|(_, i)| i.device_type as i32).collect(),
            &types,
        )
        .map_err(arrow)?,
        dictionary_of_keys(
            devices.iter().map(|(_, i)| i.region as i32).collect(),
            &regions,
        )
        .map_err(arrow)?,
        dictionary_of_keys(
            devices.iter().map(|(_, i)| i.generation as i32).collect(),
            &gens,
        )
        .map_err(arrow)?,
        dictionary(
            devices.iter().map(|(_, i)| named(i.model, &models)),
            &models,
        )
        .map_err(arrow)?,
        dictionary(
            devices.iter().map(|(_, i)| named(i.firmware, &firmwares)),
            &firmwares,
        )
        .map_err(arrow)?,
        Arc::new(Date32Array::from(
            devices.iter().map(|(_, i)| i.installed).collect::<Vec<_>>(),
        )),
    ];
    if side.is_some() {
        cols.push(
            dictionary(
                devices.iter().map(|(id, _)| {
                    side_of(*id)
                        .map(|s| s.0)
                        .filter(|&c| c != 0)
                        .map(|c| c as i32)
                }),
                &cohorts,
            )
            .map_err(arrow)?,
        );
        cols.push(device_numbers(
            devices.iter().map(|(id, _)| side_of(*id).and_then(|s| s.1)),
        ));
    } else {
        // Without the inventory's side columns, both are null throughout: made whole, not
        // a row at a time.
        cols.push(new_null_array(&dictionary_type(), devices.len()));
        cols.push(Arc::new(UInt64Array::new_null(devices.len())));
    }
    RecordBatch::try_new(schema(), cols).map_err(arrow)
}
