//! The shared filters every analysis command takes, as the user wrote them, and what they
//! become once bound to the inventory (`Scope`).

use crate::analyze::alerts::{CodeFilter, Scope};
use crate::inventory::{DeviceFilter, Inventory, UnknownName};
use crate::model::time::format_day;
use crate::model::{Clock, Day, DeviceType, Generation, Region};
use std::sync::Arc;

/// `--since/--until`, `--codes`, `--region`, `--type`, `--gen`, `--model`, `--firmware`.
/// Empty lists keep everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    pub since: Option<Day>,
    pub until: Option<Day>,
    pub codes: Option<CodeFilter>,
    pub regions: Vec<Region>,
    pub device_types: Vec<DeviceType>,
    pub generations: Vec<Generation>,
    pub models: Vec<String>,
    pub firmwares: Vec<String>,
    /// The time zone days and hours are cut in (`--tz`); UTC when `None`.
    pub tz: Option<Clock>,
}

impl Filters {
    /// Binds model and firmware names to the inventory; an unknown name is an error that lists
    /// the names there are.
    pub fn bind(&self, inv: &Inventory) -> Result<Scope, UnknownName> {
        Ok(Scope {
            since: self.since,
            until: self.until,
            codes: self.codes.clone(),
            clock: Arc::new(self.tz.clone().unwrap_or_default()),
            devices: DeviceFilter::bind(
                &self.regions,
                &self.device_types,
                &self.generations,
                &self.models,
                &self.firmwares,
                inv,
            )?,
        })
    }

    /// The same filters without the code filter (for analyses whose evidence is a fixed set of
    /// codes, such as the OTA funnel, and which apply `--codes` to their own tables).
    pub fn without_codes(&self) -> Filters {
        Filters {
            codes: None,
            ..self.clone()
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    /// Each filter given, as (name, value), in the order the options are documented.
    pub fn items(&self) -> Vec<(&'static str, String)> {
        let join = |v: Vec<String>| v.join(",");
        let mut out = Vec::new();
        if let Some(d) = self.since {
            out.push(("since", format_day(d)));
        }
        if let Some(d) = self.until {
            out.push(("until", format_day(d)));
        }
        if let Some(c) = &self.codes {
            out.push(("codes", c.to_string()));
        }
        let named = [
            (
                "region",
                self.regions.iter().map(|r| r.to_string()).collect(),
            ),
            (
                "type",
                self.device_types.iter().map(|t| t.to_string()).collect(),
            ),
            (
                "gen",
                self.generations.iter().map(|g| g.to_string()).collect(),
            ),
            ("model", self.models.clone()),
            ("firmware", self.firmwares.clone()),
        ];
        for (name, values) in named {
            if !values.is_empty() {
                out.push((name, join(values)));
            }
        }
        if let Some(tz) = &self.tz {
            out.push(("tz", tz.name().to_string()));
        }
        out
    }

    /// One line for a header: `region North, model EDMI-ES2, since 2024-01-01`, or `all
    /// alerts` when nothing is filtered.
    pub fn describe(&self) -> String {
        let items = self.items();
        if items.is_empty() {
            return "all alerts".into();
        }
        items
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The filters as a JSON object (for the metadata of every JSON output).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.items()
                .into_iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_what_was_selected() {
        assert_eq!(Filters::default().describe(), "all alerts");
        let f = Filters {
            since: crate::model::time::parse_date(b"2024-01-02"),
            regions: vec![Region::North, Region::South4G],
            models: vec!["EDMI-ES2".into()],
            codes: Some(CodeFilter::parse("81B8,supply").unwrap()),
            ..Default::default()
        };
        assert_eq!(
            f.describe(),
            "since 2024-01-02, codes 81B8,supply, region North,4G South, model EDMI-ES2"
        );
        assert_eq!(f.to_json()["region"], "North,4G South");
        assert!(f.without_codes().codes.is_none());
    }

    #[test]
    fn binding_checks_model_names() {
        let inv = Inventory::with_models(&["EDMI-ES2"]);
        let ok = Filters {
            models: vec!["EDMI-ES2".into()],
            ..Default::default()
        };
        assert_eq!(ok.bind(&inv).unwrap().devices.models, Some(vec![1]));
        let bad = Filters {
            firmwares: vec!["9.9".into()],
            ..Default::default()
        };
        assert!(bad.bind(&inv).is_err());
    }
}
