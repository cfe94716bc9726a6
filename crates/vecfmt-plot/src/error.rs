//! The one error type of the plot crate.

use std::path::PathBuf;

/// Result with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An axis of the matrix, as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// The rows.
    Rows,
    /// The columns.
    Cols,
}

impl std::fmt::Display for Axis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Axis::Rows => "row",
            Axis::Cols => "column",
        })
    }
}

/// Everything that can go wrong while summarizing or drawing a matrix. Each variant names
/// the file it concerns.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the `.vfm` file failed (its own error names the file and the place in it).
    #[error(transparent)]
    Vfm(#[from] vecfmt::Error),
    /// A zoom range that ends before it starts, or is empty.
    #[error("{}: the {axis} range {start}:{end} is empty (it must end after it starts)", .path.display())]
    EmptyRange {
        path: PathBuf,
        axis: Axis,
        start: u64,
        end: u64,
    },
    /// A zoom range that reaches past the matrix.
    #[error("{}: the {axis} range {start}:{end} reaches past the matrix, which has {len} {axis}s", .path.display())]
    RangeOutOfShape {
        path: PathBuf,
        axis: Axis,
        start: u64,
        end: u64,
        len: u64,
    },
    /// The per-column counts of the column range do not fit the memory budget.
    #[error("{}: counting nonzeros per column for {cols} columns needs {needed} bytes of memory, over the budget of {budget} bytes; zoom into fewer columns or allow more memory", .path.display())]
    OverBudget {
        path: PathBuf,
        cols: u64,
        needed: u64,
        budget: u64,
    },
    /// An image size outside what can be drawn legibly (or at all).
    #[error("image size {width}x{height} is outside {min_width}x{min_height} to {max}x{max} pixels")]
    BadSize {
        width: u32,
        height: u32,
        min_width: u32,
        min_height: u32,
        max: u32,
    },
    /// A density-grid resolution outside 1 to the maximum.
    #[error("density grid of {bins} cells per axis: must be 1 to {max}")]
    BadBins { bins: u32, max: u32 },
    /// The output exists and replacing it was not allowed.
    #[error("{}: exists", .path.display())]
    OutputExists { path: PathBuf },
    /// Drawing the picture failed.
    #[error("{}: drawing the plot failed: {detail}", .path.display())]
    Draw { path: PathBuf, detail: String },
    /// Encoding or writing the PNG failed.
    #[error("{}: writing the PNG failed: {detail}", .path.display())]
    Encode { path: PathBuf, detail: String },
}
