//! Charts (PNG and SVG, with plotters): the pictures analysts send to colleagues.
//!
//! Four kinds, built from alert reports: the daily rate per CSP region, top codes per region
//! (stacked bars), a code x region heatmap, and alerts against the installed base on twin
//! axes. The font is embedded in the binary (DejaVu Sans, `assets/fonts/`), so rendering never
//! depends on the machine's fontconfig. Each region has one colour in every chart.

mod data;
mod draw;
pub mod migration;
pub mod ota;

pub use data::{
    ChartData, Forest, ForestRow, Growth, Heatmap, LineChart, Series, StackedBars, build, span,
};
pub use draw::{ChartError, render_png, render_svg_string, save};

/// How many codes the stacked bars show, and the heatmap (for captions).
pub fn data_top_codes() -> usize {
    data::TOP_CODES
}
pub fn data_heatmap_codes() -> usize {
    data::HEATMAP_CODES
}

use crate::analyze::alerts::Dim;
use crate::model::Region;
use plotters::style::RGBColor;

crate::keyword_enum!(
    /// Which chart.
    pub enum ChartKind {
        Rate = "rate": "alerts per 1,000 devices per day, one line per CSP region",
        TopCodes = "top-codes": "top codes per region as stacked bars (alerts per 1,000 devices per day)",
        Heatmap = "heatmap": "rate by code and region as a heatmap",
        Growth = "growth": "alert count and installed base on twin axes, per day",
    }
);

impl ChartKind {
    pub const ALL: [ChartKind; 4] = [
        ChartKind::Rate,
        ChartKind::TopCodes,
        ChartKind::Heatmap,
        ChartKind::Growth,
    ];
    /// The grouping of the alert report the chart is drawn from.
    pub fn grouping(self) -> [Dim; 2] {
        match self {
            ChartKind::Rate | ChartKind::Growth => [Dim::Day, Dim::Region],
            ChartKind::TopCodes | ChartKind::Heatmap => [Dim::Region, Dim::Code],
        }
    }

    /// The grouping, with reclassification labels in place of codes when there are rules.
    pub fn grouping_with(self, labels: bool) -> [Dim; 2] {
        let g = self.grouping();
        if labels {
            g.map(|d| if d == Dim::Code { Dim::Label } else { d })
        } else {
            g
        }
    }

    pub fn file_stem(self) -> &'static str {
        match self {
            ChartKind::Rate => "rate_by_region",
            ChartKind::TopCodes => "top_codes_by_region",
            ChartKind::Heatmap => "heatmap_code_region",
            ChartKind::Growth => "alerts_and_installed_base",
        }
    }
}

/// One colour per region, the same in every chart (4G variants a lighter shade).
pub fn region_color(r: Region) -> RGBColor {
    match r {
        Region::North => RGBColor(31, 119, 180),
        Region::Central => RGBColor(255, 127, 14),
        Region::South => RGBColor(44, 160, 44),
        Region::North4G => RGBColor(120, 175, 220),
        Region::Central4G => RGBColor(255, 187, 120),
        Region::South4G => RGBColor(140, 210, 125),
        Region::Smets1 => RGBColor(148, 103, 189),
        Region::Unknown => RGBColor(127, 127, 127),
    }
}

/// Colours for codes in stacked bars (and "other" in grey).
pub const CODE_COLORS: [RGBColor; 8] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
];
pub const OTHER_COLOR: RGBColor = RGBColor(186, 176, 172);

pub fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}
