//! The HDF5 outputs: a CSR or CSC group (anndata + h5sparse attributes), a `.h5ad` file, a
//! PyTables CArray, or a pandas COO frame.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use vecfmt::stream::{MatrixHeader, MatrixSink, RowBlock};
use vecfmt::{Codec, Element, Matrix, MatrixWriter, Result, ValueVec, Values, WriterOptions};

use crate::dense::{parent_and_name, DenseSink};
use crate::frame::FrameSink;
use crate::h5ad;
use crate::output::TempOutput;
use crate::sparse::CompressedWriter;
use crate::{write_err, Error, WriteOptions};

/// The layout of an HDF5 output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A CSR group (`data`, `indices`, `indptr`) with anndata and h5sparse attributes.
    Csr,
    /// A CSC group, likewise.
    Csc,
    /// A dense 2-D dataset PyTables opens as a `CArray`.
    Dense,
    /// A long (row, col, value) pandas frame in `format="fixed"`.
    Pandas,
}

impl Layout {
    /// The names `--layout` takes.
    pub const NAMES: &'static str = "csr, csc, dense, pandas";

    /// The layout of a name.
    pub fn parse(name: &str) -> Option<Layout> {
        Some(match name.to_ascii_lowercase().as_str() {
            "csr" => Layout::Csr,
            "csc" => Layout::Csc,
            "dense" | "carray" => Layout::Dense,
            "pandas" | "frame" | "coo-frame" => Layout::Pandas,
            _ => return None,
        })
    }
}

/// An HDF5 output; rows go in through [`MatrixSink::write_rows`], and the file appears at
/// its path only after [`MatrixSink::finish`].
pub struct Hdf5Sink {
    inner: Box<dyn MatrixSink>,
}

impl std::fmt::Debug for Hdf5Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hdf5Sink").finish_non_exhaustive()
    }
}

impl Hdf5Sink {
    /// Creates a `.h5` output in `opts.layout`, at `opts.dataset` (default `/matrix`).
    pub fn create(path: impl AsRef<Path>, header: &MatrixHeader, opts: &WriteOptions) -> Result<Self> {
        let path = path.as_ref();
        let inner: Box<dyn MatrixSink> = match opts.layout {
            Layout::Csr | Layout::Csc => Box::new(SparseSink::create(path, header, opts, false)?),
            Layout::Dense => Box::new(DenseSink::create(path, header, opts)?),
            Layout::Pandas => Box::new(FrameSink::create(path, header, opts)?),
        };
        Ok(Hdf5Sink { inner })
    }

    /// Creates a `.h5ad` output: `X` as CSR (or CSC with [`Layout::Csc`]) plus `obs`/`var`.
    pub fn create_h5ad(path: impl AsRef<Path>, header: &MatrixHeader, opts: &WriteOptions) -> Result<Self> {
        let path = path.as_ref();
        match opts.layout {
            Layout::Csr | Layout::Csc => Ok(Hdf5Sink {
                inner: Box::new(SparseSink::create(path, header, opts, true)?),
            }),
            layout => Err(Error::H5adLayout {
                path: path.to_path_buf(),
                layout,
            }
            .into()),
        }
    }
}

impl MatrixSink for Hdf5Sink {
    fn write_rows(&mut self, block: &RowBlock) -> Result<()> {
        self.inner.write_rows(block)
    }
    fn finish(self: Box<Self>) -> Result<()> {
        self.inner.finish()
    }
}

static SPOOL: AtomicU64 = AtomicU64::new(0);

/// A `.vfm` spool of the rows of a CSC output, removed when done.
struct Spool {
    path: PathBuf,
    writer: Option<MatrixWriter>,
}

impl Drop for Spool {
    fn drop(&mut self) {
        drop(self.writer.take());
        let _ = std::fs::remove_file(&self.path);
    }
}

enum Mode {
    Csr(Box<CompressedWriter>),
    Csc(Box<Spool>),
}

/// A CSR or CSC group in a `.h5` file, or `X` of a `.h5ad` file.
struct SparseSink {
    out: TempOutput,
    file: hdf5::File,
    group_path: String,
    header: MatrixHeader,
    h5ad: bool,
    deflate: u8,
    memory: u64,
    notify: crate::Notify,
    mode: Option<Mode>,
}

impl SparseSink {
    fn create(path: &Path, header: &MatrixHeader, opts: &WriteOptions, h5ad: bool) -> Result<Self> {
        let (out, file) = TempOutput::create(path)?;
        let group_path = if h5ad {
            "/X".to_string()
        } else {
            opts.dataset.clone().unwrap_or_else(|| "/matrix".into())
        };
        if h5ad {
            h5ad::write_skeleton(path, &file, header, opts.deflate)?;
        }
        let mode = if opts.layout == Layout::Csc {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let spool_path = dir.join(format!(
                ".{name}.vecfmt-spool-{}-{}.vfm",
                std::process::id(),
                SPOOL.fetch_add(1, Ordering::Relaxed)
            ));
            let wopts = WriterOptions::new(header.dtype, header.n_cols)
                .n_rows(header.n_rows)
                .codec(Codec::Lz4);
            let writer = MatrixWriter::create(&spool_path, wopts)?;
            Mode::Csc(Box::new(Spool {
                path: spool_path,
                writer: Some(writer),
            }))
        } else {
            let (parent, name) = parent_and_name(&file, path, &group_path)?;
            let g = parent
                .create_group(&name)
                .map_err(write_err(path, "create the group", &group_path))?;
            Mode::Csr(Box::new(CompressedWriter::create(
                path,
                g,
                header.dtype,
                header.n_rows,
                header.n_cols,
                opts.deflate,
            )?))
        };
        Ok(SparseSink {
            out,
            file,
            group_path,
            header: header.clone(),
            h5ad,
            deflate: opts.deflate,
            memory: opts.memory,
            notify: opts.notify.clone(),
            mode: Some(mode),
        })
    }

    /// The attributes of the group, once its datasets are complete.
    fn attributes(&self, g: &hdf5::Group, csc: bool) -> Result<()> {
        let out = self.out.dest();
        let shape = [self.header.n_rows as i64, self.header.n_cols as i64];
        h5ad::str_attr(out, g, "encoding-type", if csc { "csc_matrix" } else { "csr_matrix" })?;
        h5ad::str_attr(out, g, "encoding-version", "0.1.0")?;
        h5ad::ints_attr(out, g, "shape", &shape)?;
        if !self.h5ad {
            h5ad::str_attr(out, g, "h5sparse_format", if csc { "csc" } else { "csr" })?;
            h5ad::ints_attr(out, g, "h5sparse_shape", &shape)?;
            for (name, labels) in [
                ("row_labels", &self.header.row_labels),
                ("col_labels", &self.header.col_labels),
            ] {
                if let Some(l) = labels {
                    h5ad::write_strings(out, g, name, l.len(), |k| l[k].clone())?;
                }
            }
        }
        Ok(())
    }

    /// Transposes the spooled rows into the CSC group, a column range per pass.
    fn write_csc(&self, spool: &Path) -> Result<hdf5::Group> {
        let out = self.out.dest();
        let m = Matrix::open(spool)?;
        let (n_rows, n_cols) = (self.header.n_rows, self.header.n_cols);
        let counts_bytes = (n_cols + 1).saturating_mul(8);
        if counts_bytes > self.memory {
            return Err(vecfmt::Error::OverBudget {
                what: "CSC output (one counter per column)",
                needed: counts_bytes,
                budget: self.memory,
            });
        }
        let mut ptr = vec![0u64; n_cols as usize + 1];
        for c in 0..m.chunks().len() {
            let chunk = m.chunk_uncached(c)?;
            for row in chunk.rows() {
                for j in row.indices().iter() {
                    ptr[j as usize + 1] += 1;
                }
            }
        }
        for j in 0..n_cols as usize {
            ptr[j + 1] += ptr[j];
        }
        let (parent, name) = parent_and_name(&self.file, out, &self.group_path)?;
        let g = parent
            .create_group(&name)
            .map_err(write_err(out, "create the group", &self.group_path))?;
        let mut w = CompressedWriter::create(out, g, self.header.dtype, n_cols, n_rows, self.deflate)?;
        // Memory: the column starts (8 bytes a column) and, per pass, the rows and values of
        // the pass's columns; half the rest of the budget is left for HDF5 and the writer.
        let entry = 8 + self.header.dtype.size() as u64;
        let cap = (self.memory.saturating_sub(counts_bytes) / 2 / entry).max(1);
        let mut passes = 0;
        let mut rows: Vec<u64> = Vec::new();
        let mut vals = ValueVec::new(self.header.dtype);
        let mut c0 = 0usize;
        while c0 < n_cols as usize {
            // `ptr[c]` is the start of column c for c >= c0; the pass advances it to the end.
            let base = ptr[c0];
            let mut c1 = c0 + 1;
            while c1 < n_cols as usize && ptr[c1 + 1] - base <= cap {
                c1 += 1;
            }
            passes += 1;
            let e = (ptr[c1] - base) as usize;
            rows.clear();
            rows.resize(e, 0);
            vecfmt::with_value_vec!(&mut vals, v => { v.clear(); v.resize(e, Default::default()) });
            for c in 0..m.chunks().len() {
                let chunk = m.chunk_uncached(c)?;
                for row in chunk.rows() {
                    let idx = row.indices();
                    let start = idx.binary_search(c0 as u64).unwrap_or_else(|x| x);
                    let cursor = &mut ptr[c0..c1];
                    vecfmt::with_value_vec!(&mut vals, v => gather(v, &mut rows, cursor, base, row.id(), idx, row.values(), start, c0))?;
                }
            }
            for j in c0..c1 {
                let s = if j == c0 { base } else { ptr[j - 1] } - base;
                let t = ptr[j] - base;
                if s < t {
                    w.push(
                        out,
                        j as u64,
                        &rows[s as usize..t as usize],
                        vals.as_values().slice(s as usize..t as usize),
                    )?;
                }
            }
            c0 = c1;
        }
        if passes > 1 {
            (self.notify)(&format!(
                "CSC output took {passes} passes over the spooled rows (a larger memory budget takes fewer)"
            ));
        }
        w.finish(out)
    }
}

/// Places the entries of one row whose columns fall in `c0..c0 + cursor.len()` at their
/// columns' cursors (offsets from `base`), advancing them.
#[allow(clippy::too_many_arguments)]
fn gather<T: Element>(
    vals: &mut [T],
    rows: &mut [u64],
    cursor: &mut [u64],
    base: u64,
    r: u64,
    idx: vecfmt::Indices<'_>,
    values: Values<'_>,
    start: usize,
    c0: usize,
) -> Result<()> {
    let src = T::slice(&values).ok_or(vecfmt::Error::DTypeMismatch {
        actual: T::DTYPE,
        requested: values.dtype(),
    })?;
    let c1 = c0 + cursor.len();
    for (k, &x) in src.iter().enumerate().skip(start) {
        let c = idx.get(k) as usize;
        if c >= c1 {
            break;
        }
        let slot = &mut cursor[c - c0];
        let at = (*slot - base) as usize;
        rows[at] = r;
        vals[at] = x;
        *slot += 1;
    }
    Ok(())
}

impl MatrixSink for SparseSink {
    fn write_rows(&mut self, b: &RowBlock) -> Result<()> {
        let out = self.out.dest().to_path_buf();
        match self.mode.as_mut().expect("mode is set until finish") {
            Mode::Csr(w) => {
                for (k, &r) in b.rows.iter().enumerate() {
                    let (s, e) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
                    if let Some(&c) = b.indices[s..e].iter().find(|&&c| c >= self.header.n_cols) {
                        return Err(vecfmt::Error::ColOutOfRange {
                            row: r,
                            col: c,
                            n_cols: self.header.n_cols,
                        });
                    }
                    w.push(&out, r, &b.indices[s..e], b.values.as_values().slice(s..e))?;
                }
                Ok(())
            }
            Mode::Csc(spool) => {
                let w = spool.writer.as_mut().expect("the spool is open until finish");
                for (k, &r) in b.rows.iter().enumerate() {
                    let (s, e) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
                    vecfmt::with_values!(b.values.as_values().slice(s..e), v => w.push_row(r, &b.indices[s..e], v))?;
                }
                Ok(())
            }
        }
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let group = match self.mode.take().expect("mode is set until finish") {
            Mode::Csr(w) => {
                let g = w.finish(self.out.dest())?;
                self.attributes(&g, false)?;
                g
            }
            Mode::Csc(mut spool) => {
                spool.writer.take().expect("the spool is open").finish()?;
                let g = self.write_csc(&spool.path)?;
                self.attributes(&g, true)?;
                drop(spool);
                g
            }
        };
        drop(group);
        let SparseSink { out, file, .. } = *self;
        out.commit(file)
    }
}
