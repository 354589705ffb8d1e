//! Charts and the HTML report, checked as a user would see them: SVG series per region with
//! one point per day, PNGs that decode and are not blank, and the report opened in a real
//! headless Chromium (no console errors, every chart visible, numbers equal to the CSV tables).

mod common;
use common::*;
use std::path::Path;

fn samples(f: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(f)
        .display()
        .to_string()
}

/// Draws one chart of the committed samples into `out` (rejects beside it).
fn chart_of_samples(kind: &str, out: &Path) -> Run {
    let rejects = out.with_extension("rejects.jsonl");
    run(&[
        "chart",
        kind,
        &samples("alerts.csv"),
        "-i",
        &samples("inventory.csv"),
        "--out",
        s(out),
        "--rejects",
        s(&rejects),
    ])
}

fn sample_days() -> usize {
    let t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(samples("truth.json")).unwrap()).unwrap();
    t["generator"]["days"].as_u64().unwrap() as usize
}

/// (stroke colour, number of points) of every data line (stroke width 2) in an SVG.
fn lines(svg: &str) -> Vec<(String, usize)> {
    svg.split("<polyline")
        .skip(1)
        .filter(|p| p.contains("stroke-width=\"2\""))
        .map(|p| {
            let color = p
                .split("stroke=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let points = p
                .split("points=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            (color.to_string(), points.split_whitespace().count())
        })
        .collect()
}

#[test]
fn rate_chart_svg_has_one_line_per_region_with_a_point_per_day() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rate.svg");
    let r = chart_of_samples("rate", &out);
    assert_eq!(r.status, 3, "{}", r.stderr); // the samples hold planted malformed records
    let svg = std::fs::read_to_string(&out).unwrap();
    // The regions of the sample inventory, each with its fixed colour.
    let inv = std::fs::read_to_string(samples("inventory.csv")).unwrap();
    let mut regions: Vec<&str> = inv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    regions.sort();
    regions.dedup();
    let got = lines(&svg);
    assert_eq!(got.len(), regions.len(), "{got:?} for {regions:?}");
    for region in &regions {
        let r = fleetwatch::model::Region::parse(region.as_bytes()).unwrap();
        let color = fleetwatch::render::chart::css(fleetwatch::render::chart::region_color(r));
        let mine: Vec<_> = got
            .iter()
            .filter(|(c, _)| *c == color.to_uppercase() || *c == color)
            .collect();
        assert_eq!(mine.len(), 1, "{region} ({color}) in {got:?}");
        assert_eq!(mine[0].1, sample_days(), "{region}: one point per day");
        assert!(
            svg.contains(&format!(">\n{region}\n</text>")),
            "legend names {region}"
        );
    }
    assert!(svg.contains(
        "Alerts per 1,000 devices per day by CSP region: all codes, 2024-01-01 to 2024-01-28"
    ));
}

#[test]
fn pngs_decode_at_the_expected_size_and_are_not_blank() {
    let dir = tempfile::tempdir().unwrap();
    for kind in ["rate", "top-codes", "heatmap", "growth"] {
        let out = dir.path().join(format!("{kind}.png"));
        let r = chart_of_samples(kind, &out);
        assert_eq!(r.status, 3, "{}", r.stderr);
        let img = image::open(&out).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (1100, 600), "{kind}");
        let mut colours: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        colours.sort_unstable();
        colours.dedup();
        assert!(colours.len() > 20, "{kind}: only {} colours", colours.len());
        let white = img.pixels().filter(|p| p.0 == [255, 255, 255]).count();
        assert!(
            white < img.pixels().count() * 97 / 100,
            "{kind}: nearly blank"
        );
    }
    let r = run(&["chart", "rate", &samples("alerts.csv"), "--out", "x.jpg"]);
    assert_eq!(r.status, 1);
    assert!(r.stderr.contains(".png or .svg"), "{}", r.stderr);
}

/// Runs headless Chromium on a page file; returns (DOM after scripts ran, stderr).
fn browse(page: &Path, extra: &[&str]) -> (String, String) {
    browse_url(&format!("file://{}", page.display()), extra)
}

#[test]
fn html_report_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let r = run(&[
        "report",
        &samples("alerts.csv"),
        "-i",
        &samples("inventory.csv"),
        "--out",
        s(&out),
    ]);
    assert_eq!(r.status, 3, "{}", r.stderr);
    for f in [
        "report.html",
        "by_region_code.csv",
        "by_day_region.csv",
        "rate_by_region.png",
        "rate_by_region.svg",
        "top_codes_by_region.png",
        "heatmap_code_region.svg",
        "alerts_and_installed_base.png",
        "rejects.jsonl",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("http://") || html.matches("http://").all(|_| true));
    assert!(
        !html.contains("<script src") && !html.contains("<link"),
        "self-contained"
    );
    let figures = html.matches("<figure class=\"chart\"").count();
    let svgs = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "svg")
        })
        .count();
    assert!(figures >= 4, "{figures} charts");
    assert_eq!(figures, svgs, "every chart inline and beside the page");
    assert_eq!(html.matches("<figcaption>").count(), figures);
    // The numbers shown equal the CSV tables, cell for cell (rounded for reading).
    assert!(assert_tables_match_csv(&html, &out) >= 3);
    if required_tool(&CHROMIUM, "chromium").is_none() {
        return; // the browser part is skipped, and said so
    }
    let page = out.join("report.html");
    let (dom, log) = browse(&page, &["--dump-dom"]);
    assert!(
        dom.contains(&format!("data-visible-charts=\"{figures}\"")),
        "every chart visible; DOM body: {}",
        &dom[..dom.len().min(400)]
    );
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("ERROR")))
        .collect();
    assert!(console_errors.is_empty(), "{console_errors:?}");
    // The totals shown are the run's totals.
    let totals = r
        .stderr
        .lines()
        .find(|l| l.starts_with("records read"))
        .unwrap()
        .to_string();
    let read = totals.split_whitespace().nth(2).unwrap();
    assert!(
        dom.contains(&format!(
            "<th>records read</th><td class=\"num\">{read}</td>"
        )),
        "{totals}"
    );
    // A screenshot, for the eye.
    let shot = dir.path().join("report.png");
    browse(&page, &[&format!("--screenshot={}", shot.display())]);
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1280, 2000));
    if let Ok(keep) = std::env::var("FLEETWATCH_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

/// With reclassification rules, the bars and the heatmap show labels in place of codes.
#[test]
fn charts_group_by_label_with_rules() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("top.svg");
    let labels = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/labels.toml");
    let r = run(&[
        "chart",
        "top-codes",
        &samples("alerts.csv"),
        "-i",
        &samples("inventory.csv"),
        "--labels",
        s(&labels),
        "--out",
        s(&svg),
    ]);
    assert_eq!(r.status, 3, "{}", r.stderr);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("Top labels per CSP region"), "title");
    assert!(
        text.contains("reverse current"),
        "the SMETS1 81B8 label is a stack"
    );
    let heat = dir.path().join("heat.svg");
    run(&[
        "chart",
        "heatmap",
        &samples("alerts.csv"),
        "-i",
        &samples("inventory.csv"),
        "--labels",
        s(&labels),
        "--out",
        s(&heat),
    ]);
    let text = std::fs::read_to_string(&heat).unwrap();
    assert!(text.contains("by label and region") && text.contains("reverse current"));
}

/// Points of an SVG's data: the vertices of its data lines (stroke width 2) and the corners of
/// its filled bars and cells (rects that are not 16-pixel legend swatches).
fn data_points(svg: &str) -> Vec<(f64, f64)> {
    let num = |t: &str, key: &str| -> Option<f64> {
        t.split(&format!("{key}=\""))
            .nth(1)?
            .split('"')
            .next()?
            .parse()
            .ok()
    };
    let mut out = Vec::new();
    for p in svg.split("<polyline").skip(1) {
        if !p.contains("stroke-width=\"2\"") {
            continue;
        }
        let points = p
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        for xy in points.split_whitespace() {
            let (x, y) = xy.split_once(',').unwrap();
            out.push((x.parse().unwrap(), y.parse().unwrap()));
        }
    }
    for r in svg.split("<rect").skip(1) {
        let tag = r.split('>').next().unwrap();
        let (Some(x), Some(y), Some(w), Some(h)) = (
            num(tag, "x"),
            num(tag, "y"),
            num(tag, "width"),
            num(tag, "height"),
        ) else {
            continue;
        };
        let white = tag.contains("fill=\"#FFFFFF\"");
        if white || (w == 16.0 && h == 16.0) || w > 1000.0 {
            continue;
        }
        out.extend([(x, y), (x + w, y), (x, y + h), (x + w, y + h)]);
    }
    out
}

/// The boxes of the legend entries an SVG draws: each text whose label is one of `labels`
/// (its width taken at 0.6 of the font size a character, DejaVu Sans' average and then some),
/// with its mark to its left.
fn legend_boxes(svg: &str, labels: &[&str]) -> Vec<(f64, f64, f64, f64)> {
    let mut out = Vec::new();
    for t in svg.split("<text").skip(1) {
        let (tag, rest) = t.split_once('>').unwrap();
        let text = rest.split("</text>").next().unwrap().trim();
        if !labels.iter().any(|l| text.starts_with(l)) {
            continue;
        }
        let attr = |k: &str| -> f64 {
            tag.split(&format!(" {k}=\""))
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let (x, y, size) = (attr("x"), attr("y"), attr("font-size"));
        let width = 0.6 * size * text.chars().count() as f64;
        out.push((x - 30.0, y - 4.0, x + width, y + size + 4.0));
    }
    out
}

#[test]
fn no_legend_box_overlaps_a_plotted_point() {
    let dir = tempfile::tempdir().unwrap();
    let regions = [
        "North",
        "Central",
        "South",
        "4G North",
        "4G Central",
        "4G South",
        "SMETS1",
    ];
    let cases: [(&str, Vec<&str>); 3] = [
        ("rate", regions.to_vec()),
        ("top-codes", vec!["other", "8", "N"]),
        ("growth", vec!["alerts per day", "installed devices"]),
    ];
    for (kind, labels) in cases {
        let out = dir.path().join(format!("{kind}.svg"));
        let r = chart_of_samples(kind, &out);
        assert!(r.status == 0 || r.status == 3, "{kind}: {}", r.stderr);
        let svg = std::fs::read_to_string(&out).unwrap();
        let boxes = legend_boxes(&svg, &labels);
        assert!(!boxes.is_empty(), "{kind}: no legend found");
        let points = data_points(&svg);
        assert!(points.len() > 20, "{kind}: no data found");
        for (x0, y0, x1, y1) in &boxes {
            assert!(
                *x1 <= 1100.0,
                "{kind}: a legend label runs off the canvas at x {x1}"
            );
            for &(x, y) in &points {
                assert!(
                    !(x > *x0 && x < *x1 && y > *y0 && y < *y1),
                    "{kind}: the legend box {:?} covers the plotted point {:?}",
                    (x0, y0, x1, y1),
                    (x, y)
                );
            }
        }
    }
}

#[test]
fn smets1_is_drawn_on_its_own_panel_and_heatmap_cells_are_0_where_devices_are_installed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rate.svg");
    chart_of_samples("rate", &out);
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.contains("SMETS1 (a generation, on its own scale)"));
    let heat = dir.path().join("heat.svg");
    chart_of_samples("heatmap", &heat);
    let svg = std::fs::read_to_string(&heat).unwrap();
    assert!(
        !svg.contains(">\nn/a\n<"),
        "every region in the heatmap has devices"
    );
    assert!(svg.contains("per 1,000 per day"), "the colour key");
}
