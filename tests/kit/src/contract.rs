//! The contract of `vecfmt::stream`, checked on every block a source yields: a source that
//! breaks it would make a sink write a corrupt output or panic further down, so a violation
//! is a bug in the source and panics here ("stream contract violated: ..."). Shared by the
//! kit's [`drain`](crate::drain) and the whole-file reads of `vecfmt-hostile`, which fuzzers
//! drive.
//!
//! ```
//! use vecfmt::stream::{Block, MatrixHeader, RowBlock};
//! use vecfmt::{DType, ValueVec};
//! use vecfmt_testkit::contract::Contract;
//!
//! let mut c = Contract::new(&MatrixHeader::new(DType::F64, 4, 4));
//! let mut b = RowBlock::new(DType::F64);
//! b.rows.push(1);
//! b.indices.push(3);
//! b.values = ValueVec::F64(vec![0.5]);
//! b.indptr.push(1);
//! c.check(&Block::Rows(b.clone()));
//! // Row 1 again, after row 1: out of order.
//! assert!(std::panic::catch_unwind(move || c.check(&Block::Rows(b))).is_err());
//! ```

use vecfmt::stream::{Block, MatrixHeader};
use vecfmt::DType;

fn violated(what: impl std::fmt::Display) -> ! {
    panic!("stream contract violated: {what}")
}

/// What the contract remembers between blocks.
#[derive(Debug, Clone)]
pub struct Contract {
    dtype: DType,
    n_rows: u64,
    n_cols: u64,
    last_row: Option<u64>,
    saw_rows: bool,
    saw_triplets: bool,
}

impl Contract {
    /// Checks a source's header (one label per row or column, when it has labels) and starts
    /// checking its blocks.
    pub fn new(h: &MatrixHeader) -> Contract {
        for (axis, labels, n) in [("row", &h.row_labels, h.n_rows), ("column", &h.col_labels, h.n_cols)] {
            if let Some(l) = labels {
                if l.len() as u64 != n {
                    violated(format!("{} {axis} labels for {n} {axis}s", l.len()));
                }
            }
        }
        Contract {
            dtype: h.dtype,
            n_rows: h.n_rows,
            n_cols: h.n_cols,
            last_row: None,
            saw_rows: false,
            saw_triplets: false,
        }
    }

    /// Checks the next block: values of the header's dtype; lengths that agree; row blocks
    /// with rows increasing strictly within and across blocks, each row's columns increasing
    /// strictly, all within the shape; triplets within the shape; no mix of the two kinds.
    pub fn check(&mut self, block: &Block) {
        let (n_rows, n_cols) = (self.n_rows, self.n_cols);
        match block {
            Block::Rows(b) => {
                self.saw_rows = true;
                if b.values.dtype() != self.dtype {
                    violated(format!(
                        "a row block of {} from a source of {}",
                        b.values.dtype(),
                        self.dtype
                    ));
                }
                if b.indptr.len() != b.rows.len() + 1 || b.indptr[0] != 0 {
                    violated(format!("{} rows with {} indptr entries", b.rows.len(), b.indptr.len()));
                }
                let end = *b.indptr.last().expect("checked");
                if end != b.indices.len() as u64 || b.indices.len() != b.values.len() {
                    violated(format!(
                        "indptr ends at {end}, {} indices, {} values",
                        b.indices.len(),
                        b.values.len()
                    ));
                }
                for (k, &row) in b.rows.iter().enumerate() {
                    let last_row = self.last_row;
                    if row >= n_rows || last_row.is_some_and(|p| row <= p) {
                        violated(format!("row {row} after {last_row:?} in a matrix of {n_rows} rows"));
                    }
                    self.last_row = Some(row);
                    let (lo, hi) = (b.indptr[k], b.indptr[k + 1]);
                    if lo > hi || hi > end {
                        violated(format!("indptr goes from {lo} to {hi} at row {row}, of {end} entries"));
                    }
                    let mut prev: Option<u64> = None;
                    for &c in &b.indices[lo as usize..hi as usize] {
                        if c >= n_cols || prev.is_some_and(|p| c <= p) {
                            violated(format!(
                                "row {row}: column {c} after {prev:?} in a matrix of {n_cols} columns"
                            ));
                        }
                        prev = Some(c);
                    }
                }
            }
            Block::Triplets(t) => {
                self.saw_triplets = true;
                if t.values.dtype() != self.dtype {
                    violated(format!(
                        "a triplet block of {} from a source of {}",
                        t.values.dtype(),
                        self.dtype
                    ));
                }
                if t.rows.len() != t.cols.len() || t.rows.len() != t.values.len() {
                    violated(format!(
                        "{} rows, {} cols, {} values",
                        t.rows.len(),
                        t.cols.len(),
                        t.values.len()
                    ));
                }
                for (&r, &c) in t.rows.iter().zip(&t.cols) {
                    if r >= n_rows || c >= n_cols {
                        violated(format!("entry ({r}, {c}) outside the shape ({n_rows}, {n_cols})"));
                    }
                }
            }
        }
        if self.saw_rows && self.saw_triplets {
            violated("row blocks mixed with triplet blocks");
        }
    }

    /// Whether the source has yielded row blocks (true until it yields triplets).
    pub fn rows_mode(&self) -> bool {
        !self.saw_triplets
    }
}
