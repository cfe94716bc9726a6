//! pandas `DataFrame.to_hdf(format="fixed")` frames.
//!
//! pandas stores a frame as a group (`pandas_type` = `frame`) with the columns in `axis0`,
//! the index in `axis1`, and one `block{i}_values` array per dtype, stored transposed
//! (rows × columns of that block) with the block's column names in `block{i}_items`.
//!
//! - A frame whose columns are `row`, `col`, `value` (or `i`/`j`/`v`, `row`/`col`/`data`)
//!   is read as COO triplets: this is what [`FrameSink`] writes.
//! - Any other all-numeric frame of one dtype is read as a wide dense matrix: the index
//!   gives the row labels and the columns the column labels.

use std::path::{Path, PathBuf};

use hdf5::{Dataset, Group};
use vecfmt::stream::{Block, MatrixHeader, MatrixSink, MatrixSource, RowBlock, TripletBlock};
use vecfmt::{DType, Result, ValueVec};

use crate::dense::{parent_and_name, DenseSource};
use crate::h5ad::attr_path;
use crate::output::TempOutput;
use crate::raw::{self, TypeClass};
use crate::values;
use crate::{read_err, value_dtype, write_err, Error, ReadOptions, WriteOptions};

/// The values of a pandas index (`axis0`, `axis1`, `block{i}_items`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IndexValues {
    Strings(Vec<String>),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
}

impl IndexValues {
    fn len(&self) -> usize {
        match self {
            IndexValues::Strings(v) => v.len(),
            IndexValues::Ints(v) => v.len(),
            IndexValues::Floats(v) => v.len(),
        }
    }
    fn names(&self) -> Vec<String> {
        match self {
            IndexValues::Strings(v) => v.clone(),
            IndexValues::Ints(v) => v.iter().map(|x| x.to_string()).collect(),
            IndexValues::Floats(v) => v.iter().map(|x| x.to_string()).collect(),
        }
    }
    /// Labels, or `None` for a default `RangeIndex` (0, 1, ..., n-1).
    fn labels(&self) -> Option<Vec<String>> {
        match self {
            IndexValues::Ints(v) if v.iter().enumerate().all(|(k, &x)| x == k as i64) => None,
            _ => Some(self.names()),
        }
    }
}

/// Reads the index stored under `key` of a pandas group.
fn read_index(path: &Path, g: &Group, gpath: &str, key: &str) -> Result<IndexValues> {
    let variety = raw::attr_string(g, &format!("{key}_variety")).unwrap_or_else(|| "regular".into());
    if variety != "regular" {
        return Err(Error::FrameMultiIndex {
            path: path.to_path_buf(),
            object: gpath.to_string(),
            key: key.to_string(),
            variety,
        }
        .into());
    }
    let object = format!("{gpath}/{key}");
    let ds = g.dataset(key).map_err(read_err(path, &object))?;
    let kind = raw::attr_string(&ds, "kind").unwrap_or_default();
    let class = raw::dataset_type(&ds);
    Ok(match class {
        c if c.is_string() => match raw::read_strings(&ds, false) {
            Ok(v) => IndexValues::Strings(v),
            Err(problem) => {
                return Err(Error::Strings {
                    path: path.to_path_buf(),
                    object,
                    problem,
                }
                .into())
            }
        },
        TypeClass::Int(_) | TypeClass::Uint(_) if kind == "integer" || kind.is_empty() => {
            IndexValues::Ints(ds.read_raw::<i64>().map_err(read_err(path, &object))?)
        }
        TypeClass::Float(_) => IndexValues::Floats(ds.read_raw::<f64>().map_err(read_err(path, &object))?),
        _ => {
            return Err(Error::FrameIndexKind {
                path: path.to_path_buf(),
                object,
                kind,
                stored: class.describe(),
            }
            .into())
        }
    })
}

/// One block of a frame: its values dataset and the frame columns it holds.
struct FrameBlock {
    values: Dataset,
    /// `transposed` as pandas stores it: the dataset is rows × items.
    row_major: bool,
    /// Position in `axis0` of each item.
    columns: Vec<usize>,
    class: TypeClass,
}

fn read_blocks(path: &Path, g: &Group, gpath: &str, columns: &IndexValues) -> Result<Vec<FrameBlock>> {
    let nblocks = raw::attr_ints(g, "nblocks")
        .and_then(|v| v.first().copied())
        .unwrap_or(0);
    if raw::attr_ints(g, "ndim").and_then(|v| v.first().copied()) != Some(2) {
        return Err(Error::FrameNotTwoD {
            path: path.to_path_buf(),
            object: gpath.to_string(),
        }
        .into());
    }
    let names = columns.names();
    let mut blocks = Vec::new();
    for i in 0..nblocks.max(0) {
        let items = read_index(path, g, gpath, &format!("block{i}_items"))?.names();
        let key = format!("block{i}_values");
        let object = format!("{gpath}/{key}");
        let values = g.dataset(&key).map_err(read_err(path, &object))?;
        let class = raw::dataset_type(&values);
        if raw::attr_ints(&values, "transposed").is_none() && values.ndim() != 2 {
            return Err(Error::FrameBlockNotTwoD {
                path: path.to_path_buf(),
                object,
            }
            .into());
        }
        let row_major = raw::attr_ints(&values, "transposed").is_none_or(|v| v.first() != Some(&0));
        let mut cols = Vec::with_capacity(items.len());
        for it in &items {
            let pos = names
                .iter()
                .position(|n| n == it)
                .ok_or_else(|| Error::FrameUnknownColumn {
                    path: path.to_path_buf(),
                    object: format!("{gpath}/block{i}_items"),
                    column: it.clone(),
                })?;
            cols.push(pos);
        }
        blocks.push(FrameBlock {
            values,
            row_major,
            columns: cols,
            class,
        });
    }
    Ok(blocks)
}

/// The names of COO columns vecfmt recognises, in (row, col, value) order.
const COO_NAMES: [[&str; 3]; 4] = [
    ["row", "col", "value"],
    ["i", "j", "v"],
    ["row", "col", "data"],
    ["row", "column", "value"],
];

/// Opens the frame at `gpath`.
pub(crate) fn open(path: &Path, g: &Group, gpath: &str, opts: &ReadOptions) -> Result<Box<dyn crate::source::Source>> {
    let columns = read_index(path, g, gpath, "axis0")?;
    let index = read_index(path, g, gpath, "axis1")?;
    let blocks = read_blocks(path, g, gpath, &columns)?;
    let names = columns.names();
    if names.len() == 3 {
        for coo in COO_NAMES {
            if coo.iter().all(|c| names.iter().any(|n| n == c)) {
                return Ok(Box::new(CooFrameSource::open(
                    path,
                    g,
                    gpath,
                    &names,
                    coo,
                    blocks,
                    index.len(),
                    opts,
                )?));
            }
        }
    }
    if blocks.len() != 1 {
        return Err(Error::FrameMixedDtypes {
            path: path.to_path_buf(),
            object: gpath.to_string(),
            dtypes: blocks.iter().map(|b| b.class.describe()).collect(),
        }
        .into());
    }
    let b = blocks.into_iter().next().expect("one block");
    if value_dtype(b.class).is_none() {
        return Err(Error::UnsupportedDtype {
            path: path.to_path_buf(),
            object: format!("{gpath}/block0_values"),
            stored: crate::find::unsupported_dtype(b.class),
        }
        .into());
    }
    let mut src = DenseSource::open(path, b.values, &format!("{gpath}/block0_values"), !b.row_major, opts)?;
    let h = src.header_mut();
    if h.n_rows != index.len() as u64 || h.n_cols != columns.len() as u64 {
        return Err(Error::FrameShape {
            path: path.to_path_buf(),
            object: gpath.to_string(),
            index: index.len() as u64,
            columns: columns.len() as u64,
            n_rows: h.n_rows,
            n_cols: h.n_cols,
        }
        .into());
    }
    h.row_labels = index.labels().map(Into::into);
    h.col_labels = columns.labels().map(Into::into);
    let identity = b.columns.iter().enumerate().all(|(k, &c)| k == c);
    if identity {
        Ok(Box::new(src))
    } else {
        Ok(Box::new(Permuted {
            inner: src,
            map: b.columns.iter().map(|&c| c as u64).collect(),
        }))
    }
}

/// Renumbers the columns of a source (block item order to frame column order).
struct Permuted {
    inner: DenseSource,
    map: Vec<u64>,
}

impl crate::source::Source for Permuted {
    fn header_mut(&mut self) -> &mut MatrixHeader {
        self.inner.header_mut()
    }
}

impl MatrixSource for Permuted {
    fn header(&self) -> &MatrixHeader {
        self.inner.header()
    }
    fn next_block(&mut self) -> Result<Option<Block>> {
        let Some(Block::Rows(b)) = self.inner.next_block()? else {
            return Ok(None);
        };
        let mut out = RowBlock::new(b.values.dtype());
        out.rows = b.rows.clone();
        let mut vals = ValueVec::with_capacity(b.values.dtype(), b.nnz());
        for k in 0..b.rows.len() {
            let (s, e) = (b.indptr[k] as usize, b.indptr[k + 1] as usize);
            let mut order: Vec<usize> = (s..e).collect();
            order.sort_by_key(|&j| self.map[b.indices[j] as usize]);
            for j in order {
                out.indices.push(self.map[b.indices[j] as usize]);
                vals.extend_from(b.values.as_values().slice(j..j + 1))?;
            }
            out.indptr.push(out.indices.len() as u64);
        }
        out.values = vals;
        Ok(Some(Block::Rows(out)))
    }
    fn total_bytes(&self) -> Option<u64> {
        self.inner.total_bytes()
    }
    fn bytes_read(&self) -> u64 {
        self.inner.bytes_read()
    }
}

/// Where one column of a frame is: its block and position in that block.
struct Column {
    ds: Dataset,
    row_major: bool,
    pos: usize,
    class: TypeClass,
}

fn column(blocks: &[FrameBlock], frame_col: usize) -> Option<Column> {
    blocks.iter().find_map(|b| {
        b.columns.iter().position(|&c| c == frame_col).map(|pos| Column {
            ds: b.values.clone(),
            row_major: b.row_major,
            pos,
            class: b.class,
        })
    })
}

impl Column {
    fn read(&self, r: std::ops::Range<usize>, dtype: DType) -> hdf5::Result<ValueVec> {
        if self.row_major {
            values::read_2d(&self.ds, r, self.pos..self.pos + 1, dtype)
        } else {
            values::read_2d(&self.ds, self.pos..self.pos + 1, r, dtype)
        }
    }
}

/// Reads a long (row, col, value) frame as triplets.
struct CooFrameSource {
    path: PathBuf,
    gpath: String,
    header: MatrixHeader,
    row: Column,
    col: Column,
    value: Column,
    len: usize,
    next: usize,
    block: usize,
}

impl CooFrameSource {
    #[allow(clippy::too_many_arguments)]
    fn open(
        path: &Path,
        g: &Group,
        gpath: &str,
        names: &[String],
        coo: [&str; 3],
        blocks: Vec<FrameBlock>,
        len: usize,
        opts: &ReadOptions,
    ) -> Result<Self> {
        let find = |name: &str| -> Result<Column> {
            let k = names.iter().position(|n| n == name).expect("checked by the caller");
            column(&blocks, k).ok_or_else(|| {
                Error::FrameColumnMissing {
                    path: path.to_path_buf(),
                    object: gpath.to_string(),
                    column: name.to_string(),
                }
                .into()
            })
        };
        let (row, col, value) = (find(coo[0])?, find(coo[1])?, find(coo[2])?);
        for (name, c) in [(coo[0], &row), (coo[1], &col)] {
            if !matches!(c.class, TypeClass::Int(_) | TypeClass::Uint(_)) {
                return Err(Error::NotIntegers {
                    path: path.to_path_buf(),
                    object: format!("{gpath} column {name:?}"),
                    stored: c.class.describe(),
                }
                .into());
            }
        }
        let (dtype, widened) = value_dtype(value.class).ok_or_else(|| Error::UnsupportedDtype {
            path: path.to_path_buf(),
            object: format!("{gpath}: column {:?}", coo[2]),
            stored: crate::find::unsupported_dtype(value.class),
        })?;
        if widened {
            (opts.notify)(&format!(
                "{gpath}: column {:?} is {}; read as {dtype}",
                coo[2],
                value.class.describe()
            ));
        }
        let block = (opts.block_bytes / 24)
            .max(chunk_rows(&row.ds))
            .max(chunk_rows(&value.ds))
            .max(1);
        let mut src = CooFrameSource {
            path: path.to_path_buf(),
            gpath: gpath.to_string(),
            header: MatrixHeader::new(dtype, 0, 0),
            row,
            col,
            value,
            len,
            next: 0,
            block,
        };
        let (n_rows, n_cols) = match raw::attr_ints(g, "vecfmt_shape") {
            Some(v) if v.len() == 2 && v[0] >= 0 && v[1] >= 0 => (v[0] as u64, v[1] as u64),
            _ => {
                let (mut mr, mut mc) = (0u64, 0u64);
                let mut s = 0;
                while s < len {
                    let e = (s + src.block).min(len);
                    let (r, c) = src.read_rc(s..e)?;
                    mr = mr.max(r.iter().map(|&x| x + 1).max().unwrap_or(0));
                    mc = mc.max(c.iter().map(|&x| x + 1).max().unwrap_or(0));
                    s = e;
                }
                (opts.notify)(&format!(
                    "{gpath} declares no shape; taking {mr} × {mc} from the largest row and column"
                ));
                (mr, mc)
            }
        };
        src.header = MatrixHeader::new(dtype, n_rows, n_cols);
        // Labels written by FrameSink as Series next to the frame.
        let parent_path = gpath
            .rsplit_once('/')
            .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p });
        let name = gpath.rsplit('/').next().unwrap_or(gpath);
        if let Ok(file) = g.file() {
            if let Ok(parent) = file.group(parent_path) {
                src.header.row_labels = series_labels(&parent, &format!("{name}_row_labels"), n_rows).map(Into::into);
                src.header.col_labels = series_labels(&parent, &format!("{name}_col_labels"), n_cols).map(Into::into);
            }
        }
        Ok(src)
    }

    fn ints(&self, c: &Column, name: &'static str, r: std::ops::Range<usize>) -> Result<Vec<u64>> {
        let v = c.read(r.clone(), DType::I64).map_err(|source| Error::ReadRows {
            path: self.path.clone(),
            object: format!("{} column {name:?}", self.gpath),
            start: r.start as u64,
            end: r.end as u64,
            source,
        })?;
        let ValueVec::I64(v) = v else {
            unreachable!("read as i64")
        };
        if let Some(k) = v.iter().position(|&x| x < 0) {
            return Err(Error::FrameNegativeIndex {
                path: self.path.clone(),
                object: self.gpath.clone(),
                column: name,
                entry: (r.start + k) as u64,
                value: v[k],
            }
            .into());
        }
        Ok(v.into_iter().map(|x| x as u64).collect())
    }

    fn read_rc(&self, r: std::ops::Range<usize>) -> Result<(Vec<u64>, Vec<u64>)> {
        Ok((self.ints(&self.row, "row", r.clone())?, self.ints(&self.col, "col", r)?))
    }
}

/// Rows per chunk of a block's values (as stored); 0 when contiguous.
fn chunk_rows(ds: &Dataset) -> usize {
    ds.chunk().and_then(|c| c.first().copied()).unwrap_or(0)
}

/// Labels stored by [`FrameSink`] as a pandas Series whose index is the labels.
fn series_labels(parent: &Group, key: &str, n: u64) -> Option<Vec<String>> {
    let g = parent.group(key).ok()?;
    if raw::attr_string(&g, "pandas_type").as_deref() != Some("series") {
        return None;
    }
    let ds = g.dataset("index").ok()?;
    let v = raw::read_strings(&ds, false).ok()?;
    (v.len() as u64 == n).then_some(v)
}

impl crate::source::Source for CooFrameSource {
    fn header_mut(&mut self) -> &mut MatrixHeader {
        &mut self.header
    }
}

impl MatrixSource for CooFrameSource {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }
    fn next_block(&mut self) -> Result<Option<Block>> {
        if self.next >= self.len {
            return Ok(None);
        }
        let r = self.next..(self.next + self.block).min(self.len);
        self.next = r.end;
        let (rows, cols) = self.read_rc(r.clone())?;
        if let Some(k) = rows.iter().position(|&x| x >= self.header.n_rows) {
            return Err(Error::FrameIndexOutOfRange {
                path: self.path.clone(),
                object: self.gpath.clone(),
                entry: (r.start + k) as u64,
                axis: "row",
                index: rows[k],
                len: self.header.n_rows,
            }
            .into());
        }
        if let Some(k) = cols.iter().position(|&x| x >= self.header.n_cols) {
            return Err(Error::FrameIndexOutOfRange {
                path: self.path.clone(),
                object: self.gpath.clone(),
                entry: (r.start + k) as u64,
                axis: "column",
                index: cols[k],
                len: self.header.n_cols,
            }
            .into());
        }
        let values = self
            .value
            .read(r.clone(), self.header.dtype)
            .map_err(|source| Error::ReadRows {
                path: self.path.clone(),
                object: format!("{} values", self.gpath),
                start: r.start as u64,
                end: r.end as u64,
                source,
            })?;
        Ok(Some(Block::Triplets(TripletBlock { rows, cols, values })))
    }
    fn total_bytes(&self) -> Option<u64> {
        Some(self.len as u64 * (16 + self.header.dtype.size() as u64))
    }
    fn bytes_read(&self) -> u64 {
        self.next as u64 * (16 + self.header.dtype.size() as u64)
    }
}

/// The path of `name` in group `g`, for messages.
fn child(g: &Group, name: &str) -> String {
    format!("{}/{name}", g.name().trim_end_matches('/'))
}

/// Rows per chunk of the frame's arrays.
const FRAME_CHUNK: usize = 1 << 16;

/// Writes PyTables attributes on a node.
fn pt_attrs(out: &Path, loc: &hdf5::Location, attrs: &[(&str, &str)]) -> Result<()> {
    for (k, v) in attrs {
        raw::write_fixed_attr(loc, k, v).map_err(|e| write_err(out, "write the attribute", &attr_path(loc, k))(e))?;
    }
    Ok(())
}

fn int_attr<T: hdf5::H5Type>(out: &Path, loc: &hdf5::Location, name: &str, v: T) -> Result<()> {
    loc.new_attr::<T>()
        .create(name)
        .and_then(|a| a.write_scalar(&v))
        .map_err(|e| write_err(out, "write the attribute", &attr_path(loc, name))(e))
}

/// An index node as pandas writes it (a PyTables Array of strings or int64).
fn write_index_strings(out: &Path, g: &Group, key: &str, values: &[String]) -> Result<()> {
    let ds = raw::write_fixed_strings(g, key, values).map_err(|e| write_err(out, "write", &child(g, key))(e))?;
    pt_attrs(
        out,
        &ds,
        &[
            ("CLASS", "ARRAY"),
            ("VERSION", "2.4"),
            ("TITLE", ""),
            ("FLAVOR", "numpy"),
            ("kind", "string"),
        ],
    )?;
    int_attr(out, &ds, "transposed", 1u8)
}

/// An extendable PyTables EArray (`EXTDIM` 0), chunked and compressed.
fn earray(out: &Path, g: &Group, key: &str, dtype: DType, width: Option<usize>, deflate: u8) -> Result<Dataset> {
    fn make<T: hdf5::H5Type>(g: &Group, key: &str, width: Option<usize>, deflate: u8) -> hdf5::Result<Dataset> {
        let b = g.new_dataset::<T>();
        match width {
            None => {
                let b = b.chunk(FRAME_CHUNK).shape(0..);
                if deflate > 0 {
                    b.shuffle().deflate(deflate).create(key)
                } else {
                    b.create(key)
                }
            }
            Some(w) => {
                let b = b.chunk((FRAME_CHUNK, w)).shape((0.., w));
                if deflate > 0 {
                    b.shuffle().deflate(deflate).create(key)
                } else {
                    b.create(key)
                }
            }
        }
    }
    let ds = match dtype {
        DType::F32 => make::<f32>(g, key, width, deflate),
        DType::F64 => make::<f64>(g, key, width, deflate),
        DType::I32 => make::<i32>(g, key, width, deflate),
        DType::I64 => make::<i64>(g, key, width, deflate),
        DType::U32 => make::<u32>(g, key, width, deflate),
        DType::U64 => make::<u64>(g, key, width, deflate),
    }
    .map_err(|e| write_err(out, "create", &child(g, key))(e))?;
    pt_attrs(out, &ds, &[("CLASS", "EARRAY"), ("VERSION", "1.1"), ("TITLE", "")])?;
    int_attr(out, &ds, "EXTDIM", 0i32)?;
    int_attr(out, &ds, "transposed", 1u8)?;
    Ok(ds)
}

/// The attributes pandas puts on a fixed-format group.
fn pandas_group_attrs(out: &Path, g: &Group, pandas_type: &str, varieties: &[&str]) -> Result<()> {
    pt_attrs(
        out,
        g,
        &[
            ("CLASS", "GROUP"),
            ("TITLE", ""),
            ("VERSION", "1.0"),
            ("pandas_type", pandas_type),
            ("pandas_version", "0.15.2"),
            ("encoding", "UTF-8"),
            ("errors", "strict"),
        ],
    )?;
    for v in varieties {
        let name = format!("{v}_variety");
        raw::write_fixed_attr(g, &name, "regular")
            .map_err(|e| write_err(out, "write the attribute", &attr_path(g, &name))(e))?;
    }
    Ok(())
}

/// Writes a long COO frame that `pd.read_hdf` reads: columns `row`, `col` (int64) and
/// `value`, index 0..nnz; plus, when the matrix has labels, Series `<key>_row_labels` and
/// `<key>_col_labels` whose index holds the labels (values: their positions).
pub(crate) struct FrameSink {
    out: TempOutput,
    file: hdf5::File,
    index: Dataset,
    rc: Dataset,
    vals: Dataset,
    buf_rc: Vec<i64>,
    buf_val: ValueVec,
    written: usize,
}

impl std::fmt::Debug for FrameSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSink")
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

impl FrameSink {
    pub(crate) fn create(out_path: &Path, header: &MatrixHeader, opts: &WriteOptions) -> Result<Self> {
        let (out, file) = TempOutput::create(out_path)?;
        pt_attrs(
            out_path,
            &file,
            &[
                ("CLASS", "GROUP"),
                ("TITLE", ""),
                ("VERSION", "1.0"),
                ("PYTABLES_FORMAT_VERSION", "2.1"),
            ],
        )?;
        let (parent, name) = parent_and_name(&file, out_path, opts.dataset.as_deref().unwrap_or("/matrix"))?;
        let g = parent
            .create_group(&name)
            .map_err(|e| write_err(out_path, "create the frame group", &child(&parent, &name))(e))?;
        pandas_group_attrs(
            out_path,
            &g,
            "frame",
            &["axis0", "axis1", "block0_items", "block1_items"],
        )?;
        int_attr(out_path, &g, "ndim", 2i64)?;
        int_attr(out_path, &g, "nblocks", 2i64)?;
        g.new_attr::<i64>()
            .shape(2)
            .create("vecfmt_shape")
            .and_then(|a| a.write_raw(&[header.n_rows as i64, header.n_cols as i64]))
            .map_err(|e| write_err(out_path, "write the attribute", &attr_path(&g, "vecfmt_shape"))(e))?;
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        write_index_strings(out_path, &g, "axis0", &s(&["row", "col", "value"]))?;
        let index = earray(out_path, &g, "axis1", DType::I64, None, opts.deflate)?;
        raw::write_fixed_attr(&index, "kind", "integer")
            .map_err(|e| write_err(out_path, "write the attribute", &attr_path(&index, "kind"))(e))?;
        let rc = earray(out_path, &g, "block0_values", DType::I64, Some(2), opts.deflate)?;
        write_index_strings(out_path, &g, "block0_items", &s(&["row", "col"]))?;
        let vals = earray(out_path, &g, "block1_values", header.dtype, Some(1), opts.deflate)?;
        write_index_strings(out_path, &g, "block1_items", &s(&["value"]))?;
        for (suffix, labels) in [("row_labels", &header.row_labels), ("col_labels", &header.col_labels)] {
            if let Some(l) = labels {
                let series = format!("{name}_{suffix}");
                let object = child(&parent, &series);
                let sg =
                    parent
                        .create_group(&series)
                        .map_err(write_err(out_path, "create the label series", &object))?;
                pandas_group_attrs(out_path, &sg, "series", &["index"])?;
                write_index_strings(out_path, &sg, "index", l)?;
                let pos: Vec<i64> = (0..l.len() as i64).collect();
                let ds = sg
                    .new_dataset::<i64>()
                    .shape(l.len())
                    .create("values")
                    .map_err(write_err(out_path, "create the label series", &object))?;
                ds.write_raw(&pos)
                    .map_err(write_err(out_path, "write the label series", &object))?;
                pt_attrs(
                    out_path,
                    &ds,
                    &[
                        ("CLASS", "ARRAY"),
                        ("VERSION", "2.4"),
                        ("TITLE", ""),
                        ("FLAVOR", "numpy"),
                    ],
                )?;
                int_attr(out_path, &ds, "transposed", 1u8)?;
            }
        }
        Ok(FrameSink {
            out,
            file,
            index,
            rc,
            vals,
            buf_rc: Vec::new(),
            buf_val: ValueVec::new(header.dtype),
            written: 0,
        })
    }

    fn flush(&mut self, all: bool) -> Result<()> {
        let pending = self.buf_val.len();
        let n = if all {
            pending
        } else if pending >= 2 * FRAME_CHUNK {
            pending / FRAME_CHUNK * FRAME_CHUNK
        } else {
            0
        };
        if n == 0 {
            return Ok(());
        }
        let out = self.out.dest().to_path_buf();
        let end = self.written + n;
        let e = |action: &'static str, ds: &Dataset| {
            let object = ds.name();
            let out = &out;
            move |source| Error::Write {
                path: out.clone(),
                action,
                object,
                source,
            }
        };
        self.index.resize(end).map_err(e("extend", &self.index))?;
        self.rc.resize((end, 2)).map_err(e("extend", &self.rc))?;
        self.vals.resize((end, 1)).map_err(e("extend", &self.vals))?;
        let idx: Vec<i64> = (self.written as i64..end as i64).collect();
        values::write_1d(&self.index, self.written, vecfmt::Values::I64(&idx)).map_err(e("write", &self.index))?;
        values::write_2d(&self.rc, self.written, 2, vecfmt::Values::I64(&self.buf_rc[..2 * n]))
            .map_err(e("write", &self.rc))?;
        values::write_2d(&self.vals, self.written, 1, self.buf_val.as_values().slice(0..n))
            .map_err(e("write", &self.vals))?;
        self.written = end;
        self.buf_rc.drain(..2 * n);
        self.buf_val = vecfmt::with_value_vec!(&self.buf_val, v => ValueVec::from(v[n..].to_vec()));
        Ok(())
    }
}

impl MatrixSink for FrameSink {
    fn write_rows(&mut self, b: &RowBlock) -> Result<()> {
        for (k, &r) in b.rows.iter().enumerate() {
            for j in b.indptr[k] as usize..b.indptr[k + 1] as usize {
                self.buf_rc.push(r as i64);
                self.buf_rc.push(b.indices[j] as i64);
            }
        }
        self.buf_val.extend_from(b.values.as_values())?;
        self.flush(false)
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.flush(true)?;
        let FrameSink {
            out,
            file,
            index,
            rc,
            vals,
            ..
        } = *self;
        drop((index, rc, vals));
        out.commit(file)
    }
}
