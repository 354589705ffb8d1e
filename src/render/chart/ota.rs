//! The OTA chart: the share of each region's targeted devices running the target version,
//! cumulative per day.
//!
//! Every region's line covers the same days (the first to the last upgrade anywhere), so a
//! region whose upgrades start late is flat at zero before, not missing. Shares, not counts,
//! so that regions with more targets do not look further on.

use super::{ChartData, LineChart, Series, region_color};
use crate::analyze::ota::campaign::Campaigns;
use crate::analyze::ota::funnel::Aggregate;
use crate::model::Day;

/// The percentage of each region's targeted devices running the target version, per day.
pub fn cumulative_chart(agg: &Aggregate, campaigns: &Campaigns) -> ChartData {
    let mut targeted: std::collections::BTreeMap<crate::model::Region, u64> = Default::default();
    for (c, f) in &agg.funnel {
        *targeted.entry(c.region).or_default() += f.targeted;
    }
    let days: Vec<Day> = agg
        .upgrades_per_day
        .values()
        .flat_map(|m| m.keys().copied())
        .collect();
    let (first, last) = (
        days.iter().copied().min().unwrap_or(0),
        days.iter().copied().max().unwrap_or(0),
    );
    let series = agg
        .upgrades_per_day
        .iter()
        .map(|(region, per_day)| {
            let mut total = 0u64;
            let of = targeted.get(region).copied().unwrap_or(0).max(1) as f64;
            Series {
                name: region.name().to_string(),
                color: region_color(*region),
                points: (first..=last)
                    .map(|d| {
                        total += per_day.get(&d).copied().unwrap_or(0);
                        (d, total as f64 * 100.0 / of)
                    })
                    .collect(),
            }
        })
        .collect();
    let names: Vec<&str> = campaigns
        .names
        .names
        .iter()
        .skip(1)
        .map(String::as_str)
        .collect();
    ChartData::Line(LineChart {
        title: format!(
            "Share of targeted devices running the target version: {}",
            names.join(", ")
        ),
        y_label: "% of the region's targeted devices".into(),
        series,
        markers: Vec::new(),
        days: (first, last),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Region;

    #[test]
    fn every_region_covers_every_day_cumulatively() {
        let mut agg = Aggregate::default();
        // 10 targeted devices in North, 4 in South.
        for (region, targeted) in [(Region::North, 10), (Region::South, 4)] {
            let cohort = crate::analyze::ota::funnel::Cohort {
                campaign: 1,
                region,
                model: 0,
                source: 0,
            };
            agg.funnel.entry(cohort).or_default().targeted = targeted;
        }
        agg.upgrades_per_day
            .entry(Region::North)
            .or_default()
            .extend([(10, 2), (12, 1)]);
        agg.upgrades_per_day
            .entry(Region::South)
            .or_default()
            .insert(11, 4);
        let mut campaigns = Campaigns::default();
        campaigns.names.id("C1");
        let ChartData::Line(l) = cumulative_chart(&agg, &campaigns) else {
            panic!("a line chart")
        };
        assert_eq!(l.days, (10, 12));
        assert_eq!(l.series[0].points, vec![(10, 20.0), (11, 20.0), (12, 30.0)]);
        assert_eq!(
            l.series[1].points,
            vec![(10, 0.0), (11, 100.0), (12, 100.0)]
        );
        assert!(l.title.ends_with(": C1"));
    }
}
