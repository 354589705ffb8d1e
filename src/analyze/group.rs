//! What a group is: the dimensions a query groups by (`Dim`) and the values of one group
//! (`GroupKey`), shared by the alert fold (`alerts`) and its dense index (`dense`).

use super::labels::LabelKey;
use crate::inventory::{DenomDims, DenomKey};
use crate::model::{AlertCode, Day, DeviceType, Generation, Hour, Region};

/// A dimension to group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Day,
    /// The hour (an absolute hour, shown in the run's time zone): an hourly series.
    Hour,
    Region,
    DeviceType,
    Generation,
    Code,
    Category,
    Model,
    Firmware,
    /// The label a reclassification rule gives (the official name when no rule matches).
    Label,
    /// The device itself: one group per alerting device (offenders).
    Device,
}

impl Dim {
    pub const ALL: [Dim; 11] = [
        Dim::Day,
        Dim::Hour,
        Dim::Region,
        Dim::DeviceType,
        Dim::Generation,
        Dim::Code,
        Dim::Category,
        Dim::Model,
        Dim::Firmware,
        Dim::Label,
        Dim::Device,
    ];

    /// Column name in CSV/JSON output.
    pub fn column(self) -> &'static str {
        match self {
            Dim::Day => "day",
            Dim::Hour => "hour",
            Dim::Region => "region",
            Dim::DeviceType => "device_type",
            Dim::Generation => "generation",
            Dim::Code => "alert_code",
            Dim::Category => "category",
            Dim::Model => "model",
            Dim::Firmware => "firmware_version",
            Dim::Label => "label",
            Dim::Device => "device_id",
        }
    }

    pub fn parse(s: &str) -> Result<Dim, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "day" | "date" => Dim::Day,
            "hour" | "hourly" => Dim::Hour,
            "region" | "csp" | "csp_region" => Dim::Region,
            "type" | "device_type" | "devicetype" => Dim::DeviceType,
            "gen" | "generation" | "smets" => Dim::Generation,
            "code" | "alert_code" => Dim::Code,
            "category" | "cat" => Dim::Category,
            "model" => Dim::Model,
            "firmware" | "fw" | "firmware_version" => Dim::Firmware,
            "label" => Dim::Label,
            "device" | "device_id" | "eui" => Dim::Device,
            other => {
                return Err(format!(
                    "`{other}` is not a dimension; use any of: day, hour, region, type, gen, code, category, model, firmware, label, device"
                ));
            }
        })
    }

    pub fn parse_list(s: &str) -> Result<Vec<Dim>, String> {
        let mut out: Vec<Dim> = Vec::new();
        for p in s.split(',').filter(|p| !p.trim().is_empty()) {
            let d = Dim::parse(p)?;
            if !out.contains(&d) {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// The device attributes among `by` that split the installed base (the denominators).
pub fn denom_dims(by: &[Dim]) -> DenomDims {
    DenomDims {
        region: by.contains(&Dim::Region),
        device_type: by.contains(&Dim::DeviceType),
        generation: by.contains(&Dim::Generation),
        model: by.contains(&Dim::Model),
        firmware: by.contains(&Dim::Firmware),
    }
}

/// The values of a group; dimensions not grouped by are `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub day: Option<Day>,
    /// The hour bucket (`Clock::hour`); its local day is in `day` too, for the installed base.
    pub hour: Option<Hour>,
    pub region: Option<Region>,
    pub device_type: Option<DeviceType>,
    pub generation: Option<Generation>,
    pub code: Option<AlertCode>,
    pub category: Option<u8>,
    pub model: Option<u16>,
    pub firmware: Option<u16>,
    pub label: Option<LabelKey>,
    /// The class the query's split puts the alert in (`AlertQuery::split`), 0..=3.
    pub class: Option<u8>,
    /// The device (EUI-64), when grouping by device.
    pub device: Option<u64>,
}

impl GroupKey {
    /// All dimensions in 128 bits: day 33, region 4, type 4, generation 3, code 19,
    /// category 9, model 17, firmware 17, label 19, class 3 (each `None` is 0). An hour takes
    /// the day's bits: its day is a function of it (and one query either groups by hour or
    /// not, so the two never meet in one map).
    ///
    /// Grouped by device, the device's 64 bits take the place of the attributes the inventory
    /// gives a device (region, type, generation, model, firmware, label, category): they are a
    /// function of the device and code. (A device the inventory lacks keeps the attributes of
    /// its first record.)
    pub(super) fn pack(&self) -> u128 {
        let day = self
            .hour
            .or(self.day)
            .map(|d| (d as u32 as u128) | 1 << 32)
            .unwrap_or(0);
        if let Some(device) = self.device {
            let code = self.code.map(|c| c.0 as u128 + 1).unwrap_or(0);
            let class = self.class.map(|m| m as u128 + 1).unwrap_or(0);
            return day | code << 33 | (class << 52) | (device as u128) << 64;
        }
        let o8 = |v: Option<u8>| v.map(|x| x as u128 + 1).unwrap_or(0);
        let o16 = |v: Option<u16>| v.map(|x| x as u128 + 1).unwrap_or(0);
        let o32 = |v: Option<u32>| v.map(|x| x as u128 + 1).unwrap_or(0);
        day | o8(self.region.map(|r| r as u8)) << 33
            | o8(self.device_type.map(|r| r as u8)) << 37
            | o8(self.generation.map(|r| r as u8)) << 41
            | o32(self.code.map(|c| c.0)) << 44
            | o8(self.category) << 63
            | o16(self.model) << 72
            | o16(self.firmware) << 89
            | o32(self.label.map(|l| l.0)) << 106
            | o8(self.class.map(|c| c & 3)) << 125
    }

    /// The key with only the dimensions in `dims` kept (the others `None`).
    pub fn project(&self, dims: &[Dim]) -> GroupKey {
        let has = |d| dims.contains(&d);
        GroupKey {
            // An hour keeps its day (the installed base is the day's).
            day: self.day.filter(|_| has(Dim::Day) || has(Dim::Hour)),
            hour: self.hour.filter(|_| has(Dim::Hour)),
            region: self.region.filter(|_| has(Dim::Region)),
            device_type: self.device_type.filter(|_| has(Dim::DeviceType)),
            generation: self.generation.filter(|_| has(Dim::Generation)),
            code: self.code.filter(|_| has(Dim::Code)),
            category: self.category.filter(|_| has(Dim::Category)),
            model: self.model.filter(|_| has(Dim::Model)),
            firmware: self.firmware.filter(|_| has(Dim::Firmware)),
            label: self.label.filter(|_| has(Dim::Label)),
            class: self.class,
            device: self.device.filter(|_| has(Dim::Device)),
        }
    }

    pub fn denom_key(&self) -> DenomKey {
        DenomKey {
            region: self.region,
            device_type: self.device_type,
            generation: self.generation,
            model: self.model,
            firmware: self.firmware,
        }
    }
}
