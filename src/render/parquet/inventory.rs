//! The device table as Parquet (`inventory/part-0.parquet`): one row per device, in row
//! groups of 131,072 devices, with the columns a Spark job needs for installed bases.

use super::columns::{
    device_id_field, device_numbers_of, dictionary_of_keys, dictionary_type, dictionary_with_nulls,
    field, is_named,
};
use super::{Dataset, FileLayout, ParquetError, writer_properties};
use crate::inventory::{DeviceFilter, DeviceInfo, Inventory};
use crate::model::{DeviceType, Generation, Interner, Region};
use arrow_array::{ArrayRef, Date32Array, RecordBatch, UInt64Array, new_null_array};
use arrow_buffer::NullBufferBuilder;
use arrow_schema::{DataType, Schema, SchemaRef};
use rustc_hash::FxHashMap;
use std::mem::take;
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
const ROW_GROUP: usize = 1 << 17;

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
    let layout = FileLayout::new(schema(), &props)
        .map_err(|cause| ParquetError::parquet(dataset.root(), cause))?;
    let mut file = dataset.create(&[], Some("part-0.parquet"), &layout)?;
    let names = Names::of(inv, side);
    let has_side = side.is_some();
    let mut chunk = Columns::with_capacity(ROW_GROUP.min(inv.devices.len()), has_side);
    let mut total = 0;
    for (id, packed) in inv.devices.iter() {
        let info = DeviceInfo::unpack(packed);
        if !devices.is_all() && !devices.matches(&info) {
            continue;
        }
        chunk.push(id, &info, &names, side);
        if chunk.len() == ROW_GROUP {
            let full = std::mem::replace(&mut chunk, Columns::with_capacity(ROW_GROUP, has_side));
            total += full.len() as u64;
            file.write(&full.batch(&names, has_side)?)?;
        }
    }
    if chunk.len() > 0 || total == 0 {
        total += chunk.len() as u64;
        file.write(&chunk.batch(&names, has_side)?)?;
    }
    dataset.close(file)?;
    Ok(total)
}

/// The names behind the device table's numbers, and which of them are named.
struct Names<'a> {
    regions: Vec<&'static str>,
    types: Vec<&'static str>,
    gens: Vec<&'static str>,
    models: Vec<&'a str>,
    firmwares: Vec<&'a str>,
    cohorts: Vec<&'a str>,
}

impl<'a> Names<'a> {
    fn of(inv: &'a Inventory, side: Option<&'a SideColumns>) -> Names<'a> {
        Names {
            regions: Region::ALL.iter().map(|r| r.name()).collect(),
            types: DeviceType::ALL.iter().map(|r| r.name()).collect(),
            gens: Generation::ALL.iter().map(|r| r.name()).collect(),
            models: inv.models.iter().map(String::as_str).collect(),
            firmwares: inv.firmwares.iter().map(String::as_str).collect(),
            cohorts: side
                .map(|s| s.cohorts.names.iter().map(String::as_str).collect())
                .unwrap_or_default(),
        }
    }
}

/// A row group's columns, gathered device by device in one pass (a pass a column read the
/// devices seven times over).
struct Columns {
    ids: Vec<u64>,
    types: Vec<i32>,
    regions: Vec<i32>,
    gens: Vec<i32>,
    models: Vec<i32>,
    model_nulls: NullBufferBuilder,
    firmwares: Vec<i32>,
    firmware_nulls: NullBufferBuilder,
    installed: Vec<i32>,
    installed_nulls: NullBufferBuilder,
    cohorts: Vec<i32>,
    cohort_nulls: NullBufferBuilder,
    hubs: Vec<u64>,
    hub_nulls: NullBufferBuilder,
}

impl Columns {
    /// Room for `n` devices (the side columns' only when the inventory has them).
    fn with_capacity(n: usize, side: bool) -> Columns {
        let m = if side { n } else { 0 };
        Columns {
            ids: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            regions: Vec::with_capacity(n),
            gens: Vec::with_capacity(n),
            models: Vec::with_capacity(n),
            model_nulls: NullBufferBuilder::new(n),
            firmwares: Vec::with_capacity(n),
            firmware_nulls: NullBufferBuilder::new(n),
            installed: Vec::with_capacity(n),
            installed_nulls: NullBufferBuilder::new(n),
            cohorts: Vec::with_capacity(m),
            cohort_nulls: NullBufferBuilder::new(n),
            hubs: Vec::with_capacity(m),
            hub_nulls: NullBufferBuilder::new(n),
        }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    #[inline]
    fn push(&mut self, id: u64, i: &DeviceInfo, names: &Names, side: Option<&SideColumns>) {
        self.ids.push(id);
        self.types.push(i.device_type as i32);
        self.regions.push(i.region as i32);
        self.gens.push(i.generation as i32);
        let model = is_named(&names.models, i.model as usize);
        self.models.push(if model { i.model as i32 } else { 0 });
        self.model_nulls.append(model);
        let firmware = is_named(&names.firmwares, i.firmware as usize);
        self.firmwares
            .push(if firmware { i.firmware as i32 } else { 0 });
        self.firmware_nulls.append(firmware);
        self.installed.push(i.installed.unwrap_or(0));
        self.installed_nulls.append(i.installed.is_some());
        if let Some(side) = side {
            let (cohort, hub) = side.of_device.get(&id).copied().unwrap_or((0, None));
            self.cohorts.push(cohort as i32);
            self.cohort_nulls.append(cohort != 0);
            self.hubs.push(hub.unwrap_or(0));
            self.hub_nulls.append(hub.is_some());
        }
    }

    /// The batch of the devices gathered.
    fn batch(mut self, names: &Names, side: bool) -> Result<RecordBatch, ParquetError> {
        let arrow = |cause| ParquetError::Arrow {
            what: "the inventory",
            cause,
        };
        let n = self.len();
        let mut cols: Vec<ArrayRef> = vec![
            device_numbers_of(take(&mut self.ids), None),
            dictionary_of_keys(take(&mut self.types), &names.types).map_err(arrow)?,
            dictionary_of_keys(take(&mut self.regions), &names.regions).map_err(arrow)?,
            dictionary_of_keys(take(&mut self.gens), &names.gens).map_err(arrow)?,
            dictionary_with_nulls(
                take(&mut self.models),
                self.model_nulls.finish(),
                &names.models,
            )
            .map_err(arrow)?,
            dictionary_with_nulls(
                take(&mut self.firmwares),
                self.firmware_nulls.finish(),
                &names.firmwares,
            )
            .map_err(arrow)?,
            Arc::new(Date32Array::new(
                take(&mut self.installed).into(),
                self.installed_nulls.finish(),
            )),
        ];
        if side {
            cols.push(
                dictionary_with_nulls(
                    take(&mut self.cohorts),
                    self.cohort_nulls.finish(),
                    &names.cohorts,
                )
                .map_err(arrow)?,
            );
            cols.push(device_numbers_of(
                take(&mut self.hubs),
                self.hub_nulls.finish(),
            ));
        } else {
            // Without the inventory's side columns, both are null throughout: made whole, not
            // a row at a time.
            cols.push(new_null_array(&dictionary_type(), n));
            cols.push(Arc::new(UInt64Array::new_null(n)));
        }
        RecordBatch::try_new(schema(), cols).map_err(arrow)
    }
}
