//! Drawing the charts with plotters, to PNG or SVG.

use super::data::{ChartData, Growth, Heatmap, LineChart, StackedBars};
use crate::model::time::format_day;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

pub const SIZE: (u32, u32) = (1100, 600);
const FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// Registers the embedded font under the family every chart uses.
fn font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is embedded and known to parse; a failure here would be a build defect.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, FONT);
    });
}

type R = std::result::Result<(), String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// A chart that could not be drawn or written: which file, and why.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ChartError {
    pub path: String,
    pub message: String,
}

impl ChartError {
    fn new(path: &Path, message: impl Into<String>) -> ChartError {
        ChartError {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}

/// Writes a chart to `path`: PNG or SVG by its extension.
pub fn save(data: &ChartData, path: &Path) -> Result<(), ChartError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => {
            let svg = render_svg_string(data).map_err(|e| ChartError::new(path, e.message))?;
            std::fs::write(path, svg)
                .map_err(|e| ChartError::new(path, format!("cannot write: {e}")))
        }
        Some("png") => render_png(data, path),
        _ => Err(ChartError::new(
            path,
            "the chart file must end in .png or .svg",
        )),
    }
}

pub fn render_png(data: &ChartData, path: &Path) -> Result<(), ChartError> {
    font();
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    draw(data, &root).map_err(|e| ChartError::new(path, format!("cannot draw: {e}")))?;
    root.present()
        .map_err(|e| ChartError::new(path, format!("cannot write: {e:?}")))
}

/// The chart as an SVG document, for inlining (an error names no file: "inline SVG").
pub fn render_svg_string(data: &ChartData) -> Result<String, ChartError> {
    font();
    let inline = Path::new("inline SVG");
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, SIZE).into_drawing_area();
        draw(data, &root).map_err(|e| ChartError::new(inline, format!("cannot draw: {e}")))?;
        root.present()
            .map_err(|e| ChartError::new(inline, err(e)))?;
    }
    Ok(s)
}

fn draw<DB: DrawingBackend>(data: &ChartData, root: &DrawingArea<DB, Shift>) -> R {
    root.fill(&WHITE).map_err(err)?;
    match data {
        ChartData::Line(c) => line(c, root),
        ChartData::Bars(c) => bars(c, root),
        ChartData::Heat(c) => heat(c, root),
        ChartData::Growth(c) => growth(c, root),
    }
}

fn title_style() -> TextStyle<'static> {
    ("sans-serif", 19).into_font().into()
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 { 1.0 } else { v * 1.08 }
}

fn line<DB: DrawingBackend>(c: &LineChart, root: &DrawingArea<DB, Shift>) -> R {
    let ymax = nice_max(
        c.series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let (d0, d1) = c.days;
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, title_style())
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(d0..d1.max(d0 + 1), 0.0..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&|d| format_day(*d))
        .x_desc("day (UTC)")
        .y_desc(&c.y_label)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    for s in &c.series {
        let color = s.color;
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(&s.name)
            .legend(legend_mark(color));
    }
    if !c.markers.is_empty() {
        let red = RGBColor(200, 30, 30);
        chart
            .draw_series(
                c.markers
                    .iter()
                    .map(|&(d, v)| Circle::new((d, v), 6, red.stroke_width(2))),
            )
            .map_err(err)?
            .label("flagged day")
            .legend(move |(x, y)| Circle::new((x + 9, y), 5, red.stroke_width(2)));
    }
    legend_box(&mut chart)
}

/// The legend entry of a line: a short thick stroke of its colour.
fn legend_mark(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
}

/// The legend of the line charts, top left on a translucent box.
fn legend_box<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> R {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(err)
}

fn bars<DB: DrawingBackend>(c: &StackedBars, root: &DrawingArea<DB, Shift>) -> R {
    let n = c.bars.len().max(1);
    let totals: Vec<f64> = (0..n)
        .map(|i| {
            c.stacks
                .iter()
                .map(|s| s.2.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let ymax = nice_max(totals.iter().copied().fold(0.0, f64::max));
    let (plot, legend) = root.split_horizontally(SIZE.0 - 170);
    let mut chart = ChartBuilder::on(&plot)
        .caption(&c.title, title_style())
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, 0.0..ymax)
        .map_err(err)?;
    let names = c.bars.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| label_at(&names, *x, false))
        .x_desc(&c.x_label)
        .y_desc(&c.y_label)
        .draw()
        .map_err(err)?;
    let mut base = vec![0.0; n];
    for (_, color, values) in &c.stacks {
        chart
            .draw_series((0..n).map(|i| {
                let v = values.get(i).copied().unwrap_or(0.0);
                let r = Rectangle::new(
                    [(i as f64 + 0.15, base[i]), (i as f64 + 0.85, base[i] + v)],
                    color.filled(),
                );
                base[i] += v;
                r
            }))
            .map_err(err)?;
    }
    // Legend: codes top to bottom as stacked bottom to top.
    legend.fill(&WHITE).map_err(err)?;
    for (k, (name, color, _)) in c.stacks.iter().rev().enumerate() {
        let y = 80 + k as i32 * 26;
        legend
            .draw(&Rectangle::new([(10, y), (28, y + 16)], color.filled()))
            .map_err(err)?;
        let label = if name == "other" {
            name.clone()
        } else {
            format!("{name} {}", short_name(name))
        };
        legend
            .draw(&Text::new(label, (34, y + 2), ("sans-serif", 13)))
            .map_err(err)?;
    }
    Ok(())
}

/// A code's catalogue name, cut short for a legend.
fn short_name(code: &str) -> String {
    let name = code
        .parse::<crate::model::AlertCode>()
        .map(crate::catalogue::describe)
        .unwrap_or("");
    let mut s: String = name.chars().take(14).collect();
    if name.chars().count() > 14 {
        s.push('…');
    }
    s
}

fn heat<DB: DrawingBackend>(c: &Heatmap, root: &DrawingArea<DB, Shift>) -> R {
    let (rows, cols) = (c.rows.len().max(1), c.cols.len().max(1));
    let max = c
        .values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, title_style())
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..cols as f64, 0.0..rows as f64)
        .map_err(err)?;
    let (cn, rn) = (c.cols.clone(), c.rows.clone());
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(cols * 2 + 1)
        .y_labels(rows * 2 + 1)
        .x_label_formatter(&|x| label_at(&cn, *x, false))
        .y_label_formatter(&|y| label_at(&rn, *y, true))
        .x_desc("CSP region")
        .y_desc("alert code")
        .draw()
        .map_err(err)?;
    for (i, row) in c.values.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            let y = (rows - 1 - i) as f64;
            let (fill, text) = match v {
                Some(v) => {
                    // Square-root scale: a few large cells do not wash out the rest.
                    let t = (v / max).sqrt();
                    let shade = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t) as u8;
                    (
                        RGBColor(shade(255, 165), shade(247, 15), shade(236, 21)),
                        format!("{v:.1}"),
                    )
                }
                None => (RGBColor(240, 240, 240), "n/a".into()),
            };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(j as f64 + 0.02, y + 0.04), (j as f64 + 0.98, y + 0.96)],
                    fill.filled(),
                )))
                .map_err(err)?;
            let ink = if v.is_some_and(|v| (v / max).sqrt() > 0.55) {
                WHITE
            } else {
                BLACK
            };
            chart
                .draw_series(std::iter::once(Text::new(
                    text,
                    (j as f64 + 0.42, y + 0.6),
                    ("sans-serif", 13).into_font().color(&ink),
                )))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// The label of the cell whose centre is at `x` (rows count from the top when `flip`).
fn label_at(names: &[String], x: f64, flip: bool) -> String {
    let i = (x - 0.5).round();
    if (x - 0.5 - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    let i = i as usize;
    let i = if flip {
        names.len().wrapping_sub(1 + i)
    } else {
        i
    };
    names.get(i).cloned().unwrap_or_default()
}

fn growth<DB: DrawingBackend>(c: &Growth, root: &DrawingArea<DB, Shift>) -> R {
    let (d0, d1) = (
        c.days.first().copied().unwrap_or(0),
        c.days.last().copied().unwrap_or(1),
    );
    let amax = nice_max(c.alerts.iter().copied().fold(0.0, f64::max));
    let imax = nice_max(c.installed.iter().copied().fold(0.0, f64::max));
    let mut chart = ChartBuilder::on(root)
        .caption(&c.title, title_style())
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .right_y_label_area_size(90)
        .build_cartesian_2d(d0..d1.max(d0 + 1), 0.0..amax)
        .map_err(err)?
        .set_secondary_coord(d0..d1.max(d0 + 1), 0.0..imax);
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&|d| format_day(*d))
        .x_desc("day (UTC)")
        .y_desc("alerts per day")
        .y_label_formatter(&|v| crate::render::thousands(*v as u64))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    chart
        .configure_secondary_axes()
        .y_desc("installed devices")
        .y_label_formatter(&|v| crate::render::thousands(*v as u64))
        .draw()
        .map_err(err)?;
    let alerts_color = RGBColor(214, 39, 40);
    let installed_color = RGBColor(31, 119, 180);
    chart
        .draw_series(LineSeries::new(
            c.days.iter().copied().zip(c.alerts.iter().copied()),
            alerts_color.stroke_width(2),
        ))
        .map_err(err)?
        .label("alerts per day (left axis)")
        .legend(legend_mark(alerts_color));
    chart
        .draw_secondary_series(LineSeries::new(
            c.days.iter().copied().zip(c.installed.iter().copied()),
            installed_color.stroke_width(2),
        ))
        .map_err(err)?
        .label("installed devices (right axis)")
        .legend(legend_mark(installed_color));
    legend_box(&mut chart)
}
