//! [`Assembler`]: triplets that arrive sorted by row, gathered into row blocks.

use vecfmt::stream::{RowBlock, TripletBlock};
use vecfmt::{with_value_vec, DType, Element, Error, Result, ValueVec};

/// Gathers triplets sorted by row into row blocks: each row's entries sorted by column,
/// duplicates summed.
#[derive(Debug)]
pub(super) struct Assembler {
    row: Option<u64>,
    cols: Vec<u64>,
    vals: ValueVec,
    pub(super) block: RowBlock,
}

impl Assembler {
    pub(super) fn new(dtype: DType) -> Self {
        Assembler {
            row: None,
            cols: Vec::new(),
            vals: ValueVec::new(dtype),
            block: RowBlock::new(dtype),
        }
    }

    pub(super) fn take(&mut self) -> RowBlock {
        std::mem::replace(&mut self.block, RowBlock::new(self.vals.dtype()))
    }

    pub(super) fn push(&mut self, t: &TripletBlock) -> Result<()> {
        let n = t.rows.len();
        let mut s = 0;
        while s < n {
            let r = t.rows[s];
            let mut e = s + 1;
            while e < n && t.rows[e] == r {
                e += 1;
            }
            if self.row != Some(r) {
                if let Some(prev) = self.row {
                    if r < prev {
                        return Err(Error::RowOrder { row: r, previous: prev });
                    }
                    self.finish_row()?;
                }
                self.row = Some(r);
            }
            self.cols.extend_from_slice(&t.cols[s..e]);
            self.vals.extend_from(t.values.as_values().slice(s..e))?;
            s = e;
        }
        Ok(())
    }

    /// Moves the current row into the block.
    pub(super) fn finish_row(&mut self) -> Result<()> {
        let Some(r) = self.row.take() else { return Ok(()) };
        let sorted = self.cols.windows(2).all(|w| w[0] < w[1]);
        if sorted {
            self.block.indices.extend_from_slice(&self.cols);
            self.block.values.extend_from(self.vals.as_values())?;
        } else {
            let mut order: Vec<usize> = (0..self.cols.len()).collect();
            order.sort_by_key(|&k| self.cols[k]);
            let cols = &self.cols;
            with_value_vec!(&self.vals, v => {
                let mut out_c: Vec<u64> = Vec::with_capacity(order.len());
                let mut out_v = Vec::with_capacity(order.len());
                for &k in &order {
                    if out_c.last() == Some(&cols[k]) {
                        let x = out_v.last_mut().expect("a previous value exists");
                        *x = Element::checked_add(*x, v[k]).ok_or(Error::Overflow { row: r, col: cols[k] })?;
                    } else {
                        out_c.push(cols[k]);
                        out_v.push(v[k]);
                    }
                }
                self.block.indices.extend_from_slice(&out_c);
                self.block.values.extend_from(ValueVec::from(out_v).as_values())?;
            });
        }
        self.block.rows.push(r);
        self.block.indptr.push(self.block.indices.len() as u64);
        self.cols.clear();
        self.vals.clear();
        Ok(())
    }
}
