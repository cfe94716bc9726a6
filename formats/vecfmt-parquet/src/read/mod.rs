//! [`ParquetSource`]: a Parquet file or dataset directory in, batch by batch.
//!
//! Opening reads every file's footer, recognises the columns and settles the header. When
//! the header needs facts the footers do not give (string labels, a maximum index without
//! statistics, whether records come sorted by row), one first pass reads just the columns
//! concerned. Then [`MatrixSource::next_block`] reads bounded batches: row blocks when the
//! records are sorted by row, triplet blocks otherwise.
//!
//! The parts: [`plan`] recognises the layout and the columns, [`header`] settles the shape
//! and labels (with the first pass), [`strict`] guards the parquet crate's reads, and
//! [`assemble`] turns triplets sorted by row into row blocks.

mod assemble;
mod header;
mod plan;
mod strict;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use vecfmt::stream::{Block, MatrixHeader, MatrixSource, TripletBlock};
use vecfmt::{Axis, Result, ValueVec};

use crate::arrays::{self, IndexKind};
use crate::dataset::{self, Part, HIVE_NULL};
use crate::{keys, Error, ShapeFrom};
use assemble::Assembler;
use header::LabelMap;
use plan::{plan, value_dtype};
use strict::{guard, next_batch, StrictFile};

/// How [`ParquetSource`] reads.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The row index column, instead of the recognised names.
    pub row_col: Option<String>,
    /// The column index column, instead of the recognised names.
    pub col_col: Option<String>,
    /// The value column, instead of the recognised names.
    pub value_col: Option<String>,
    /// Records per batch read.
    pub batch_size: usize,
    /// Bytes the label maps (string row/column ids) may take.
    pub memory: u64,
    /// The shape `(n_rows, n_cols)`, for files that do not carry one (pandas, pyarrow and
    /// Spark write none: the shape is otherwise the widest index + 1). An entry past it is
    /// an error ([`Error::IndexOutOfRange`]); a file whose `vecfmt.shape` metadata, or whose
    /// string labels, give another shape is an error too ([`Error::ShapeDisagrees`]).
    pub shape: Option<(u64, u64)>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            row_col: None,
            col_col: None,
            value_col: None,
            batch_size: 1 << 16,
            memory: 1 << 30,
            shape: None,
        }
    }
}

/// A row or column index: its column's name and how it is stored.
#[derive(Debug, Clone)]
struct Role {
    name: String,
    kind: IndexKind,
}

#[derive(Debug, Clone)]
enum Plan {
    Coo {
        row: Role,
        col: Role,
        value: String,
        /// `row_label` next to an integer `row` column.
        row_label: Option<String>,
        col_label: Option<String>,
    },
    List {
        /// `None`: records are rows 0, 1, 2, ... in order.
        row: Option<Role>,
        indices: String,
        values: String,
        label: Option<String>,
    },
}

#[derive(Debug)]
struct PartMeta {
    part: Part,
    meta: ArrowReaderMetadata,
}

impl PartMeta {
    fn has_column(&self, name: &str) -> bool {
        self.meta.schema().column_with_name(name).is_some()
    }
    fn records(&self) -> u64 {
        self.meta.metadata().file_metadata().num_rows().max(0) as u64
    }
    fn kv(&self, key: &str) -> Option<&str> {
        self.meta
            .metadata()
            .file_metadata()
            .key_value_metadata()?
            .iter()
            .find(|kv| kv.key == key)?
            .value
            .as_deref()
    }
}

/// Reads a Parquet file, or a directory of them, as a matrix.
#[derive(Debug)]
pub struct ParquetSource {
    root: PathBuf,
    parts: Vec<PartMeta>,
    plan: Plan,
    header: MatrixHeader,
    /// Where the shape came from, for errors.
    shape_from: ShapeFrom,
    /// The shape given in the options, checked against string labels.
    stated: Option<(u64, u64)>,
    /// Labels to ids for string index columns.
    row_map: Option<HashMap<String, u64>>,
    col_map: Option<HashMap<String, u64>>,
    /// Records come sorted by row: yield row blocks.
    rows_mode: bool,
    /// Whether the row order was declared by the file rather than checked in a first pass.
    sort_declared: bool,
    batch_size: usize,
    // Reading state.
    next_part: usize,
    /// The next row group of the part (the list layout is read a row group at a time).
    next_group: usize,
    reader: Option<ParquetRecordBatchReader>,
    /// Records of the current part read so far.
    part_records: u64,
    /// Records of earlier parts (the ordinal row of the list layout without a row column).
    records_before: u64,
    bytes_done: u64,
    assembler: Option<Assembler>,
}

impl ParquetSource {
    /// Opens a Parquet file or a directory of Parquet files (hive-partitioned or not).
    pub fn open(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<ParquetSource> {
        let root = path.as_ref().to_path_buf();
        let mut parts = Vec::new();
        for part in dataset::discover(&root)? {
            let file = File::open(&part.path).map_err(crate::io_err(&part.path, "open"))?;
            let meta = guard(&part.path, || {
                ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            })?
            .map_err(|source| Error::Unreadable {
                path: part.path.clone(),
                source,
            })?;
            parts.push(PartMeta { part, meta });
        }
        let plan = plan(&parts, opts)?;
        let dtype = value_dtype(&plan, &parts)?;
        let first = &parts[0];

        // What the files' key-value metadata tells (files vecfmt wrote).
        let mut shape: Option<(u64, u64)> = None;
        for p in &parts {
            if let Some(s) = p.kv(keys::SHAPE) {
                let parsed: Option<(u64, u64)> = serde_json::from_str::<Vec<u64>>(s)
                    .ok()
                    .and_then(|v| (v.len() == 2).then(|| (v[0], v[1])));
                let (r, c) = parsed.ok_or_else(|| Error::MetadataValue {
                    path: p.part.path.clone(),
                    key: keys::SHAPE.to_string(),
                    value: s.to_string(),
                    expected: "[n_rows, n_cols]",
                })?;
                shape = Some(shape.map_or((r, c), |(r0, c0)| (r0.max(r), c0.max(c))));
            }
        }
        let mut shape_from = if shape.is_some() {
            ShapeFrom::Metadata
        } else {
            ShapeFrom::Statistics
        };
        if let Some(stated) = opts.shape {
            if let Some(carried) = shape.filter(|&c| c != stated) {
                return Err(Error::ShapeDisagrees {
                    path: root,
                    stated,
                    carried,
                    what: "in its vecfmt.shape metadata",
                }
                .into());
            }
            shape = Some(stated);
            shape_from = ShapeFrom::Given;
        }
        let metadata = match first.kv(keys::METADATA) {
            Some(s) => Some(
                serde_json::from_str::<serde_json::Value>(s)
                    .ok()
                    .filter(|v| v.is_object())
                    .ok_or_else(|| Error::MetadataJson {
                        path: first.part.path.clone(),
                        key: keys::METADATA.to_string(),
                        expected: "a JSON object",
                    })?,
            ),
            None => None,
        };
        // Labels in the metadata describe the whole matrix only when one file holds it.
        let meta_labels = |key: &str| -> Result<Option<Vec<String>>> {
            if parts.len() != 1 {
                return Ok(None);
            }
            let parse = |key: &str, s: &str| {
                serde_json::from_str::<Vec<String>>(s).map_err(|_| Error::MetadataJson {
                    path: first.part.path.clone(),
                    key: key.to_string(),
                    expected: "a JSON array of strings",
                })
            };
            if let Some(s) = first.kv(key) {
                return Ok(Some(parse(key, s)?));
            }
            // Labels too large for one entry: split into parts (see `keys::ROW_LABELS`).
            let parts_key = format!("{key}{}", keys::PARTS_SUFFIX);
            let Some(n) = first.kv(&parts_key) else {
                return Ok(None);
            };
            let n: usize = n.parse().map_err(|_| Error::MetadataValue {
                path: first.part.path.clone(),
                key: parts_key.clone(),
                value: n.to_string(),
                expected: "a number of parts",
            })?;
            let mut labels = Vec::new();
            for k in 0..n {
                let part_key = format!("{key}.{k}");
                let s = first.kv(&part_key).ok_or_else(|| Error::MissingLabelPart {
                    path: first.part.path.clone(),
                    parts_key: parts_key.clone(),
                    parts: n,
                    part_key: part_key.clone(),
                })?;
                labels.extend(parse(&part_key, s)?);
            }
            Ok(Some(labels))
        };
        let meta_row_labels = meta_labels(keys::ROW_LABELS)?;
        let meta_col_labels = meta_labels(keys::COL_LABELS)?;

        let mut src = ParquetSource {
            root,
            shape_from,
            stated: opts.shape,
            header: MatrixHeader::new(dtype, 0, 0),
            parts,
            plan,
            row_map: None,
            col_map: None,
            rows_mode: false,
            sort_declared: false,
            batch_size: opts.batch_size.max(1),
            next_part: 0,
            next_group: 0,
            reader: None,
            part_records: 0,
            records_before: 0,
            bytes_done: 0,
            assembler: None,
        };
        src.settle_header(shape, meta_row_labels, meta_col_labels, opts.memory)?;
        src.header.metadata = metadata;
        if src.rows_mode {
            src.assembler = Some(Assembler::new(dtype));
        }
        Ok(src)
    }

    /// Whether blocks come as rows (the input is sorted by row) rather than triplets.
    pub fn yields_rows(&self) -> bool {
        self.rows_mode
    }

    /// The Parquet files read, in order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.parts.iter().map(|p| p.part.path.as_path())
    }

    fn row_role(&self) -> Option<&Role> {
        match &self.plan {
            Plan::Coo { row, .. } => Some(row),
            Plan::List { row, .. } => row.as_ref(),
        }
    }

    /// A reader of part `pi` over `columns` (top-level names present in the file).
    fn part_reader(&self, pi: usize, columns: &[String]) -> Result<ParquetRecordBatchReader> {
        self.reader_of(pi, columns, None)
    }

    /// A reader of part `pi` over `columns`: all of it, or only row group `group`, in batches
    /// of about [`ParquetSource::batch_size`] entries. A record of the list layout holds a
    /// whole row, and the rows of a co-occurrence matrix run from one entry to every column:
    /// batches of a fixed number of records would hold anything up to the whole row group (2
    /// GiB on a 65 M-entry file), so the list layout is read a row group at a time, in
    /// batches of as many records as that row group holds for `batch_size` entries.
    fn reader_of(&self, pi: usize, columns: &[String], group: Option<usize>) -> Result<ParquetRecordBatchReader> {
        let p = &self.parts[pi];
        let path = &p.part.path;
        let schema = p.meta.schema();
        let roots: Vec<usize> = columns.iter().filter_map(|c| schema.index_of(c).ok()).collect();
        let file = StrictFile::open(path)?;
        let schema_descr = p.meta.parquet_schema();
        let leaves: Vec<usize> = (0..schema_descr.num_columns())
            .filter(|&l| roots.contains(&schema_descr.get_column_root_idx(l)))
            .collect();
        // The pages of the whole part are checked once, when its first row group is opened.
        if group.is_none_or(|g| g == 0) {
            crate::pages::check(path, &file.file, file.len, p.meta.metadata(), &leaves)?;
        }
        let mask = ProjectionMask::roots(p.meta.parquet_schema(), roots);
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, p.meta.clone()).with_projection(mask);
        builder = match group {
            None => builder.with_batch_size(self.batch_size),
            Some(g) => {
                let rg = p.meta.metadata().row_group(g);
                let entries: i64 = leaves.iter().map(|&l| rg.column(l).num_values()).max().unwrap_or(0);
                let records = rg.num_rows().max(0) as u128;
                let batch =
                    (self.batch_size as u128 * records / entries.max(1) as u128).clamp(1, self.batch_size as u128);
                builder.with_row_groups(vec![g]).with_batch_size(batch as usize)
            }
        };
        let reader = guard(path, || builder.build())?.map_err(|source| Error::Reader {
            path: path.clone(),
            source,
        })?;
        Ok(reader)
    }

    /// The ids of an index role for the records of `batch` (from its column, or the part's
    /// partition value), appended to `out`. String ids come from `map`, which grows when
    /// given (first pass) and must know every label otherwise.
    #[expect(
        clippy::too_many_arguments,
        reason = "the first pass and the main pass share it with different state"
    )]
    fn index_ids(
        &self,
        pi: usize,
        batch: &RecordBatch,
        role: &Role,
        offset: u64,
        out: &mut Vec<u64>,
        map: Option<&mut LabelMap>,
        used: &mut u64,
    ) -> Result<()> {
        let p = &self.parts[pi];
        let path = &p.part.path;
        let n = batch.num_rows();
        if !p.has_column(&role.name) {
            let v = p.part.partition(&role.name).unwrap_or(HIVE_NULL);
            if v == HIVE_NULL {
                return Err(Error::NullPartition {
                    path: path.clone(),
                    key: role.name.clone(),
                }
                .into());
            }
            let id = match (role.kind, map) {
                (IndexKind::Int, _) => v.parse::<u64>().map_err(|_| Error::PartitionNotIndex {
                    path: path.clone(),
                    key: role.name.clone(),
                    value: v.to_string(),
                })?,
                (IndexKind::Str, Some(m)) => m.id(v, used),
                (IndexKind::Str, None) => self.known_id(path, &role.name, v)?,
            };
            out.extend(std::iter::repeat_n(id, n));
            return Ok(());
        }
        let a = column(path, batch, &role.name)?;
        match (role.kind, map) {
            (IndexKind::Int, _) => {
                arrays::append_indices(a.as_ref(), out).map_err(|e| e.at(path, &role.name, offset).into())
            }
            (IndexKind::Str, Some(m)) => {
                let res = arrays::append_string_ids::<std::convert::Infallible>(a.as_ref(), out, |s| Ok(m.id(s, used)))
                    .map_err(|e| e.at(path, &role.name, offset))?;
                match res {
                    Ok(()) => Ok(()),
                    Err(never) => match never {},
                }
            }
            (IndexKind::Str, None) => {
                arrays::append_string_ids(a.as_ref(), out, |s| self.known_id(path, &role.name, s))
                    .map_err(|e| e.at(path, &role.name, offset))?
            }
        }
    }

    fn known_id(&self, path: &Path, column: &str, label: &str) -> Result<u64> {
        let map = if self.row_role().is_some_and(|r| r.name == column) {
            self.row_map.as_ref()
        } else {
            self.col_map.as_ref()
        };
        let id = map
            .and_then(|m| m.get(label).copied())
            .ok_or_else(|| Error::UnknownLabel {
                path: path.to_path_buf(),
                column: column.to_string(),
                label: label.to_string(),
            })?;
        Ok(id)
    }

    /// The triplets of the next batch, or `None` at the end of the input.
    fn next_triplets(&mut self) -> Result<Option<TripletBlock>> {
        loop {
            if self.reader.is_none() {
                if self.next_part == self.parts.len() {
                    return Ok(None);
                }
                let columns = match &self.plan {
                    Plan::Coo { row, col, value, .. } => vec![row.name.clone(), col.name.clone(), value.clone()],
                    Plan::List {
                        row, indices, values, ..
                    } => {
                        let mut c = vec![indices.clone(), values.clone()];
                        c.extend(row.as_ref().map(|r| r.name.clone()));
                        c
                    }
                };
                let pi = self.next_part;
                if matches!(self.plan, Plan::List { .. }) {
                    // A row group at a time (see `reader_of`).
                    if self.next_group == 0 {
                        self.part_records = 0;
                    }
                    if self.next_group == self.parts[pi].meta.metadata().num_row_groups() {
                        self.end_part();
                        continue;
                    }
                    self.reader = Some(self.reader_of(pi, &columns, Some(self.next_group))?);
                    self.next_group += 1;
                } else {
                    self.reader = Some(self.part_reader(pi, &columns)?);
                    self.part_records = 0;
                }
            }
            let pi = self.next_part;
            let path = self.parts[pi].part.path.clone();
            let batch = match next_batch(&path, self.reader.as_mut().expect("a reader is open"))? {
                Some(b) => b,
                None => {
                    self.reader = None;
                    if !matches!(self.plan, Plan::List { .. }) {
                        self.end_part();
                    }
                    continue;
                }
            };
            let offset = self.part_records;
            self.part_records += batch.num_rows() as u64;
            let t = self.triplets_of(pi, &batch, offset)?;
            if !t.rows.is_empty() {
                return Ok(Some(t));
            }
        }
    }

    /// The current part has been read whole.
    fn end_part(&mut self) {
        self.bytes_done += self.parts[self.next_part].part.size;
        self.records_before += self.part_records;
        self.next_part += 1;
        self.next_group = 0;
    }

    fn triplets_of(&self, pi: usize, batch: &RecordBatch, offset: u64) -> Result<TripletBlock> {
        let path = &self.parts[pi].part.path;
        let n = batch.num_rows();
        let mut rows = Vec::with_capacity(n);
        let mut cols = Vec::with_capacity(n);
        let mut values = ValueVec::with_capacity(self.header.dtype, n);
        match &self.plan {
            Plan::Coo { row, col, value, .. } => {
                self.index_ids(pi, batch, row, offset, &mut rows, None, &mut 0)?;
                self.index_ids(pi, batch, col, offset, &mut cols, None, &mut 0)?;
                let a = column(path, batch, value)?;
                arrays::append_values(a.as_ref(), &mut values).map_err(|e| e.at(path, value, offset))?;
            }
            Plan::List {
                row,
                indices,
                values: vcol,
                ..
            } => {
                let mut record_rows = Vec::with_capacity(n);
                match row {
                    Some(r) => self.index_ids(pi, batch, r, offset, &mut record_rows, None, &mut 0)?,
                    None => {
                        let base = self.records_before + offset;
                        record_rows.extend(base..base + n as u64);
                    }
                }
                let (ioff, ichild) = list_parts(path, column(path, batch, indices)?, indices, offset)?;
                let (voff, vchild) = list_parts(path, column(path, batch, vcol)?, vcol, offset)?;
                for k in 0..n {
                    let (il, vl) = (ioff[k + 1] - ioff[k], voff[k + 1] - voff[k]);
                    if il != vl {
                        return Err(Error::ListLengths {
                            path: path.clone(),
                            record: offset + k as u64,
                            indices: il,
                            values: vl,
                        }
                        .into());
                    }
                    rows.extend(std::iter::repeat_n(record_rows[k], il));
                }
                arrays::append_indices(ichild.as_ref(), &mut cols)
                    .map_err(|e| e.at(path, &format!("{indices} (list items)"), offset))?;
                arrays::append_values(vchild.as_ref(), &mut values)
                    .map_err(|e| e.at(path, &format!("{vcol} (list items)"), offset))?;
            }
        }
        for (ids, len, axis) in [
            (&rows, self.header.n_rows, Axis::Row),
            (&cols, self.header.n_cols, Axis::Col),
        ] {
            if let Some(k) = ids.iter().position(|&x| x >= len) {
                return Err(Error::IndexOutOfRange {
                    path: path.clone(),
                    row: rows[k],
                    col: cols[k],
                    axis,
                    index: ids[k],
                    len,
                    shape_from: self.shape_from,
                }
                .into());
            }
        }
        Ok(TripletBlock { rows, cols, values })
    }
}

/// A named column of a batch.
fn column<'b>(path: &Path, batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
    let a = batch.column_by_name(name).ok_or_else(|| Error::MissingColumn {
        path: path.to_path_buf(),
        column: name.to_string(),
    })?;
    Ok(a)
}

/// Offsets (from 0) and the child values of a list column, refusing null lists.
fn list_parts(path: &Path, a: &ArrayRef, name: &str, offset: u64) -> Result<(Vec<usize>, ArrayRef)> {
    if let Some(n) = a.logical_nulls() {
        if let Some(k) = n.iter().position(|v| !v) {
            return Err(Error::NullList {
                path: path.to_path_buf(),
                column: name.to_string(),
                record: offset + k as u64,
            }
            .into());
        }
    }
    let (offs, values): (Vec<usize>, &ArrayRef) = if let Some(l) = a.as_list_opt::<i32>() {
        (l.value_offsets().iter().map(|&o| o as usize).collect(), l.values())
    } else if let Some(l) = a.as_list_opt::<i64>() {
        (l.value_offsets().iter().map(|&o| o as usize).collect(), l.values())
    } else {
        return Err(Error::NotAList {
            path: path.to_path_buf(),
            column: name.to_string(),
            data_type: a.data_type().clone(),
        }
        .into());
    };
    let first = offs.first().copied().unwrap_or(0);
    let last = offs.last().copied().unwrap_or(0);
    let child = values.slice(first, last - first);
    Ok((offs.into_iter().map(|o| o - first).collect(), child))
}

impl MatrixSource for ParquetSource {
    fn header(&self) -> &MatrixHeader {
        &self.header
    }

    fn next_block(&mut self) -> Result<Option<Block>> {
        if !self.rows_mode {
            return Ok(self.next_triplets()?.map(Block::Triplets));
        }
        loop {
            let t = self.next_triplets()?;
            let declared = self.sort_declared;
            let path = self
                .parts
                .get(self.next_part)
                .map_or(self.root.clone(), |p| p.part.path.clone());
            let asm = self.assembler.as_mut().expect("row mode has an assembler");
            match t {
                Some(t) => {
                    asm.push(&t).map_err(|e| match e {
                        vecfmt::Error::RowOrder { row, previous } => Error::NotSorted {
                            path: path.clone(),
                            row,
                            previous,
                            declared,
                        }
                        .into(),
                        e => named(e, &path),
                    })?;
                    if asm.block.nnz() >= self.batch_size {
                        return Ok(Some(Block::Rows(asm.take())));
                    }
                }
                None => {
                    asm.finish_row().map_err(|e| named(e, &path))?;
                    return Ok((asm.block.nnz() > 0).then(|| Block::Rows(asm.take())));
                }
            }
        }
    }

    fn total_bytes(&self) -> Option<u64> {
        Some(self.parts.iter().map(|p| p.part.size).sum())
    }

    fn bytes_read(&self) -> u64 {
        let partial = self.parts.get(self.next_part).map_or(0, |p| {
            let n = p.records().max(1);
            (p.part.size as u128 * self.part_records.min(n) as u128 / n as u128) as u64
        });
        self.bytes_done + partial
    }
}

/// An overflowing sum of duplicate records, as an error that names the file.
fn named(e: vecfmt::Error, path: &Path) -> vecfmt::Error {
    match e {
        vecfmt::Error::Overflow { row, col } => Error::SumOverflow {
            path: path.to_path_buf(),
            row,
            col,
        }
        .into(),
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int32Array, Int64Array, RecordBatch};
    use parquet::arrow::ArrowWriter;

    use super::*;

    /// Records sorted by row, in one file.
    fn write(path: &Path, rows: Vec<i64>, cols: Vec<i64>, values: Vec<i32>) {
        let batch = RecordBatch::try_from_iter([
            ("row", Arc::new(Int64Array::from(rows)) as ArrayRef),
            ("col", Arc::new(Int64Array::from(cols)) as ArrayRef),
            ("value", Arc::new(Int32Array::from(values)) as ArrayRef),
        ])
        .unwrap();
        let mut w = ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    fn drain(src: &mut ParquetSource) -> Result<()> {
        while src.next_block()?.is_some() {}
        Ok(())
    }

    #[test]
    fn duplicate_records_that_overflow_are_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dup.parquet");
        write(&path, vec![0, 1, 1], vec![2, 3, 3], vec![1, i32::MAX, 1]);
        let mut src = ParquetSource::open(&path, &ReadOptions::default()).unwrap();
        assert!(src.yields_rows(), "sorted records come as rows");
        let err = drain(&mut src).unwrap_err();
        assert!(
            matches!(
                err.format_error::<Error>(),
                Some(Error::SumOverflow { path: p, row: 1, col: 3 }) if p == &path
            ),
            "{err}"
        );
        assert!(err.to_string().contains("dup.parquet: Parquet: "), "{err}");
    }

    #[test]
    fn negative_indices_name_the_column_and_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("neg.parquet");
        write(&path, vec![0, 1], vec![0, -4], vec![1, 2]);
        let err = ParquetSource::open(&path, &ReadOptions::default())
            .and_then(|mut s| drain(&mut s))
            .unwrap_err();
        assert!(
            matches!(
                err.format_error::<Error>(),
                Some(Error::NegativeIndex { column, record: 1, value: -4, .. }) if column == "col"
            ),
            "{err}"
        );
    }
}
