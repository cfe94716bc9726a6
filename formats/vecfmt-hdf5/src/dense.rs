//! Dense 2-D datasets: PyTables `Array`/`CArray`/`EArray`, h5py datasets, anndata dense
//! `X`, and the value blocks of pandas frames (stored transposed).
//!
//! Reading goes a slab of whole HDF5 chunks at a time (so each chunk is decompressed once)
//! and drops zeros. Writing fills a chunk-aligned slab of rows and writes it when the rows
//! move past it; slabs that are all zero are never written, as the fill value is zero.

use std::path::{Path, PathBuf};

use hdf5::{Dataset, H5Type};
use vecfmt::stream::{Block, MatrixHeader, MatrixSink, MatrixSource, RowBlock};
use vecfmt::{DType, Element, Result, ValueVec};

use crate::output::TempOutput;
use crate::raw;
use crate::values::{self, IsZero};
use crate::{value_dtype, write_err, Error, ReadOptions, WriteOptions};

/// The most a band of chunks may take for it to be read whole past the block size.
const MAX_BAND: u64 = 64 << 20;

/// Reads a dense 2-D dataset as row blocks.
pub(crate) struct DenseSource {
    path: PathBuf,
    dpath: String,
    ds: Dataset,
    header: MatrixHeader,
    /// The matrix is the transpose of what is stored (pandas blocks without `transposed`).
    transposed: bool,
    next: u64,
    slab_rows: u64,
    read: u64,
}

impl std::fmt::Debug for DenseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenseSource")
            .field("path", &self.path)
            .field("dataset", &self.dpath)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl DenseSource {
    /// Opens the 2-D dataset `ds` at `dpath`; the matrix is `ds` (or its transpose).
    pub(crate) fn open(path: &Path, ds: Dataset, dpath: &str, transposed: bool, opts: &ReadOptions) -> Result<Self> {
        let shape = ds.shape();
        if shape.len() != 2 {
            return Err(Error::NotTwoD {
                path: path.to_path_buf(),
                object: dpath.to_string(),
                ndim: shape.len(),
            }
            .into());
        }
        crate::sparse::check_filters(path, dpath, &ds)?;
        let class = raw::dataset_type(&ds);
        let (dtype, widened) = value_dtype(class).ok_or_else(|| Error::UnsupportedDtype {
            path: path.to_path_buf(),
            object: dpath.to_string(),
            stored: crate::find::unsupported_dtype(class),
        })?;
        if widened {
            (opts.notify)(&format!("{dpath} is {}; read as {dtype}", class.describe()));
        }
        let (n_rows, n_cols) = if transposed {
            (shape[1], shape[0])
        } else {
            (shape[0], shape[1])
        };
        // The shape comes from the file: a few bytes of chunked dataset can declare 2^40 ×
        // 2^40 elements (found by the hostile-input review: an 8 TiB row allocation, and a
        // product that wrapped to zero and divided by it). Dense input is read a row at a
        // time and every element is visited, so both must be possible.
        let total = (n_rows as u128) * (n_cols as u128) * dtype.size() as u128;
        let row_bytes = (n_cols.max(1) as u64).saturating_mul(dtype.size() as u64);
        if total > u64::MAX as u128 || row_bytes > MAX_DENSE_ROW {
            return Err(Error::DenseInputTooLarge {
                path: path.to_path_buf(),
                object: dpath.to_string(),
                n_rows,
                n_cols,
                dtype,
                bytes: total,
                row_bytes,
                max_row_bytes: MAX_DENSE_ROW,
            }
            .into());
        }
        let budget_rows = (opts.block_bytes as u64 / row_bytes).max(1);
        // Whole bands of chunks along the row axis, so each chunk is decompressed once: as
        // many as fit the block, and one band even past it (HDF5 holds a whole chunk in
        // memory to read any of it), unless a band is huge (chunks across very wide rows).
        let chunk_rows = ds
            .chunk()
            .map(|c| if transposed { c[1] } else { c[0] } as u64)
            .unwrap_or(1)
            .max(1);
        let slab_rows = if chunk_rows <= budget_rows {
            budget_rows / chunk_rows * chunk_rows
        } else if chunk_rows * row_bytes <= MAX_BAND {
            chunk_rows
        } else {
            budget_rows
        };
        Ok(DenseSource {
            path: path.to_path_buf(),
            dpath: dpath.to_string(),
            ds,
            header: MatrixHeader::new(dtype, n_rows as u64, n_cols as u64),
            transposed,
            next: 0,
            slab_rows,
            read: 0,
        })
    }

    pub(crate) fn header_mut(&mut self) -> &mut MatrixHeader {
        &mut self.header
    }

    fn slab(&mut self) -> Result<Option<Block>> {
        let n_rows = self.header.n_rows;
        if self.next >= n_rows {
            return Ok(None);
        }
        let r0 = self.next;
        let r1 = (r0 + self.slab_rows).min(n_rows);
        self.next = r1;
        let n_cols = self.header.n_cols as usize;
        let (rows, cols) = (r0 as usize..r1 as usize, 0..n_cols);
        let res = if self.transposed {
            values::read_2d(&self.ds, cols, rows, self.header.dtype)
        } else {
            values::read_2d(&self.ds, rows, cols, self.header.dtype)
        };
        let vals = res.map_err(|source| Error::ReadRows {
            path: self.path.clone(),
            object: self.dpath.clone(),
            start: r0,
            end: r1,
            source,
        })?;
        self.read += (r1 - r0) * (n_cols * self.header.dtype.size()) as u64;
        let block = vecfmt::with_value_vec!(&vals, v => nonzeros(v, r0, (r1 - r0) as usize, n_cols, self.transposed));
        Ok(Some(Block::Rows(block)))
    }
}

/// The nonzeros of a dense slab of `k` rows starting at row `r0`: `v` is `k × n_cols`
/// row-major, or `n_cols × k` row-major when `transposed`.
fn nonzeros<T: Element + IsZero>(v: &[T], r0: u64, k: usize, n_cols: usize, transposed: bool) -> RowBlock {
    let mut block = RowBlock::new(T::DTYPE);
    let mut out: Vec<T> = Vec::new();
    for i in 0..k {
        let start = block.indices.len();
        if transposed {
            for c in 0..n_cols {
                let x = v[c * k + i];
                if !x.is_zero() {
                    block.indices.push(c as u64);
                    out.push(x);
                }
            }
        } else {
            for (c, &x) in v[i * n_cols..(i + 1) * n_cols].iter().enumerate() {
                if !x.is_zero() {
                    block.indices.push(c as u64);
                    out.push(x);
                }
            }
        }
        if block.indices.len() > start {
            block.rows.push(r0 + i as u64);
            block.indptr.push(block.indices.len() as u64);
        }
    }
    block.values = T::into_vec(out);
    block
}

impl crate::source::Source for DenseSource {
    fn header_mut(&mut self) -> &mut MatrixHeader {
        &mut self.header
    }
}

impl MatrixSource for DenseSource {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }
    fn next_block(&mut self) -> Result<Option<Block>> {
        self.slab()
    }
    fn total_bytes(&self) -> Option<u64> {
        Some(
            self.header
                .n_rows
                .saturating_mul(self.header.n_cols)
                .saturating_mul(self.header.dtype.size() as u64),
        )
    }
    fn bytes_read(&self) -> u64 {
        self.read
    }
}

/// Largest row of a dense input: 1 GiB (134 M float64 columns).
const MAX_DENSE_ROW: u64 = 1 << 30;

/// Bytes per chunk of the dense datasets we write.
const CHUNK_BYTES: usize = 1 << 20;
/// Bytes of rows held before they are written.
const SLAB_BYTES: usize = 16 << 20;

/// Checks the size guard of a dense output.
pub(crate) fn check_dense_size(out: &Path, header: &MatrixHeader, opts: &WriteOptions) -> Result<()> {
    let bytes = (header.n_rows as u128) * (header.n_cols as u128) * header.dtype.size() as u128;
    if bytes > opts.dense_limit as u128 && !opts.force {
        return Err(Error::DenseOutputTooLarge {
            path: out.to_path_buf(),
            n_rows: header.n_rows,
            n_cols: header.n_cols,
            dtype: header.dtype,
            bytes,
            limit: opts.dense_limit,
        }
        .into());
    }
    Ok(())
}

/// The chunk shape of a dense dataset: about 1 MiB, whole rows when they fit.
fn chunk_shape(n_rows: usize, n_cols: usize, size: usize) -> (usize, usize) {
    let row = n_cols * size;
    if row <= CHUNK_BYTES {
        ((CHUNK_BYTES / row.max(1)).clamp(1, n_rows.max(1)), n_cols.max(1))
    } else {
        (1, (CHUNK_BYTES / size).max(1))
    }
}

/// Creates a chunked, compressed 2-D dataset of `dtype`.
pub(crate) fn create_2d(
    group: &hdf5::Group,
    name: &str,
    dtype: DType,
    n_rows: usize,
    n_cols: usize,
    deflate: u8,
) -> hdf5::Result<Dataset> {
    fn make<T: H5Type>(
        g: &hdf5::Group,
        name: &str,
        shape: (usize, usize),
        chunk: (usize, usize),
        deflate: u8,
    ) -> hdf5::Result<Dataset> {
        let b = g.new_dataset::<T>();
        if shape.0 == 0 || shape.1 == 0 {
            return b.shape(shape).create(name);
        }
        let b = b.chunk(chunk).shape(shape);
        if deflate > 0 {
            b.shuffle().deflate(deflate).create(name)
        } else {
            b.create(name)
        }
    }
    let chunk = chunk_shape(n_rows, n_cols, dtype.size());
    let shape = (n_rows, n_cols);
    match dtype {
        DType::F32 => make::<f32>(group, name, shape, chunk, deflate),
        DType::F64 => make::<f64>(group, name, shape, chunk, deflate),
        DType::I32 => make::<i32>(group, name, shape, chunk, deflate),
        DType::I64 => make::<i64>(group, name, shape, chunk, deflate),
        DType::U32 => make::<u32>(group, name, shape, chunk, deflate),
        DType::U64 => make::<u64>(group, name, shape, chunk, deflate),
    }
}

/// Writes a dense 2-D dataset that PyTables opens as a `CArray` (and h5py as a dataset).
pub(crate) struct DenseSink {
    out: TempOutput,
    ds: Dataset,
    file: hdf5::File,
    n_rows: u64,
    n_cols: usize,
    slab: ValueVec,
    slab_rows: u64,
    slab_start: u64,
    dirty: bool,
}

impl std::fmt::Debug for DenseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DenseSink")
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

/// Splits `/a/b/name` into the parent group (created as needed) and the name.
pub(crate) fn parent_and_name(file: &hdf5::File, out: &Path, path: &str) -> Result<(hdf5::Group, String)> {
    let path = path.trim_matches('/');
    if path.is_empty() {
        return Err(Error::EmptyDatasetPath {
            path: out.to_path_buf(),
        }
        .into());
    }
    let mut group: hdf5::Group = (**file).clone();
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let name = parts.pop().expect("a non-empty path has a last part").to_string();
    let mut at = String::new();
    for p in parts {
        at.push('/');
        at.push_str(p);
        group = if raw::exists(&group, p) {
            group.group(p).map_err(write_err(out, "open the group", &at))?
        } else {
            group.create_group(p).map_err(write_err(out, "create the group", &at))?
        };
    }
    Ok((group, name))
}

/// Writes labels next to a dense dataset as fixed-length UTF-8 string arrays PyTables and
/// h5py read: `<name>_row_labels`, `<name>_col_labels`.
pub(crate) fn write_label_arrays(out: &Path, group: &hdf5::Group, name: &str, header: &MatrixHeader) -> Result<()> {
    for (suffix, labels) in [("row_labels", &header.row_labels), ("col_labels", &header.col_labels)] {
        if let Some(l) = labels {
            let object = format!("{}/{name}_{suffix}", group.name().trim_end_matches('/'));
            let ds = raw::write_fixed_strings(group, &format!("{name}_{suffix}"), l).map_err(write_err(
                out,
                "write the labels",
                &object,
            ))?;
            for (k, v) in [
                ("CLASS", "ARRAY"),
                ("VERSION", "2.4"),
                ("TITLE", ""),
                ("FLAVOR", "numpy"),
            ] {
                raw::write_fixed_attr(&ds, k, v).map_err(write_err(out, "write an attribute of", &object))?;
            }
        }
    }
    Ok(())
}

impl DenseSink {
    /// Creates the output; refuses past the size limit unless forced.
    pub(crate) fn create(out_path: &Path, header: &MatrixHeader, opts: &WriteOptions) -> Result<Self> {
        check_dense_size(out_path, header, opts)?;
        let (n_rows, n_cols) = (header.n_rows as usize, header.n_cols as usize);
        let (out, file) = TempOutput::create(out_path)?;
        let (group, name) = parent_and_name(&file, out_path, opts.dataset.as_deref().unwrap_or("/matrix"))?;
        let object = format!("{}/{name}", group.name().trim_end_matches('/'));
        let ds = create_2d(&group, &name, header.dtype, n_rows, n_cols, opts.deflate).map_err(write_err(
            out_path,
            "create the dense dataset",
            &object,
        ))?;
        for (k, v) in [("CLASS", "CARRAY"), ("VERSION", "1.1"), ("TITLE", "")] {
            raw::write_fixed_attr(&ds, k, v).map_err(write_err(out_path, "write an attribute of", &object))?;
        }
        write_label_arrays(out_path, &group, &name, header)?;
        let (chunk_rows, _) = chunk_shape(n_rows, n_cols, header.dtype.size());
        let row_bytes = (n_cols * header.dtype.size()).max(1);
        let slab_rows = ((SLAB_BYTES / row_bytes / chunk_rows).max(1) * chunk_rows).min(n_rows.max(1)) as u64;
        Ok(DenseSink {
            out,
            ds,
            file,
            n_rows: header.n_rows,
            n_cols,
            slab: ValueVec::new(header.dtype),
            slab_rows,
            slab_start: 0,
            dirty: false,
        })
    }

    fn flush(&mut self) -> Result<()> {
        if self.dirty {
            let rows = self.slab_rows.min(self.n_rows - self.slab_start) as usize;
            let v = self.slab.as_values().slice(0..rows * self.n_cols);
            let ds = &self.ds;
            values::write_2d(ds, self.slab_start as usize, self.n_cols, v)
                .map_err(|e| write_err(self.out.dest(), "write the dense dataset", &ds.name())(e))?;
            self.dirty = false;
        }
        Ok(())
    }
}

impl MatrixSink for DenseSink {
    fn write_rows(&mut self, b: &RowBlock) -> Result<()> {
        let dtype = self.slab.dtype();
        for (k, &r) in b.rows.iter().enumerate() {
            if r >= self.n_rows {
                return Err(vecfmt::Error::RowOutOfRange {
                    row: r,
                    n_rows: self.n_rows,
                });
            }
            if r >= self.slab_start + self.slab_rows || self.slab.is_empty() {
                self.flush()?;
                self.slab_start = r / self.slab_rows * self.slab_rows;
                self.slab = zeroed(dtype, self.slab_rows as usize * self.n_cols);
            }
            let base = (r - self.slab_start) as usize * self.n_cols;
            let (s, e) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
            let vals = b.values.as_values();
            let n_cols = self.n_cols;
            vecfmt::with_value_vec!(&mut self.slab, slab => scatter(&mut slab[base..base + n_cols], &b.indices[s..e], vals.slice(s..e), r))?;
            self.dirty = true;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.flush()?;
        let DenseSink { out, ds, file, .. } = *self;
        drop(ds);
        out.commit(file)
    }
}

/// Puts one row's entries into its dense row.
fn scatter<T: Element>(row: &mut [T], idx: &[u64], vals: vecfmt::Values<'_>, r: u64) -> Result<()> {
    let src = T::slice(&vals).ok_or(vecfmt::Error::DTypeMismatch {
        actual: T::DTYPE,
        requested: vals.dtype(),
    })?;
    let n_cols = row.len() as u64;
    for (&c, &x) in idx.iter().zip(src) {
        let slot = row
            .get_mut(c as usize)
            .ok_or(vecfmt::Error::ColOutOfRange { row: r, col: c, n_cols })?;
        *slot = x;
    }
    Ok(())
}

fn zeroed(dtype: DType, n: usize) -> ValueVec {
    match dtype {
        DType::F32 => ValueVec::F32(vec![0.0; n]),
        DType::F64 => ValueVec::F64(vec![0.0; n]),
        DType::I32 => ValueVec::I32(vec![0; n]),
        DType::I64 => ValueVec::I64(vec![0; n]),
        DType::U32 => ValueVec::U32(vec![0; n]),
        DType::U64 => ValueVec::U64(vec![0; n]),
    }
}
