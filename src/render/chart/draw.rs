//! Drawing the charts with plotters, to PNG or SVG.

use super::data::{ChartData, Forest, Growth, Heatmap, LineChart, SIZE, StackedBars};
use crate::model::time::format_day;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

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
    let root = BitMapBackend::new(path, data.size()).into_drawing_area();
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
        let root = SVGBackend::with_string(&mut s, data.size()).into_drawing_area();
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
        ChartData::Forest(c) => forest(c, root),
    }
}

fn title_style() -> TextStyle<'static> {
    ("sans-serif", 19).into_font().into()
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 { 1.0 } else { v * 1.08 }
}

/// Width of the legend column on the right of every chart: legends sit beside the plot, never
/// over it, so they hide no data.
const LEGEND_W: u32 = 240;

/// A tick label: whole numbers with thousands separators once the axis reaches 20, one
/// decimal below (a rate of 0.4 per 1,000 must not read as 0).
fn tick(v: f64, max: f64) -> String {
    if max >= 20.0 {
        crate::render::thousands(v.round().max(0.0) as u64)
    } else {
        format!("{v:.1}")
    }
}

/// How a legend entry is marked.
#[derive(Clone, Copy)]
enum Mark {
    Line(RGBColor),
    Swatch(RGBColor),
    Ring(RGBColor),
}

/// Cuts `text` (with an ellipsis) to fit `width` pixels in `font`.
fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    font: &TextStyle,
    width: u32,
) -> String {
    let fits = |t: &str| {
        area.estimate_text_size(t, font)
            .is_ok_and(|(w, _)| w <= width)
    };
    if fits(text) {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let t: String = chars.iter().collect::<String>().trim_end().to_string() + "…";
        if fits(&t) {
            return t;
        }
    }
    "…".into()
}

/// The legend column: a heading, then one entry per line from `top`, each label cut to fit.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: Option<&str>,
    entries: &[(String, Mark)],
    top: i32,
) -> R {
    let font: TextStyle = ("sans-serif", 13).into_font().into();
    // Room for the mark on the left and a margin on the right, so no label reaches the edge.
    let width = area.dim_in_pixel().0.saturating_sub(60);
    let mut y = top;
    if let Some(h) = heading {
        let bold: TextStyle = ("sans-serif", 13).into_font().style(FontStyle::Bold).into();
        area.draw(&Text::new(
            fit(area, h, &bold, width + 30),
            (10, y),
            bold.clone(),
        ))
        .map_err(err)?;
        y += 22;
    }
    for (name, mark) in entries {
        match *mark {
            Mark::Line(c) => area.draw(&PathElement::new(
                vec![(10, y + 8), (30, y + 8)],
                c.stroke_width(3),
            )),
            Mark::Swatch(c) => area.draw(&Rectangle::new([(12, y), (28, y + 16)], c.filled())),
            Mark::Ring(c) => area.draw(&Circle::new((20, y + 8), 5, c.stroke_width(2))),
        }
        .map_err(err)?;
        area.draw(&Text::new(
            fit(area, name, &font, width),
            (38, y + 2),
            font.clone(),
        ))
        .map_err(err)?;
        y += 22;
    }
    Ok(())
}

/// One panel of a line chart: its own y axis, the series given, and the markers on them.
struct Panel<'a> {
    caption: Option<&'a str>,
    series: Vec<&'a super::data::Series>,
    markers: &'a [(crate::model::Day, f64)],
    x_desc: Option<&'a str>,
}

fn line_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, c: &LineChart, p: &Panel) -> R {
    let ymax = nice_max(
        p.series
            .iter()
            .flat_map(|s| s.points.iter().map(|pt| pt.1))
            .chain(p.markers.iter().map(|m| m.1))
            .fold(0.0, f64::max),
    );
    let (d0, d1) = c.days;
    let mut b = ChartBuilder::on(area);
    if let Some(caption) = p.caption {
        b.caption(caption, title_style());
    }
    let mut chart = b
        .margin(12)
        .x_label_area_size(if p.x_desc.is_some() { 48 } else { 28 })
        .y_label_area_size(70)
        .build_cartesian_2d(d0..d1.max(d0 + 1), 0.0..ymax)
        .map_err(err)?;
    let day_label = |d: &crate::model::Day| format_day(*d);
    let y_label = |v: &f64| tick(*v, ymax);
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(8)
        .x_label_formatter(&day_label)
        .y_label_formatter(&y_label)
        .y_desc(&c.y_label)
        .light_line_style(RGBColor(235, 235, 235));
    if let Some(x) = p.x_desc {
        mesh.x_desc(x);
    }
    mesh.draw().map_err(err)?;
    for s in &p.series {
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                s.color.stroke_width(2),
            ))
            .map_err(err)?;
    }
    let red = RGBColor(200, 30, 30);
    chart
        .draw_series(
            p.markers
                .iter()
                .map(|&(d, v)| Circle::new((d, v), 6, red.stroke_width(2))),
        )
        .map_err(err)?;
    Ok(())
}

fn line<DB: DrawingBackend>(c: &LineChart, root: &DrawingArea<DB, Shift>) -> R {
    let (plot, side) = root.split_horizontally(SIZE.0 - LEGEND_W);
    let apart = |s: &&super::data::Series| c.own_panel.contains(&s.name);
    let main: Vec<&super::data::Series> = c.series.iter().filter(|s| !apart(s)).collect();
    let own: Vec<&super::data::Series> = c.series.iter().filter(apart).collect();
    let on = |points: &[(crate::model::Day, f64)], series: &[&super::data::Series]| {
        points
            .iter()
            .filter(|m| {
                series.iter().any(|s| {
                    s.points
                        .iter()
                        .any(|p| p.0 == m.0 && (p.1 - m.1).abs() < 1e-9)
                })
            })
            .copied()
            .collect::<Vec<_>>()
    };
    let mut entries: Vec<(String, Mark)> = main
        .iter()
        .map(|s| (s.name.clone(), Mark::Line(s.color)))
        .collect();
    if own.is_empty() || main.is_empty() {
        line_panel(
            &plot,
            c,
            &Panel {
                caption: Some(&c.title),
                series: c.series.iter().collect(),
                markers: &c.markers,
                x_desc: Some("day (UTC)"),
            },
        )?;
    } else {
        let (top, bottom) = plot.split_vertically(SIZE.1 * 60 / 100);
        let (top_markers, own_markers) = (on(&c.markers, &main), on(&c.markers, &own));
        line_panel(
            &top,
            c,
            &Panel {
                caption: Some(&c.title),
                series: main.clone(),
                markers: &top_markers,
                x_desc: None,
            },
        )?;
        let caption = format!(
            "{} (a generation, on its own scale)",
            c.own_panel.join(", ")
        );
        line_panel(
            &bottom,
            c,
            &Panel {
                caption: Some(&caption),
                series: own.clone(),
                markers: &own_markers,
                x_desc: Some("day (UTC)"),
            },
        )?;
    }
    entries.extend(own.iter().map(|s| (s.name.clone(), Mark::Line(s.color))));
    if !c.markers.is_empty() {
        entries.push(("flagged day".into(), Mark::Ring(RGBColor(200, 30, 30))));
    }
    side.fill(&WHITE).map_err(err)?;
    legend(&side, None, &entries, 60)
}

/// One panel of stacked bars: the bars at `columns` of the chart's bars, on their own scale.
fn bars_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    c: &StackedBars,
    columns: &[usize],
    caption: Option<&str>,
    y_desc: &str,
) -> R {
    let n = columns.len().max(1);
    let value = |stack: &Vec<f64>, i: usize| stack.get(columns[i]).copied().unwrap_or(0.0);
    let ymax = nice_max(
        (0..columns.len())
            .map(|i| c.stacks.iter().map(|s| value(&s.2, i)).sum::<f64>())
            .fold(0.0, f64::max),
    );
    let mut b = ChartBuilder::on(area);
    if let Some(caption) = caption {
        b.caption(caption, title_style());
    }
    let mut chart = b
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, 0.0..ymax)
        .map_err(err)?;
    let names: Vec<String> = columns.iter().map(|&i| c.bars[i].clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| label_at(&names, *x, false))
        .y_label_formatter(&|v| tick(*v, ymax))
        .x_desc(&c.x_label)
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    let mut base = vec![0.0; n];
    for (_, color, values) in &c.stacks {
        chart
            .draw_series((0..columns.len()).map(|i| {
                let v = value(values, i);
                let r = Rectangle::new(
                    [(i as f64 + 0.15, base[i]), (i as f64 + 0.85, base[i] + v)],
                    color.filled(),
                );
                base[i] += v;
                r
            }))
            .map_err(err)?;
    }
    Ok(())
}

fn bars<DB: DrawingBackend>(c: &StackedBars, root: &DrawingArea<DB, Shift>) -> R {
    let (plot, side) = root.split_horizontally(SIZE.0 - LEGEND_W);
    let (main, own): (Vec<usize>, Vec<usize>) =
        (0..c.bars.len()).partition(|&i| !c.own_panel.contains(&c.bars[i]));
    if own.is_empty() || main.is_empty() {
        let all: Vec<usize> = (0..c.bars.len()).collect();
        bars_panel(&plot, c, &all, Some(&c.title), &c.y_label)?;
    } else {
        // The title over the whole width, then the main bars and the apart ones side by side.
        let (head, body) = plot.split_vertically(36);
        head.titled(&c.title, title_style()).map_err(err)?;
        let width = plot.dim_in_pixel().0;
        let own_w = (110 + 90 * own.len() as u32).min(width / 3);
        let (left, right) = body.split_horizontally(width - own_w);
        bars_panel(&left, c, &main, None, &c.y_label)?;
        let caption = format!("{} (own scale)", c.own_panel.join(", "));
        bars_panel(&right, c, &own, None, &caption)?;
    }
    // Legend: codes top to bottom as stacked bottom to top; full names are in the tables.
    side.fill(&WHITE).map_err(err)?;
    let entries: Vec<(String, Mark)> = c
        .stacks
        .iter()
        .rev()
        .map(|(name, color, _)| {
            let label = if name == "other" || short_name(name).is_empty() {
                name.clone()
            } else {
                format!("{name} {}", short_name(name))
            };
            (label, Mark::Swatch(*color))
        })
        .collect();
    legend(&side, None, &entries, 80)
}

/// A code's catalogue name (empty for a label or an unknown code).
fn short_name(code: &str) -> String {
    code.parse::<crate::model::AlertCode>()
        .map(crate::catalogue::describe)
        .unwrap_or("")
        .to_string()
}

/// The heat colour of `t` in 0..=1 (already on the square-root scale).
fn heat_color(t: f64) -> RGBColor {
    let shade = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t.clamp(0.0, 1.0)) as u8;
    RGBColor(shade(255, 165), shade(247, 15), shade(236, 21))
}

fn heat<DB: DrawingBackend>(c: &Heatmap, root: &DrawingArea<DB, Shift>) -> R {
    let (plot, side) = root.split_horizontally(SIZE.0 - 150);
    let (rows, cols) = (c.rows.len().max(1), c.cols.len().max(1));
    let max = c
        .values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let mut chart = ChartBuilder::on(&plot)
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
                // Square-root scale: a few large cells do not wash out the rest.
                Some(v) => (heat_color((v / max).sqrt()), format!("{v:.1}")),
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
    color_key(&side, max)
}

/// The heatmap's colour key: a bar from 0 to the largest value, on the cells' square-root
/// scale, with ticks at round values.
fn color_key<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, max: f64) -> R {
    area.fill(&WHITE).map_err(err)?;
    let font: TextStyle = ("sans-serif", 12).into_font().into();
    let (top, bottom, x0, x1) = (80i32, 500i32, 16i32, 40i32);
    area.draw(&Text::new("per 1,000 per day", (8, top - 28), font.clone()))
        .map_err(err)?;
    let h = (bottom - top) as f64;
    for k in 0..(bottom - top) {
        // Top is the maximum; the scale is square-root, as the cells'.
        let t = 1.0 - k as f64 / h;
        area.draw(&Rectangle::new(
            [(x0, top + k), (x1, top + k + 1)],
            heat_color(t).filled(),
        ))
        .map_err(err)?;
    }
    area.draw(&Rectangle::new(
        [(x0, top), (x1, bottom)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    for frac in [0.0, 0.25, 0.5, 0.75, 1.0] {
        // The value at `frac` of the way up, back from the square-root scale.
        let v = max * frac * frac;
        let y = bottom - (frac * h) as i32;
        area.draw(&PathElement::new(vec![(x1, y), (x1 + 5, y)], BLACK))
            .map_err(err)?;
        let label = if max >= 20.0 {
            crate::render::thousands(v.round() as u64)
        } else {
            format!("{v:.1}")
        };
        area.draw(&Text::new(label, (x1 + 9, y - 6), font.clone()))
            .map_err(err)?;
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
    let (plot, side) = root.split_horizontally(SIZE.0 - LEGEND_W);
    let (d0, d1) = (
        c.days.first().copied().unwrap_or(0),
        c.days.last().copied().unwrap_or(1),
    );
    let amax = nice_max(c.alerts.iter().copied().fold(0.0, f64::max));
    let imax = nice_max(c.installed.iter().copied().fold(0.0, f64::max));
    let mut chart = ChartBuilder::on(&plot)
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
        .y_label_formatter(&|v| tick(*v, amax))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    chart
        .configure_secondary_axes()
        .y_desc("installed devices")
        .y_label_formatter(&|v| tick(*v, imax))
        .draw()
        .map_err(err)?;
    let alerts_color = RGBColor(214, 39, 40);
    let installed_color = RGBColor(31, 119, 180);
    chart
        .draw_series(LineSeries::new(
            c.days.iter().copied().zip(c.alerts.iter().copied()),
            alerts_color.stroke_width(2),
        ))
        .map_err(err)?;
    chart
        .draw_secondary_series(LineSeries::new(
            c.days.iter().copied().zip(c.installed.iter().copied()),
            installed_color.stroke_width(2),
        ))
        .map_err(err)?;
    side.fill(&WHITE).map_err(err)?;
    legend(
        &side,
        None,
        &[
            (
                "alerts per day (left axis)".into(),
                Mark::Line(alerts_color),
            ),
            (
                "installed devices (right axis)".into(),
                Mark::Line(installed_color),
            ),
        ],
        60,
    )
}

/// Width of a forest plot's column of row names on the left, and of its text on the right.
const FOREST_LABEL_W: u32 = 250;
const FOREST_TEXT_W: u32 = 300;
/// A forest plot's axis stops here (in its unit): a wider interval runs to the edge with an
/// arrowhead, its numbers in the text beside it.
pub const FOREST_CAP: f64 = 300.0;

/// The x range of a forest plot: every estimate and interval end, and 0, with a margin; the
/// top stops at `FOREST_CAP`.
pub fn forest_range(f: &Forest) -> (f64, f64) {
    let values = f
        .rows
        .iter()
        .flat_map(|r| {
            r.estimate
                .into_iter()
                .chain(r.interval.into_iter().flat_map(|(lo, hi)| [lo, hi]))
        })
        .filter(|v| v.is_finite());
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let hi = hi.min(FOREST_CAP);
    let pad = ((hi - lo) * 0.06).max(1.0);
    (lo - pad, hi + pad)
}

/// A percentage tick: `0%`, `+50%`, `-25%`.
fn pct_tick(v: f64) -> String {
    if v.abs() < 0.05 {
        "0%".into()
    } else {
        format!("{v:+.0}%")
    }
}

fn forest<DB: DrawingBackend>(c: &Forest, root: &DrawingArea<DB, Shift>) -> R {
    let (width, _) = root.dim_in_pixel();
    let (plot, side) = root.split_horizontally(width - FOREST_TEXT_W);
    let n = c.rows.len() + usize::from(c.more > 0);
    let label_font: TextStyle = ("sans-serif", 13).into_font().into();
    let mut names: Vec<String> = c
        .rows
        .iter()
        .map(|r| fit(root, &r.label, &label_font, FOREST_LABEL_W - 16))
        .collect();
    if c.more > 0 {
        names.push(format!("... {} more (in the table)", c.more));
    }
    let (x0, x1) = forest_range(c);
    let top = n as f64;
    let mut chart = ChartBuilder::on(&plot)
        .caption(&c.title, title_style())
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(FOREST_LABEL_W)
        .build_cartesian_2d(x0..x1, 0.0..top.max(1.0))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 2 + 1)
        .y_label_formatter(&|y| label_at(&names, *y, true))
        .y_label_style(label_font.clone())
        .x_labels(10)
        .x_label_formatter(&|x| pct_tick(*x))
        .x_desc(&c.x_label)
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(err)?;
    // No change: the line every interval is read against.
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (0.0, top)],
            RGBColor(60, 60, 60).stroke_width(1),
        )))
        .map_err(err)?;
    let dx = (x1 - x0) * 0.012;
    let clip = |v: f64| v.clamp(x0, x1);
    for (i, r) in c.rows.iter().enumerate() {
        let y = top - i as f64 - 0.5;
        let color = r.color;
        match r.interval {
            Some((lo, hi)) => {
                // The interval: one line (stroke 3), ends capped, or an arrowhead where it
                // runs off the axis.
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(clip(lo), y), (clip(hi), y)],
                        color.stroke_width(3),
                    )))
                    .map_err(err)?;
                for (end, dir) in [(lo, -1.0), (hi, 1.0)] {
                    if end < x0 || end > x1 {
                        let tip = clip(end);
                        chart
                            .draw_series(std::iter::once(Polygon::new(
                                vec![
                                    (tip, y),
                                    (tip - dir * dx, y + 0.14),
                                    (tip - dir * dx, y - 0.14),
                                ],
                                color.filled(),
                            )))
                            .map_err(err)?;
                    } else {
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(end, y - 0.13), (end, y + 0.13)],
                                color.stroke_width(2),
                            )))
                            .map_err(err)?;
                    }
                }
                if let Some(e) = r.estimate.filter(|e| (x0..=x1).contains(e)) {
                    chart
                        .draw_series(std::iter::once(Circle::new((e, y), 6, color.filled())))
                        .map_err(err)?;
                }
            }
            // Never a bare point: without an interval the row says so.
            None => {
                chart
                    .draw_series(std::iter::once(Text::new(
                        "no interval",
                        (dx, y + 0.12),
                        ("sans-serif", 13)
                            .into_font()
                            .style(FontStyle::Italic)
                            .color(&color),
                    )))
                    .map_err(err)?;
            }
        }
    }
    // Beside each row: the estimate with its interval, then the verdict in the row's colour.
    side.fill(&WHITE).map_err(err)?;
    let bold: TextStyle = ("sans-serif", 13).into_font().style(FontStyle::Bold).into();
    let room = FOREST_TEXT_W - 24;
    let head_y = chart.backend_coord(&(x0, top)).1 - 24;
    side.draw(&Text::new(
        fit(&side, "effect [95% interval], verdict", &bold, room),
        (10, head_y.max(4)),
        bold.clone(),
    ))
    .map_err(err)?;
    for (i, r) in c.rows.iter().enumerate() {
        let py = chart.backend_coord(&(x0, top - i as f64 - 0.5)).1;
        side.draw(&Text::new(
            fit(&side, &r.text, &label_font, room),
            (10, py - 16),
            label_font.clone(),
        ))
        .map_err(err)?;
        let note: TextStyle = ("sans-serif", 13).into_font().color(&r.color);
        side.draw(&Text::new(
            fit(&side, &r.note, &note, room),
            (10, py + 2),
            note,
        ))
        .map_err(err)?;
    }
    Ok(())
}
