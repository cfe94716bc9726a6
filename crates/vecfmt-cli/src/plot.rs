//! `vecfmt plot`: the flags of vecfmt_plot::PlotOptions, a progress bar, and the errors'
//! hints.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Args;
use vecfmt_plot::{Error as PlotError, PlotOptions};

#[derive(Args, Debug)]
#[command(
    after_help = "The PNG has four panels: the sparsity pattern (nonzeros per entry on a grid of at most 1000 x 1000 cells, log colour scale), rows by their nonzeros (log2 bins, log-log), column frequency by rank (log-log, with a Zipf line), and a title with the file, shape, nonzeros and dtype.\n\nExamples:\n  vecfmt plot cooc.vfm -o cooc.png\n  vecfmt plot vectors.vfm -o head.png --rows 0:1000 --cols 0:50000\n  vecfmt plot vectors.vfm -o big.png --width 2400 --height 1600 --force"
)]
pub struct PlotArgs {
    /// The .vfm file.
    pub file: PathBuf,
    /// The PNG to write.
    #[arg(short, long, value_name = "PNG")]
    pub output: PathBuf,
    /// Only rows A to B-1 (A:B; A: or :B leave one end open).
    #[arg(long, value_name = "A:B", value_parser = parse_range)]
    pub rows: Option<Span>,
    /// Only columns A to B-1.
    #[arg(long, value_name = "A:B", value_parser = parse_range)]
    pub cols: Option<Span>,
    /// Image width in pixels.
    #[arg(long, value_name = "PX", default_value_t = 1500)]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, value_name = "PX", default_value_t = 1000)]
    pub height: u32,
    /// The most density-grid cells per axis (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = vecfmt_plot::MAX_BINS)]
    pub bins: u32,
    /// Memory budget, e.g. 512M or 4G (the per-column counts take 4 bytes per column).
    #[arg(long, value_name = "BYTES", default_value = "1G")]
    pub memory: String,
    /// Replace the output if it exists.
    #[arg(long)]
    pub force: bool,
}

/// A zoom range as typed: `A:B`, `A:` or `:B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    start: u64,
    end: Option<u64>,
}

fn parse_range(s: &str) -> std::result::Result<Span, String> {
    let (a, b) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: a range is START:END, e.g. 0:1000"))?;
    let num = |t: &str, default: Option<u64>| -> std::result::Result<Option<u64>, String> {
        let t = t.trim().replace('_', "");
        if t.is_empty() {
            return Ok(default);
        }
        t.parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{s:?}: {t:?} is not a row or column number"))
    };
    Ok(Span {
        start: num(a, Some(0))?.unwrap_or(0),
        end: num(b, None)?,
    })
}

fn with_span(opts: PlotOptions, span: Option<Span>, rows: bool) -> PlotOptions {
    let Some(Span { start, end }) = span else { return opts };
    match (rows, end) {
        (true, Some(e)) => opts.rows(start..e),
        (true, None) => opts.rows(start..),
        (false, Some(e)) => opts.cols(start..e),
        (false, None) => opts.cols(start..),
    }
}

/// The library's error as the CLI says it: the message, and the flag that fixes it.
fn plot_error(e: PlotError) -> anyhow::Error {
    match e {
        // Core errors keep their type, so that `main` gives their hint and exit code.
        PlotError::Vfm(e) => e.into(),
        e @ PlotError::OutputExists { .. } => anyhow!("{e}; pass --force to replace it"),
        e @ (PlotError::EmptyRange { .. } | PlotError::RangeOutOfShape { .. }) => {
            anyhow!(
                "{e}\nhint: --rows and --cols take START:END with START < END, within the shape `vecfmt inspect` shows"
            )
        }
        e @ PlotError::OverBudget { .. } => anyhow!("{e}\nhint: narrow --cols or raise --memory"),
        e @ PlotError::BadSize { .. } => anyhow!("{e}\nhint: adjust --width and --height"),
        e @ PlotError::BadBins { .. } => anyhow!("{e}\nhint: adjust --bins"),
        e => e.into(),
    }
}

/// Runs `vecfmt plot`.
pub fn run(args: PlotArgs) -> Result<ExitCode> {
    let memory = crate::parse_bytes(&args.memory)?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows eta {eta}",
        )
        .expect("a valid template");
        bar.set_style(style);
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let b = bar.clone();
    let mut opts = PlotOptions::new()
        .size(args.width, args.height)
        .bins(args.bins)
        .memory(memory)
        .replace(args.force)
        .progress(move |done, total| {
            b.set_length(total);
            b.set_position(done);
        });
    opts = with_span(opts, args.rows, true);
    opts = with_span(opts, args.cols, false);
    let started = std::time::Instant::now();
    let s = vecfmt_plot::plot(&args.file, &args.output, &opts);
    bar.finish_and_clear();
    let s = s.map_err(plot_error)?;
    eprintln!(
        "vecfmt: wrote {}: {} x {} view of {} ({} nonzeros in view) in {:.1} s",
        args.output.display(),
        s.rows.end - s.rows.start,
        s.cols.end - s.cols.start,
        args.file.display(),
        s.nnz_in_view,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        assert_eq!(
            parse_range("3:10"),
            Ok(Span {
                start: 3,
                end: Some(10)
            })
        );
        assert_eq!(parse_range("3:"), Ok(Span { start: 3, end: None }));
        assert_eq!(
            parse_range(":1_000"),
            Ok(Span {
                start: 0,
                end: Some(1000)
            })
        );
        // An empty or reversed range parses; the library says what is wrong with it.
        assert_eq!(
            parse_range("10:5"),
            Ok(Span {
                start: 10,
                end: Some(5)
            })
        );
        assert!(parse_range("10").is_err());
        assert!(parse_range("a:5").is_err());
        assert!(parse_range("-1:5").is_err());
    }
}
