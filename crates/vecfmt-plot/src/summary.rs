//! [`summarize`]: one streaming pass over the rows that keeps what the picture needs.

use std::ops::Range;
use std::path::{Path, PathBuf};

use vecfmt::{DType, Indices, Matrix, OpenOptions};

use crate::error::{Axis, Error, Result};
use crate::options::PlotOptions;

/// Log2 bins of the row histogram: bin 0 holds empty rows, bin `k` ≥ 1 rows with
/// `2^(k-1) ≤ nnz < 2^k`.
pub const ROW_BINS: usize = 65;

/// The bin of [`Summary::row_hist`] that a row with `nnz` nonzeros falls in.
pub fn row_bin(nnz: u64) -> usize {
    (u64::BITS - nnz.leading_zeros()) as usize
}

/// Nonzero counts on a grid of cells over the rows and columns in view. Every cell but the
/// last of each axis spans the same number of rows (columns); the last may be shorter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DensityGrid {
    /// Cells down (over the rows).
    pub n_y: usize,
    /// Cells across (over the columns).
    pub n_x: usize,
    /// Rows per cell.
    pub rows_per_cell: u64,
    /// Columns per cell.
    pub cols_per_cell: u64,
    /// Nonzeros per cell, row-major: cell `(y, x)` is `counts[y * n_x + x]`.
    pub counts: Vec<u64>,
}

impl DensityGrid {
    fn new(rows: u64, cols: u64, bins: u32) -> DensityGrid {
        let per = |n: u64| if n == 0 { 1 } else { n.div_ceil(bins as u64) };
        let (rpc, cpc) = (per(rows), per(cols));
        let n_y = rows.div_ceil(rpc) as usize;
        let n_x = cols.div_ceil(cpc) as usize;
        DensityGrid {
            n_y,
            n_x,
            rows_per_cell: rpc,
            cols_per_cell: cpc,
            counts: vec![0; n_y * n_x],
        }
    }
    /// The count of cell `(y, x)`.
    pub fn get(&self, y: usize, x: usize) -> u64 {
        self.counts[y * self.n_x + x]
    }
}

/// What [`summarize`] found: everything [`render_png`](crate::render_png) draws.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The file summarized.
    pub path: PathBuf,
    /// The whole matrix's shape.
    pub shape: (u64, u64),
    /// The whole matrix's stored entries.
    pub nnz: u64,
    /// The value type.
    pub dtype: DType,
    /// The rows in view.
    pub rows: Range<u64>,
    /// The columns in view.
    pub cols: Range<u64>,
    /// Whether a range was asked for (the title says so).
    pub zoomed: bool,
    /// Stored entries in view.
    pub nnz_in_view: u64,
    /// Nonzeros per cell over the view.
    pub grid: DensityGrid,
    /// Rows of the view by their nonzeros in view, in log2 bins (see [`row_bin`]).
    pub row_hist: [u64; ROW_BINS],
    /// Nonzeros per column of the view: `col_nnz[j]` is column `cols.start + j`'s
    /// (saturating at `u32::MAX`).
    pub col_nnz: Vec<u32>,
}

/// Opens `path` under the memory budget of `opts` and summarizes it.
pub fn summarize_file(path: impl AsRef<Path>, opts: &PlotOptions) -> Result<Summary> {
    // The scan decodes each chunk once, outside the cache; a small cache is enough.
    let cache = (opts.memory / 8).min(64 << 20) as usize;
    let m = OpenOptions::new().cache_bytes(cache).open(path)?;
    summarize(&m, opts)
}

/// Summarizes the rows and columns of `m` that `opts` asks for, in one pass over the rows.
///
/// Memory: 4 bytes per column in view (the per-column counts), up to 8 MB for the grid, and
/// one decoded chunk at a time. A column range whose counts do not fit the budget is an
/// error before anything is read.
pub fn summarize(m: &Matrix, opts: &PlotOptions) -> Result<Summary> {
    opts.check_bins()?;
    let path = m.path();
    let rows = opts.resolve(path, Axis::Rows, m.n_rows())?;
    let cols = opts.resolve(path, Axis::Cols, m.n_cols())?;
    let (n_rows, n_cols) = (rows.end - rows.start, cols.end - cols.start);
    let grid_bytes = 8
        * (opts.bins as u64)
            .pow(2)
            .min(n_rows.max(1).saturating_mul(n_cols.max(1)));
    // The counts, plus a sorted copy of the nonzero ones when the picture is drawn.
    let needed = n_cols.saturating_mul(8).saturating_add(2 * grid_bytes);
    if needed > opts.memory {
        return Err(Error::OverBudget {
            path: path.to_path_buf(),
            cols: n_cols,
            needed,
            budget: opts.memory,
        });
    }
    let mut grid = DensityGrid::new(n_rows, n_cols, opts.bins);
    let mut col_nnz = vec![0u32; n_cols as usize];
    let mut row_hist = [0u64; ROW_BINS];
    let mut nnz_in_view = 0u64;
    let mut nonempty = 0u64;
    let (c0, c1) = (cols.start, cols.end);
    let (rpc, cpc, n_x) = (grid.rows_per_cell, grid.cols_per_cell, grid.n_x);
    let mut since_progress = 0u32;
    for row in m.iter_range(rows.clone()) {
        let row = row?;
        let y = ((row.id() - rows.start) / rpc) as usize;
        let line = &mut grid.counts[y * n_x..(y + 1) * n_x];
        let n = match row.indices() {
            Indices::U32(ix) => count_row(ix, c0, c1, cpc, line, &mut col_nnz),
            Indices::U64(ix) => count_row(ix, c0, c1, cpc, line, &mut col_nnz),
        };
        if n > 0 {
            nonempty += 1;
            nnz_in_view += n;
            row_hist[row_bin(n)] += 1;
        }
        since_progress += 1;
        if since_progress == 1 << 14 {
            since_progress = 0;
            opts.cancel.check()?;
            if let Some(p) = &opts.progress {
                p(row.id() + 1 - rows.start, n_rows);
            }
        }
    }
    if let Some(p) = &opts.progress {
        p(n_rows, n_rows);
    }
    row_hist[0] = n_rows - nonempty;
    Ok(Summary {
        path: path.to_path_buf(),
        shape: m.shape(),
        nnz: m.nnz(),
        dtype: m.dtype(),
        rows,
        cols,
        zoomed: opts.zoomed(),
        nnz_in_view,
        grid,
        row_hist,
        col_nnz,
    })
}

/// Counts the entries of one row that fall in columns `c0..c1` into the row's line of grid
/// cells and into the per-column counts; returns how many there were.
fn count_row<I: Copy + Into<u64>>(ix: &[I], c0: u64, c1: u64, cpc: u64, line: &mut [u64], col_nnz: &mut [u32]) -> u64 {
    // Indices are strictly increasing: the columns in view are one slice of them.
    let lo = ix.partition_point(|&j| j.into() < c0);
    let hi = lo + ix[lo..].partition_point(|&j| j.into() < c1);
    let within = &ix[lo..hi];
    if cpc.is_power_of_two() {
        let shift = cpc.trailing_zeros();
        for &j in within {
            let j = j.into() - c0;
            line[(j >> shift) as usize] += 1;
            let c = &mut col_nnz[j as usize];
            *c = c.saturating_add(1);
        }
    } else {
        for &j in within {
            let j = j.into() - c0;
            line[(j / cpc) as usize] += 1;
            let c = &mut col_nnz[j as usize];
            *c = c.saturating_add(1);
        }
    }
    within.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_bins_are_log2() {
        assert_eq!(row_bin(0), 0);
        assert_eq!(row_bin(1), 1);
        assert_eq!(row_bin(2), 2);
        assert_eq!(row_bin(3), 2);
        assert_eq!(row_bin(4), 3);
        assert_eq!(row_bin(7), 3);
        assert_eq!(row_bin(8), 4);
        assert_eq!(row_bin(u64::MAX), 64);
    }

    #[test]
    fn grid_cells_cover_the_view() {
        let g = DensityGrid::new(2500, 7, 1000);
        assert_eq!((g.rows_per_cell, g.n_y, g.cols_per_cell, g.n_x), (3, 834, 1, 7));
        let g = DensityGrid::new(0, 0, 1000);
        assert_eq!((g.n_y, g.n_x, g.counts.len()), (0, 0, 0));
        let g = DensityGrid::new(10, 10, 3);
        assert_eq!((g.rows_per_cell, g.n_y), (4, 3));
    }
}
