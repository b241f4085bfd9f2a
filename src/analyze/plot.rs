//! The signal propagation plot as a picture (plotters): the average channel squared mean and
//! variance at each block's output and the residual branch's variance, against block depth;
//! a log scale when the values span more than a decade; dashed lines between stages.
//!
//! Text is measured and drawn with a font embedded in the binary (a subset of DejaVu Sans,
//! `assets/fonts`), so no system font is needed. Returns bytes; writing them is the CLI's job.

use super::BlockStats;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::sync::Once;

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (960, 560);

/// Colors of the three curves (colorblind-safe: Okabe and Ito).
const MEAN_SQ: RGBColor = RGBColor(0, 114, 178);
const VAR: RGBColor = RGBColor(213, 94, 0);
const RESIDUAL_VAR: RGBColor = RGBColor(0, 158, 115);

/// A plot that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot: {0}")]
pub struct PlotError(String);

fn register_font() -> Result<(), PlotError> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| PlotError("the embedded font does not load".into()));
    });
    result
}

/// The plot as an SVG document.
pub fn to_svg(blocks: &[BlockStats], title: &str) -> Result<String, PlotError> {
    register_font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, blocks, title)?;
        root.present().map_err(|e| PlotError(e.to_string()))?;
    }
    Ok(svg)
}

/// The plot as a PNG image.
pub fn to_png(blocks: &[BlockStats], title: &str) -> Result<Vec<u8>, PlotError> {
    register_font()?;
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
        draw(&root, blocks, title)?;
        root.present().map_err(|e| PlotError(e.to_string()))?;
    }
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let fail = |e: png::EncodingError| PlotError(format!("cannot encode PNG: {e}"));
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(&rgb).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(png_bytes)
}

/// The curves: (label, color, points (depth, value)).
type Curve = (&'static str, RGBColor, Vec<(f64, f64)>);

fn curves(blocks: &[BlockStats]) -> Vec<Curve> {
    let points = |f: &dyn Fn(&BlockStats) -> Option<f64>| {
        blocks
            .iter()
            .filter_map(|b| f(b).map(|v| (b.depth as f64, v)))
            .collect::<Vec<_>>()
    };
    let mut out = vec![
        (
            "average channel squared mean",
            MEAN_SQ,
            points(&|b| Some(b.mean_sq)),
        ),
        ("average channel variance", VAR, points(&|b| Some(b.var))),
    ];
    let residual = points(&|b| b.residual_var);
    if !residual.is_empty() {
        out.push(("residual branch variance", RESIDUAL_VAR, residual));
    }
    out
}

/// The value range to show, and whether it is logarithmic: log when every value is positive
/// and the largest is more than ten times the smallest.
fn y_range(curves: &[Curve]) -> (f64, f64, bool) {
    let values = || curves.iter().flat_map(|c| c.2.iter().map(|p| p.1));
    let finite = || values().filter(|v| v.is_finite());
    let lo = finite().fold(f64::INFINITY, f64::min);
    let hi = finite().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0, false);
    }
    // Headroom above the curves for the stage names.
    if lo > 0.0 && hi / lo > 10.0 {
        return (lo / 1.5, hi * 2.5, true);
    }
    let pad = ((hi - lo) * 0.12).max(hi.abs() * 0.05).max(1e-12);
    // A linear axis starts at zero for non-negative values, so heights compare.
    (if lo >= 0.0 { 0.0 } else { lo - pad }, hi + pad, false)
}

/// Width of the legend panel right of the chart.
const LEGEND_WIDTH: u32 = 250;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    blocks: &[BlockStats],
    title: &str,
) -> Result<(), PlotError> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| PlotError(e.to_string());
    root.fill(&WHITE).map_err(err)?;
    let body = root
        .margin(10, 0, 0, 0)
        .titled(title, (FAMILY, 20).into_font().color(&BLACK))
        .map_err(err)?;
    let (chart_area, legend_area) = body.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let curves = curves(blocks);
    legend(&legend_area, &curves).map_err(err)?;
    let n = blocks.len().max(1) as f64;
    let x = 0.5..n + 0.5;
    let (lo, hi, log) = y_range(&curves);
    let mut builder = ChartBuilder::on(&chart_area);
    builder
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72);
    let x_labels = blocks.len().clamp(2, 24);
    if log {
        let mut chart = builder
            .build_cartesian_2d(x, (lo..hi).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("block depth")
            .y_desc("log scale")
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .x_labels(x_labels)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| tick(*v))
            .draw()
            .map_err(err)?;
        series(&mut chart, blocks, &curves, lo, hi).map_err(err)
    } else {
        let mut chart = builder.build_cartesian_2d(x, lo..hi).map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("block depth")
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .x_labels(x_labels)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| tick(*v))
            .draw()
            .map_err(err)?;
        series(&mut chart, blocks, &curves, lo, hi).map_err(err)
    }
}

/// An axis label: plain decimals without trailing zeros (`0.1`, `10`, `2.5`).
fn tick(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e5).contains(&v.abs()) {
        return format!("{v:.0e}");
    }
    let s = format!("{v:.4}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The legend beside the chart: each curve, and the stage boundary.
fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    curves: &[Curve],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let font = (FAMILY, 14).into_font().color(&BLACK);
    let mut y = 40;
    let mut entry =
        |area: &DrawingArea<DB, Shift>, style: ShapeStyle, dashed: bool, label: &str| {
            let segments: Vec<(i32, i32)> = if dashed {
                vec![(8, 14), (18, 24), (28, 34)]
            } else {
                vec![(8, 34)]
            };
            for (x0, x1) in segments {
                area.draw(&PathElement::new([(x0, y), (x1, y)], style))?;
            }
            area.draw(&Text::new(
                label.to_string(),
                (42, y),
                font.pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Left,
                    plotters::style::text_anchor::VPos::Center,
                )),
            ))?;
            y += 26;
            Ok(())
        };
    for (label, color, _) in curves {
        entry(area, ShapeStyle::from(color).stroke_width(3), false, label)?;
    }
    entry(
        area,
        ShapeStyle::from(&BLACK.mix(0.45)).stroke_width(1),
        true,
        "stage boundary",
    )
}

/// Stage boundaries, curves and legend, on either kind of y axis.
fn series<'a, DB, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    blocks: &[BlockStats],
    curves: &[Curve],
    lo: f64,
    hi: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    let boundary = ShapeStyle::from(&BLACK.mix(0.45)).stroke_width(1);
    let mut stage_start = 0.5;
    for (i, b) in blocks.iter().enumerate() {
        let last_of_stage = blocks.get(i + 1).is_none_or(|next| next.stage != b.stage);
        if !last_of_stage {
            continue;
        }
        let end = b.depth as f64 + 0.5;
        if blocks.get(i + 1).is_some() {
            chart.draw_series(DashedLineSeries::new(
                [(end, lo), (end, hi)],
                6,
                4,
                boundary,
            ))?;
        }
        if !b.stage.is_empty() {
            let label = Text::new(
                b.stage.clone(),
                ((stage_start + end) / 2.0, hi),
                (FAMILY, 13).into_font().color(&BLACK.mix(0.7)).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Top,
                    ),
                ),
            );
            chart.plotting_area().draw(&label)?;
        }
        stage_start = end;
    }
    for (_, color, points) in curves {
        let style = ShapeStyle::from(color).stroke_width(2);
        chart.draw_series(LineSeries::new(points.iter().copied(), style))?;
        chart.draw_series(
            points
                .iter()
                .map(|&p| Circle::new(p, 3, ShapeStyle::from(color).filled())),
        )?;
    }
    Ok(())
}
