//! Which devices a run looks at: the `--region`, `--type`, `--gen`, `--model` and `--firmware`
//! filters, bound to the inventory's model and firmware numbering.
//!
//! One value of the filter serves both sides of every rate: the fold keeps only the alerts of
//! matching devices, and the denominators count only matching devices, so a rate over
//! North ESME divides North ESME alerts by North ESME devices.

use super::{DeviceInfo, Inventory};
use crate::model::{DeviceType, Generation, Region};

/// Device attributes to keep; an empty list keeps every value of that attribute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceFilter {
    pub regions: Vec<Region>,
    pub device_types: Vec<DeviceType>,
    pub generations: Vec<Generation>,
    /// Model ids (`Inventory::models`); `None` keeps every model.
    pub models: Option<Vec<u16>>,
    /// Firmware ids (`Inventory::firmwares`); `None` keeps every version.
    pub firmwares: Option<Vec<u16>>,
}

/// A model or firmware name the inventory does not know.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no device in the inventory has {what} `{name}`; {what}s there: {known}")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
    pub known: String,
}

impl DeviceFilter {
    /// Binds model and firmware names to the inventory's ids.
    pub fn bind(
        regions: &[Region],
        device_types: &[DeviceType],
        generations: &[Generation],
        models: &[String],
        firmwares: &[String],
        inv: &Inventory,
    ) -> Result<DeviceFilter, UnknownName> {
        let ids = |what: &'static str,
                   names: &[String],
                   known: &[String],
                   find: &dyn Fn(&str) -> Option<u16>|
         -> Result<Option<Vec<u16>>, UnknownName> {
            if names.is_empty() {
                return Ok(None);
            }
            names
                .iter()
                .map(|n| {
                    find(n).ok_or_else(|| UnknownName {
                        what,
                        name: n.clone(),
                        known: list(known),
                    })
                })
                .collect::<Result<Vec<u16>, _>>()
                .map(Some)
        };
        Ok(DeviceFilter {
            regions: regions.to_vec(),
            device_types: device_types.to_vec(),
            generations: generations.to_vec(),
            models: ids("model", models, &inv.models, &|n| inv.model_id(n))?,
            firmwares: ids("firmware version", firmwares, &inv.firmwares, &|n| {
                inv.firmware_id(n)
            })?,
        })
    }

    /// Whether every device passes (the filter costs nothing then).
    pub fn is_all(&self) -> bool {
        self.regions.is_empty()
            && self.device_types.is_empty()
            && self.generations.is_empty()
            && self.models.is_none()
            && self.firmwares.is_none()
    }

    /// Whether the filter names a model or firmware (which count-table inventories lack).
    pub fn needs_models(&self) -> bool {
        self.models.is_some() || self.firmwares.is_some()
    }

    /// Whether region, type and generation pass (all a count table knows of a device).
    #[inline]
    pub fn matches_attrs(&self, info: &DeviceInfo) -> bool {
        fn ok<T: PartialEq>(list: &[T], v: T) -> bool {
            list.is_empty() || list.contains(&v)
        }
        ok(&self.regions, info.region)
            && ok(&self.device_types, info.device_type)
            && ok(&self.generations, info.generation)
    }

    #[inline]
    pub fn matches(&self, info: &DeviceInfo) -> bool {
        self.matches_attrs(info)
            && self.models.as_ref().is_none_or(|m| m.contains(&info.model))
            && self
                .firmwares
                .as_ref()
                .is_none_or(|f| f.contains(&info.firmware))
    }
}

/// The non-empty names, comma-separated, at most 12 of them.
fn list(names: &[String]) -> String {
    let known: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    match known.len() {
        0 => "none".into(),
        n if n > 12 => format!("{}, ... ({n} in all)", known[..12].join(", ")),
        _ => known.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(region: Region, model: u16) -> DeviceInfo {
        DeviceInfo {
            region,
            device_type: DeviceType::Esme,
            generation: Generation::Smets2,
            model,
            firmware: 0,
            installed: None,
        }
    }

    #[test]
    fn empty_lists_keep_everything_and_lists_keep_their_values() {
        let all = DeviceFilter::default();
        assert!(all.is_all() && all.matches(&info(Region::South, 3)));
        let inv = Inventory::with_models(&["EDMI-ES2", "ARO-AM2"]);
        let f = DeviceFilter::bind(
            &[Region::North],
            &[],
            &[],
            &["ARO-AM2".to_string()],
            &[],
            &inv,
        )
        .unwrap();
        assert!(!f.is_all() && f.needs_models());
        assert!(f.matches(&info(Region::North, 2)));
        assert!(!f.matches(&info(Region::North, 1)), "another model");
        assert!(!f.matches(&info(Region::South, 2)), "another region");
    }

    #[test]
    fn an_unknown_model_names_the_known_ones() {
        let inv = Inventory::with_models(&["EDMI-ES2", "ARO-AM2"]);
        let e = DeviceFilter::bind(&[], &[], &[], &["EDMI".to_string()], &[], &inv).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no device in the inventory has model `EDMI`; models there: EDMI-ES2, ARO-AM2"
        );
    }
}
