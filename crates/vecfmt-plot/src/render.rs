//! [`render_png`]: the four-panel picture of a [`Summary`].

use std::io::Write;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use crate::options::PlotOptions;
use crate::summary::{DensityGrid, Summary, ROW_BINS};

/// The family name the embedded font is registered under.
const FONT: &str = "sans-serif";

/// Registers the embedded DejaVu Sans with plotters' text renderer, once per process: text
/// needs no system font.
fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // A failure shows as a drawing error naming the output when text is drawn.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Draws `s` and writes it as a PNG at `path`, through a temporary file renamed into place
/// (nothing is left at `path` if anything fails). An existing `path` is an error unless
/// [`PlotOptions::replace`] allows it.
pub fn render_png(s: &Summary, path: impl AsRef<Path>, opts: &PlotOptions) -> Result<()> {
    let path = path.as_ref();
    if !opts.replace && path.exists() {
        return Err(Error::OutputExists {
            path: path.to_path_buf(),
        });
    }
    let rgb = render_rgb(s, opts).map_err(|detail| Error::Draw {
        path: path.to_path_buf(),
        detail,
    })?;
    let mut tmp = vecfmt::publish::temp_file_for(path)?;
    let encoded = encode_png(
        &mut std::io::BufWriter::new(tmp.as_file_mut()),
        &rgb,
        opts.width,
        opts.height,
    );
    encoded.map_err(|detail| Error::Encode {
        path: path.to_path_buf(),
        detail,
    })?;
    vecfmt::publish::persist(tmp, path)?;
    Ok(())
}

/// Draws `s` into an RGB buffer of `opts.width() × opts.height()` pixels, 3 bytes each.
pub fn render(s: &Summary, opts: &PlotOptions) -> Result<Vec<u8>> {
    render_rgb(s, opts).map_err(|detail| Error::Draw {
        path: s.path.clone(),
        detail,
    })
}

/// Encodes an RGB buffer as a PNG: indexed (a palette of at most 256 colours, in the order
/// they first appear, so the bytes are the same every time) when the picture has that few
/// colours, which makes it about a third of the size; RGB otherwise.
fn encode_png(w: &mut impl Write, rgb: &[u8], width: u32, height: u32) -> std::result::Result<(), String> {
    let mut enc = png::Encoder::new(w, width, height);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::High);
    let data = match palette(rgb) {
        Some((colours, indices)) => {
            enc.set_color(png::ColorType::Indexed);
            enc.set_palette(colours);
            indices
        }
        None => {
            enc.set_color(png::ColorType::Rgb);
            rgb.to_vec()
        }
    };
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(&data).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

/// The palette (RGB triples) and one index per pixel, if there are at most 256 colours.
fn palette(rgb: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut index: std::collections::HashMap<[u8; 3], u8> = std::collections::HashMap::new();
    let mut colours = Vec::new();
    let mut out = Vec::with_capacity(rgb.len() / 3);
    for px in rgb.chunks_exact(3) {
        let c = [px[0], px[1], px[2]];
        let i = match index.get(&c) {
            Some(&i) => i,
            None => {
                let i = u8::try_from(index.len()).ok()?;
                index.insert(c, i);
                colours.extend_from_slice(&c);
                i
            }
        };
        out.push(i);
    }
    Some((colours, out))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

fn render_rgb(s: &Summary, opts: &PlotOptions) -> std::result::Result<Vec<u8>, String> {
    opts.check_size().map_err(|e| e.to_string())?;
    register_fonts();
    let (w, h) = (opts.width, opts.height);
    let mut buf = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        // Below 0.75 of the default size, text would get too small to read: it stops shrinking.
        let k = (w as f64 / 1500.0).min(h as f64 / 1000.0).max(0.75);
        let px = |v: f64| (v * k).round().max(1.0);
        let (top, body) = root.split_vertically(px(105.0) as u32);
        title(&top, s, &px).map_err(|e| e.to_string())?;
        let (left, right) = body.split_horizontally((w as f64 * 0.55) as u32);
        let (rows_area, cols_area) = right.split_vertically(((h as f64 - px(105.0)) / 2.0) as u32);
        density(&root, &left, s, &px).map_err(|e| e.to_string())?;
        row_histogram(&rows_area, s, &px).map_err(|e| e.to_string())?;
        column_ranks(&cols_area, s, &px).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    snap_greys(&mut buf);
    Ok(buf)
}

type DrawResult<'a> = std::result::Result<(), DrawingAreaErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>;

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// An axis label: `2500000` as `2.5M`, `40000` as `40k`, small numbers as they are.
pub(crate) fn compact(v: f64) -> String {
    let a = v.abs();
    let (d, suffix) = if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e4 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / d;
    let text = if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else if d == 1.0 && a < 1.0 {
        format!("{x:.2}")
    } else {
        let t = format!("{x:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    format!("{text}{suffix}")
}

fn title<'a>(area: &Area<'a>, s: &Summary, px: &impl Fn(f64) -> f64) -> DrawResult<'a> {
    let name = s
        .path
        .file_name()
        .map_or_else(|| s.path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let (r, c) = s.shape;
    let cells = r as f64 * c as f64;
    let density = if cells > 0.0 { s.nnz as f64 / cells } else { 0.0 };
    let big = (FONT, px(30.0)).into_font().style(FontStyle::Bold);
    let normal = (FONT, px(20.0)).into_font();
    let x = px(24.0) as i32;
    area.draw(&Text::new(name, (x, px(12.0) as i32), big))?;
    let line = format!(
        "{} rows × {} columns · {} nonzeros (density {density:.3e}) · {}",
        thousands(r),
        thousands(c),
        thousands(s.nnz),
        s.dtype
    );
    area.draw(&Text::new(line, (x, px(50.0) as i32), normal.clone()))?;
    let view = if s.zoomed {
        format!(
            "zoom: rows {}:{} × columns {}:{} · {} nonzeros in view",
            s.rows.start,
            s.rows.end,
            s.cols.start,
            s.cols.end,
            thousands(s.nnz_in_view)
        )
    } else {
        "whole matrix".to_string()
    };
    area.draw(&Text::new(
        view,
        (x, px(76.0) as i32),
        normal.color(&RGBColor(90, 90, 90)),
    ))?;
    Ok(())
}

/// A message in the middle of an empty panel.
fn empty_note<'a>(area: &Area<'a>, text: &str, px: &impl Fn(f64) -> f64) -> DrawResult<'a> {
    let (w, h) = area.dim_in_pixel();
    let style = (FONT, px(20.0))
        .into_font()
        .color(&RGBColor(90, 90, 90))
        .pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new(text.to_string(), (w as i32 / 2, h as i32 / 2), style))
}

/// The cells `[lo, hi)` one pixel covers on one axis, and the entries they span.
type Cells = (usize, usize, u64);

/// Density of the pixel's cells: nonzeros over entries, from a summed-area table.
struct Raster<'g> {
    grid: &'g DensityGrid,
    /// (n_y + 1) × (n_x + 1) prefix sums of the counts.
    sums: Vec<u64>,
    n_rows: u64,
    n_cols: u64,
}

impl<'g> Raster<'g> {
    fn new(grid: &'g DensityGrid, n_rows: u64, n_cols: u64) -> Self {
        let (ny, nx) = (grid.n_y, grid.n_x);
        let mut sums = vec![0u64; (ny + 1) * (nx + 1)];
        for y in 0..ny {
            let mut line = 0;
            for x in 0..nx {
                line += grid.get(y, x);
                sums[(y + 1) * (nx + 1) + x + 1] = sums[y * (nx + 1) + x + 1] + line;
            }
        }
        Raster {
            grid,
            sums,
            n_rows,
            n_cols,
        }
    }

    /// The cells `[lo, hi)` that pixel `p` of `n_px` covers on an axis of `len` entries in
    /// cells of `per` entries, and the entries they span.
    fn cells(p: u64, n_px: u64, len: u64, per: u64) -> Cells {
        let (a, b) = if len >= n_px {
            (
                (p as u128 * len as u128 / n_px as u128) as u64,
                ((p + 1) as u128 * len as u128 / n_px as u128) as u64,
            )
        } else {
            let a = ((2 * p + 1) as u128 * len as u128 / (2 * n_px) as u128) as u64;
            (a, a + 1)
        };
        let (lo, hi) = (a / per, b.div_ceil(per));
        let span = (hi * per).min(len) - lo * per;
        (lo as usize, hi as usize, span)
    }

    /// Nonzeros over entries in the cells `x` × `y`.
    fn density(&self, x: Cells, y: Cells) -> f64 {
        let nx1 = self.grid.n_x + 1;
        let s = |yy: usize, xx: usize| self.sums[yy * nx1 + xx];
        let count = s(y.1, x.1) + s(y.0, x.0) - s(y.0, x.1) - s(y.1, x.0);
        count as f64 / (x.2 as f64 * y.2 as f64)
    }

    /// Every pixel's cells, per axis.
    fn axes(&self, w: u64, h: u64) -> (Vec<Cells>, Vec<Cells>) {
        let xs = (0..w)
            .map(|p| Self::cells(p, w, self.n_cols, self.grid.cols_per_cell))
            .collect();
        let ys = (0..h)
            .map(|p| Self::cells(p, h, self.n_rows, self.grid.rows_per_cell))
            .collect();
        (xs, ys)
    }
}

fn density<'a>(root: &Area<'a>, area: &Area<'a>, s: &Summary, px: &impl Fn(f64) -> f64) -> DrawResult<'a> {
    let (w, _) = area.dim_in_pixel();
    let (main, bar) = area.split_horizontally(w.saturating_sub(px(115.0) as u32));
    let (r0, r1, c0, c1) = (
        s.rows.start as f64,
        s.rows.end as f64,
        s.cols.start as f64,
        s.cols.end as f64,
    );
    let caption = (FONT, px(21.0)).into_font();
    let labels = (FONT, px(15.0)).into_font();
    let desc = (FONT, px(17.0)).into_font();
    // Rows go down, as in the matrix: the y coordinate is minus the row.
    let mut chart = ChartBuilder::on(&main)
        .caption("Sparsity pattern (nonzeros per entry, log colour)", caption.clone())
        .margin(px(12.0))
        .margin_left(px(20.0))
        .x_label_area_size(px(52.0))
        .y_label_area_size(px(78.0))
        .build_cartesian_2d(c0..c1.max(c0 + 1.0), -(r1.max(r0 + 1.0))..-r0)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(6)
        .y_labels(8)
        .x_label_formatter(&|v| compact(*v))
        .y_label_formatter(&|v| compact(-*v))
        .x_desc("column")
        .y_desc("row")
        .label_style(labels.clone())
        .axis_desc_style(desc.clone())
        .draw()?;
    if s.nnz_in_view == 0 {
        return empty_note(&chart.plotting_area().strip_coord_spec(), "no nonzeros in view", px);
    }
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let (pw, ph) = ((xr.end - xr.start) as u64, (yr.end - yr.start) as u64);
    if pw == 0 || ph == 0 {
        return Ok(());
    }
    let raster = Raster::new(&s.grid, s.rows.end - s.rows.start, s.cols.end - s.cols.start);
    let (xs, ys) = raster.axes(pw, ph);
    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for &y in &ys {
        for &x in &xs {
            let d = raster.density(x, y);
            if d > 0.0 {
                lo = lo.min(d);
                hi = hi.max(d);
            }
        }
    }
    let (llo, lhi) = colour_range(lo, hi);
    for (j, &y) in ys.iter().enumerate() {
        for (i, &x) in xs.iter().enumerate() {
            let d = raster.density(x, y);
            if d > 0.0 {
                let c = colour(d.log10(), llo, lhi);
                root.draw_pixel((xr.start + i as i32, yr.start + j as i32), &c)?;
            }
        }
    }
    colour_bar(&bar, llo, lhi, px)
}

/// Levels of the colour scale: enough for the eye on a log scale, and few enough that the
/// whole picture fits a 256-colour palette.
const LEVELS: f64 = 64.0;

/// The colour of log10 density `v` on the scale from `lo` to `hi`, one of [`LEVELS`].
fn colour(v: f64, lo: f64, hi: f64) -> RGBColor {
    let t = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
    let level = (t * LEVELS).floor().min(LEVELS - 1.0) / (LEVELS - 1.0);
    ViridisRGB.get_color_normalized(level, 0.0, 1.0)
}

/// Snaps grey pixels (anti-aliased text and lines on white) to 16 levels, so that the
/// picture fits a palette; the text looks the same.
fn snap_greys(rgb: &mut [u8]) {
    for px in rgb.chunks_exact_mut(3) {
        if px[0] == px[1] && px[1] == px[2] {
            let v = ((px[0] as u32 + 8) / 17 * 17) as u8;
            px.fill(v);
        }
    }
}

/// The log10 range the colours span: the smallest and largest positive densities, at least
/// a factor of ten apart.
fn colour_range(lo: f64, hi: f64) -> (f64, f64) {
    let (llo, lhi) = (lo.log10(), hi.log10());
    if lhi - llo < 1.0 {
        (lhi - 1.0, lhi)
    } else {
        (llo, lhi)
    }
}

fn colour_bar<'a>(area: &Area<'a>, llo: f64, lhi: f64, px: &impl Fn(f64) -> f64) -> DrawResult<'a> {
    let labels = (FONT, px(15.0)).into_font();
    let mut chart = ChartBuilder::on(area)
        .margin_top(px(12.0 + 21.0 + 14.0))
        .margin_bottom(px(12.0))
        .margin_left(px(8.0))
        .x_label_area_size(px(52.0))
        .right_y_label_area_size(px(72.0))
        .build_cartesian_2d(0f64..1f64, llo..lhi)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(12)
        .y_label_formatter(&|v| power_of_ten(*v))
        .label_style(labels.clone())
        .draw()?;
    let steps = 200;
    chart.draw_series((0..steps).map(|i| {
        let a = llo + (lhi - llo) * i as f64 / steps as f64;
        let b = llo + (lhi - llo) * (i + 1) as f64 / steps as f64;
        let c = colour((a + b) / 2.0, llo, lhi);
        Rectangle::new([(0.0, a), (1.0, b)], c.filled())
    }))?;
    Ok(())
}

/// `-3` as `10⁻³`; not an integer: no label.
fn power_of_ten(exp: f64) -> String {
    if (exp - exp.round()).abs() > 1e-6 {
        return String::new();
    }
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let e = exp.round() as i64;
    let mut out = String::from("10");
    if e < 0 {
        out.push('⁻');
    }
    out.extend(e.unsigned_abs().to_string().bytes().map(|b| SUP[(b - b'0') as usize]));
    out
}

/// Log-axis labels: 1, 2 and 5 times a power of ten (a wide axis only has ticks at powers
/// of ten; a narrow one needs the others to have any label).
fn log_label(v: f64) -> String {
    let p = 10f64.powf(v.log10().floor());
    let m = v / p;
    if [1.0, 2.0, 5.0, 10.0].iter().any(|&k| (m - k).abs() < 1e-6 * k) {
        compact((m.round() * p).round())
    } else {
        String::new()
    }
}

fn row_histogram<'a>(area: &Area<'a>, s: &Summary, px: &impl Fn(f64) -> f64) -> DrawResult<'a> {
    let caption = (FONT, px(21.0)).into_font();
    let labels = (FONT, px(15.0)).into_font();
    let desc = (FONT, px(17.0)).into_font();
    let bins: Vec<(usize, u64)> = (1..ROW_BINS)
        .map(|k| (k, s.row_hist[k]))
        .filter(|&(_, n)| n > 0)
        .collect();
    let title = "Rows by nonzeros (log2 bins), log-log";
    let Some(&(kmax, _)) = bins.last() else {
        let inner = area.titled(title, caption)?;
        return empty_note(&inner, "no nonzeros in view", px);
    };
    let kmin = bins[0].0;
    let ymax = bins.iter().map(|b| b.1).max().unwrap_or(1) as f64;
    let x_lo = 2f64.powi(kmin as i32 - 1) / 1.5;
    let x_hi = (2f64.powi(kmax as i32) * 1.5).max(x_lo * 10.0);
    let mut chart = ChartBuilder::on(area)
        .caption(title, caption)
        .margin(px(12.0))
        .margin_right(px(28.0))
        .x_label_area_size(px(52.0))
        .y_label_area_size(px(78.0))
        .build_cartesian_2d((x_lo..x_hi).log_scale(), (0.5f64..(ymax * 3.0).max(10.0)).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(12)
        .y_labels(10)
        .x_label_formatter(&|v| log_label(*v))
        .y_label_formatter(&|v| log_label(*v))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_desc("nonzeros in the row")
        .y_desc("rows")
        .label_style(labels.clone())
        .axis_desc_style(desc)
        .draw()?;
    let fill = RGBColor(49, 104, 142);
    chart.draw_series(bins.iter().map(|&(k, n)| {
        let lo = 2f64.powi(k as i32 - 1);
        let hi = 2f64.powi(k as i32);
        Rectangle::new([(lo, 0.5), (hi, n as f64)], fill.mix(0.85).filled())
    }))?;
    chart.draw_series(bins.iter().map(|&(k, n)| {
        let lo = 2f64.powi(k as i32 - 1);
        let hi = 2f64.powi(k as i32);
        Rectangle::new([(lo, 0.5), (hi, n as f64)], WHITE.stroke_width(1))
    }))?;
    let note = format!(
        "{} rows in view, {} empty (not shown)",
        thousands(s.rows.end - s.rows.start),
        thousands(s.row_hist[0])
    );
    let style = labels
        .color(&RGBColor(70, 70, 70))
        .pos(Pos::new(HPos::Right, VPos::Top));
    let (w, _) = chart.plotting_area().dim_in_pixel();
    chart.plotting_area().strip_coord_spec().draw(&Text::new(
        note,
        (w as i32 - px(8.0) as i32, px(8.0) as i32),
        style,
    ))?;
    Ok(())
}

/// About `n` ranks from 1 to `len`, spaced evenly on a log axis, and `len` itself.
fn log_ranks(len: usize, n: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(n + 1);
    if len == 0 {
        return out;
    }
    let step = (len as f64).ln() / n as f64;
    for i in 0..=n {
        let r = ((i as f64 * step).exp().round() as usize).clamp(1, len);
        if out.last() != Some(&r) {
            out.push(r);
        }
    }
    if out.last() != Some(&len) {
        out.push(len);
    }
    out
}

fn column_ranks<'a>(area: &Area<'a>, s: &Summary, px: &impl Fn(f64) -> f64) -> DrawResult<'a> {
    let caption = (FONT, px(21.0)).into_font();
    let labels = (FONT, px(15.0)).into_font();
    let desc = (FONT, px(17.0)).into_font();
    let title = "Column frequency by rank, log-log";
    let mut counts: Vec<u32> = s.col_nnz.iter().copied().filter(|&c| c > 0).collect();
    if counts.is_empty() {
        let inner = area.titled(title, caption)?;
        return empty_note(&inner, "no nonzeros in view", px);
    }
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let n = counts.len();
    let top = counts[0] as f64;
    let bottom = *counts.last().unwrap_or(&1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, caption)
        .margin(px(12.0))
        .margin_right(px(28.0))
        .x_label_area_size(px(52.0))
        .y_label_area_size(px(78.0))
        .build_cartesian_2d(
            (1f64..(n as f64).max(10.0)).log_scale(),
            ((bottom * 0.5)..(top * 3.0).max(10.0)).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_labels(12)
        .y_labels(10)
        .x_label_formatter(&|v| log_label(*v))
        .y_label_formatter(&|v| log_label(*v))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(225, 225, 225))
        .x_desc("rank of the column (most nonzeros first)")
        .y_desc("nonzeros in the column")
        .label_style(labels.clone())
        .axis_desc_style(desc)
        .draw()?;
    let line = RGBColor(49, 104, 142);
    let ranks = log_ranks(n, 2000);
    chart
        .draw_series(LineSeries::new(
            ranks.iter().map(|&r| (r as f64, counts[r - 1] as f64)),
            line.stroke_width(px(2.5) as u32),
        ))?
        .label("columns")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line.stroke_width(3)));
    // Zipf's law through the top column: frequency ∝ 1 / rank.
    let zipf_end = (n as f64).min(top / (bottom * 0.5)).max(1.0);
    let grey = RGBColor(200, 80, 60);
    chart
        .draw_series(LineSeries::new(
            [(1.0, top), (zipf_end, top / zipf_end)],
            grey.stroke_width(px(1.5) as u32),
        ))?
        .label("Zipf: top ÷ rank")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(labels)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    let note = format!(
        "{} of {} columns have nonzeros",
        thousands(n as u64),
        thousands(s.cols.end - s.cols.start)
    );
    let style = (FONT, px(15.0))
        .into_font()
        .color(&RGBColor(70, 70, 70))
        .pos(Pos::new(HPos::Left, VPos::Bottom));
    let (_, h) = chart.plotting_area().dim_in_pixel();
    chart.plotting_area().strip_coord_spec().draw(&Text::new(
        note,
        (px(10.0) as i32, h as i32 - px(8.0) as i32),
        style,
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(905684), "905,684");
        assert_eq!(thousands(1234567890), "1,234,567,890");
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(2500.0), "2500");
        assert_eq!(compact(40000.0), "40k");
        assert_eq!(compact(2_500_000.0), "2.5M");
        assert_eq!(compact(-3000.0), "-3000");
        assert_eq!(power_of_ten(-3.0), "10⁻³");
        assert_eq!(power_of_ten(0.0), "10⁰");
        assert_eq!(power_of_ten(12.0), "10¹²");
        assert_eq!(power_of_ten(-2.5), "");
        assert_eq!(log_label(200.0), "200");
        assert_eq!(log_label(50000.0), "50k");
        assert_eq!(log_label(1.0), "1");
        assert_eq!(log_label(300.0), "");
    }

    #[test]
    fn pixels_cover_their_cells() {
        // 10 columns in cells of 3 (the last holds one), drawn on 5 pixels: two columns each.
        let cells: Vec<_> = (0..5).map(|p| Raster::cells(p, 5, 10, 3)).collect();
        assert_eq!(cells, [(0, 1, 3), (0, 2, 6), (1, 2, 3), (2, 3, 3), (2, 4, 4)]);
        // 2 columns on 4 pixels: each pixel shows the column its centre falls in.
        let cells: Vec<_> = (0..4).map(|p| Raster::cells(p, 4, 2, 1)).collect();
        assert_eq!(cells, [(0, 1, 1), (0, 1, 1), (1, 2, 1), (1, 2, 1)]);
    }

    #[test]
    fn log_ranks_span_the_axis() {
        assert_eq!(log_ranks(0, 10), Vec::<usize>::new());
        assert_eq!(log_ranks(1, 10), vec![1]);
        let r = log_ranks(4_000_000, 2000);
        assert_eq!((r[0], *r.last().unwrap()), (1, 4_000_000));
        assert!(r.windows(2).all(|w| w[0] < w[1]));
        assert!(r.len() <= 2002);
    }
}
