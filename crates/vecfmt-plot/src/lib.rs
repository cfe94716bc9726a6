//! # vecfmt-plot
//!
//! One picture of a `.vfm` matrix that a person reads at a glance, drawn from one streaming
//! pass over its rows in bounded memory, whatever its size:
//!
//! - the sparsity pattern: nonzeros per entry on a grid of at most 1000 × 1000 cells, on a
//!   log colour scale with a colour bar;
//! - the rows by their number of nonzeros, in log2 bins, log-log;
//! - the columns' nonzero counts by rank, log-log, next to a Zipf line;
//! - a title with the file, the shape, the nonzeros and the dtype (and the zoom).
//!
//! [`summarize`] makes the [`Summary`] (exact counts, for tests and other pictures);
//! [`render_png`] draws it. Text uses an embedded DejaVu Sans, so no system font is needed.
//!
//! ```
//! use vecfmt::{DType, MatrixWriter, WriterOptions};
//! use vecfmt_plot::PlotOptions;
//! let dir = tempfile::tempdir()?;
//! let (input, output) = (dir.path().join("m.vfm"), dir.path().join("m.png"));
//! let mut w = MatrixWriter::create(&input, WriterOptions::new(DType::F32, 100))?;
//! w.push_row(0, &[1u32, 50], &[1.0f32, 2.0])?;
//! w.push_row(3, &[50u32], &[4.0f32])?;
//! w.finish()?;
//!
//! let summary = vecfmt_plot::plot(&input, &output, &PlotOptions::new().size(900, 600))?;
//! assert_eq!(summary.nnz_in_view, 3);
//! assert_eq!(summary.col_nnz[50], 2);
//! assert_eq!(&std::fs::read(&output)?[1..4], b"PNG");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod options;
mod render;
mod summary;

use std::path::Path;

pub use error::{Axis, Error, Result};
pub use options::{PlotOptions, ProgressFn, MAX_BINS, MAX_SIDE, MIN_HEIGHT, MIN_WIDTH};
pub use render::{render, render_png};
pub use summary::{row_bin, summarize, summarize_file, DensityGrid, Summary, ROW_BINS};

/// Summarizes the `.vfm` file `input` and draws it as a PNG at `output`: [`summarize_file`]
/// then [`render_png`]. The output and the options are checked before the scan, so that a
/// mistake costs no pass over a large file.
pub fn plot(input: impl AsRef<Path>, output: impl AsRef<Path>, opts: &PlotOptions) -> Result<Summary> {
    let output = output.as_ref();
    if !opts.replace && output.exists() {
        return Err(Error::OutputExists {
            path: output.to_path_buf(),
        });
    }
    opts.check_size()?;
    let s = summarize_file(input, opts)?;
    render_png(&s, output, opts)?;
    Ok(s)
}
