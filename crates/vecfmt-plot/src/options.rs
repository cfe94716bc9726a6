//! [`PlotOptions`]: what to draw, and how large.

use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use crate::error::{Axis, Error, Result};

/// The most density-grid cells per axis.
pub const MAX_BINS: u32 = 1000;
/// The smallest image, in pixels, on which the four panels stay legible.
pub const MIN_WIDTH: u32 = 800;
/// The smallest image height, in pixels.
pub const MIN_HEIGHT: u32 = 560;
/// The largest image side, in pixels.
pub const MAX_SIDE: u32 = 8000;

/// Called while the rows are scanned with (rows done, rows in the range).
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// How to summarize and draw a matrix.
///
/// ```
/// let opts = vecfmt_plot::PlotOptions::new().rows(0..1000).cols(5000..).size(1200, 800);
/// assert_eq!(opts.width(), 1200);
/// ```
#[derive(Clone)]
pub struct PlotOptions {
    pub(crate) rows: (u64, Option<u64>),
    pub(crate) cols: (u64, Option<u64>),
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) bins: u32,
    pub(crate) memory: u64,
    pub(crate) replace: bool,
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) cancel: vecfmt::Cancel,
}

impl std::fmt::Debug for PlotOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlotOptions")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("bins", &self.bins)
            .field("memory", &self.memory)
            .field("replace", &self.replace)
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            rows: (0, None),
            cols: (0, None),
            width: 1500,
            height: 1000,
            bins: MAX_BINS,
            memory: 1 << 30,
            replace: false,
            progress: None,
            cancel: vecfmt::Cancel::new(),
        }
    }
}

fn bounds(r: impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match r.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match r.end_bound() {
        Bound::Included(&e) => Some(e.saturating_add(1)),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl PlotOptions {
    /// Every row and column, 1500 × 1000 pixels, a grid of up to 1000 × 1000 cells, a
    /// memory budget of 1 GiB, and an existing output is not replaced.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only these rows (`a..b`, `a..`, `..b`); checked against the shape when summarizing.
    pub fn rows(mut self, r: impl RangeBounds<u64>) -> Self {
        self.rows = bounds(r);
        self
    }
    /// Only these columns.
    pub fn cols(mut self, r: impl RangeBounds<u64>) -> Self {
        self.cols = bounds(r);
        self
    }
    /// The image size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }
    /// The most density-grid cells per axis (1 to [`MAX_BINS`]).
    pub fn bins(mut self, bins: u32) -> Self {
        self.bins = bins;
        self
    }
    /// The memory budget in bytes: the per-column counts and the grid must fit in it.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = bytes;
        self
    }
    /// Whether an existing output may be replaced.
    pub fn replace(mut self, yes: bool) -> Self {
        self.replace = yes;
        self
    }
    /// Hears how far the scan has got: (rows done, rows in the range).
    pub fn progress(mut self, f: impl Fn(u64, u64) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
    /// A flag that stops the scan: once set, [`summarize`](crate::summarize) returns
    /// `vecfmt::Error::Cancelled` within a few thousand rows, and no output is written.
    pub fn cancel(mut self, cancel: vecfmt::Cancel) -> Self {
        self.cancel = cancel;
        self
    }
    /// The image width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// The image height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// The memory budget in bytes.
    pub fn memory_budget(&self) -> u64 {
        self.memory
    }

    pub(crate) fn check_size(&self) -> Result<()> {
        let ok = (MIN_WIDTH..=MAX_SIDE).contains(&self.width) && (MIN_HEIGHT..=MAX_SIDE).contains(&self.height);
        if ok {
            Ok(())
        } else {
            Err(Error::BadSize {
                width: self.width,
                height: self.height,
                min_width: MIN_WIDTH,
                min_height: MIN_HEIGHT,
                max: MAX_SIDE,
            })
        }
    }

    pub(crate) fn check_bins(&self) -> Result<()> {
        if (1..=MAX_BINS).contains(&self.bins) {
            Ok(())
        } else {
            Err(Error::BadBins {
                bins: self.bins,
                max: MAX_BINS,
            })
        }
    }

    /// The range on `axis` of a matrix with `len` entries on it.
    pub(crate) fn resolve(&self, path: &Path, axis: Axis, len: u64) -> Result<std::ops::Range<u64>> {
        let (start, end) = match axis {
            Axis::Rows => self.rows,
            Axis::Cols => self.cols,
        };
        let explicit_end = end.is_some();
        let end = end.unwrap_or(len);
        if explicit_end || start > 0 {
            if end <= start {
                return Err(Error::EmptyRange {
                    path: path.to_path_buf(),
                    axis,
                    start,
                    end,
                });
            }
            if end > len {
                return Err(Error::RangeOutOfShape {
                    path: path.to_path_buf(),
                    axis,
                    start,
                    end,
                    len,
                });
            }
        }
        Ok(start..end)
    }

    /// Whether a zoom range was given on either axis.
    pub(crate) fn zoomed(&self) -> bool {
        self.rows != (0, None) || self.cols != (0, None)
    }
}
