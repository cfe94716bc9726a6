//! [`ParquetSink`]: row blocks out as a Parquet file, COO long format or list layout.
//!
//! The list layout goes through arrow's writer; the COO layout's own writer, which encodes
//! row groups on a thread of their own, is in [`coo`].

mod coo;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float32Array, Float64Array, Int32Array, Int64Array, ListArray, RecordBatch, UInt32Array,
    UInt64Array,
};
use arrow_buffer::{OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use vecfmt::stream::{MatrixHeader, MatrixSink, RowBlock, SharedLabels};
use vecfmt::{DType, Error, Result, Values};

use crate::{io_err, keys, LABELS_IN_FOOTER_MAX, LABELS_IN_METADATA_MAX, LABELS_PART_MAX};
use coo::{Column, CooWriter, Encoder, Group, LabelTable};

/// Which Parquet layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One record per stored entry: `row`, `col`, `value` (+ `row_label`, `col_label`).
    #[default]
    Coo,
    /// One record per non-empty row: `row`, `indices`, `values` (+ `label`).
    List,
}

impl std::str::FromStr for Layout {
    type Err = Error;
    fn from_str(s: &str) -> Result<Layout> {
        match s.to_ascii_lowercase().as_str() {
            "coo" => Ok(Layout::Coo),
            "list" => Ok(Layout::List),
            _ => Err(Error::UnknownName {
                what: "Parquet layout",
                name: s.to_string(),
                expected: "coo, list",
            }),
        }
    }
}

/// How [`ParquetSink`] writes.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// The layout; COO by default.
    pub layout: Layout,
    /// Column compression; zstd (level 1, as pyarrow) by default.
    pub compression: Compression,
    /// Stored entries per row group, at least: a row group is closed at the first row block
    /// boundary after this many entries (or at a row boundary past twice as many), so row
    /// groups follow the source's chunks and hold whole rows.
    pub row_group_entries: usize,
    /// Labels go whole into one key-value entry per axis while both axes' JSON together
    /// stays under this many bytes ([`LABELS_IN_METADATA_MAX`] by default); larger ones are
    /// split into parts.
    pub labels_in_metadata_max: usize,
    /// The largest part of split labels, in bytes ([`LABELS_PART_MAX`] by default).
    pub labels_part_max: usize,
    /// Labels whose JSON totals more than this many bytes are not put in the metadata at all
    /// ([`LABELS_IN_FOOTER_MAX`] by default).
    pub labels_in_footer_max: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            layout: Layout::Coo,
            compression: Compression::ZSTD(ZstdLevel::default()),
            row_group_entries: 1 << 18,
            labels_in_metadata_max: LABELS_IN_METADATA_MAX,
            labels_part_max: LABELS_PART_MAX,
            labels_in_footer_max: LABELS_IN_FOOTER_MAX,
        }
    }
}

impl WriteOptions {
    /// Default options with this layout.
    pub fn layout(layout: Layout) -> Self {
        WriteOptions {
            layout,
            ..WriteOptions::default()
        }
    }
}

/// Records converted per Arrow batch, to bound the memory of one conversion.
const BATCH_ENTRIES: usize = 1 << 16;

/// Writes rows as a Parquet file. Nothing appears at the path until [`MatrixSink::finish`];
/// a sink dropped before that removes its temporary file.
#[derive(Debug)]
pub struct ParquetSink {
    path: PathBuf,
    tmp: tempfile::NamedTempFile,
    writer: Writer,
    schema: SchemaRef,
    dtype: DType,
    n_rows: u64,
    n_cols: u64,
    /// List layout: the row labels (the COO writer keeps its own).
    row_labels: Option<SharedLabels>,
    /// List layout with row labels too large for the metadata: write a record for every row,
    /// empty ones included, so the `label` column holds every label.
    every_row: bool,
    next_row: u64,
    in_group: usize,
    target: usize,
}

impl ParquetSink {
    /// Starts a Parquet file for a matrix with this header.
    pub fn create(path: impl AsRef<Path>, header: &MatrixHeader, opts: &WriteOptions) -> Result<ParquetSink> {
        let path = path.as_ref().to_path_buf();
        let layout = opts.layout;
        let index_type = match layout {
            Layout::List if header.n_cols <= i32::MAX as u64 => DataType::Int32,
            _ => DataType::Int64,
        };
        let value_type = arrow_type(header.dtype);
        let mut fields = Vec::new();
        match layout {
            Layout::Coo => {
                fields.push(Field::new("row", index_type_for(header.n_rows), false));
                fields.push(Field::new("col", index_type_for(header.n_cols), false));
                fields.push(Field::new("value", value_type, false));
                if header.row_labels.is_some() {
                    fields.push(Field::new("row_label", label_type(), false));
                }
                if header.col_labels.is_some() {
                    fields.push(Field::new("col_label", label_type(), false));
                }
            }
            Layout::List => {
                fields.push(Field::new("row", DataType::Int64, false));
                fields.push(Field::new("indices", DataType::List(item(index_type)), false));
                fields.push(Field::new("values", DataType::List(item(value_type)), false));
                if header.row_labels.is_some() {
                    fields.push(Field::new("label", label_type(), false));
                }
            }
        }
        let mut kv = vec![
            KeyValue::new(
                keys::SHAPE.to_string(),
                format!("[{}, {}]", header.n_rows, header.n_cols),
            ),
            KeyValue::new(
                keys::LAYOUT.to_string(),
                match layout {
                    Layout::Coo => "coo",
                    Layout::List => "list",
                }
                .to_string(),
            ),
            KeyValue::new(keys::DTYPE.to_string(), header.dtype.name().to_string()),
            KeyValue::new(
                keys::SORTED.to_string(),
                match layout {
                    Layout::Coo => "row,col",
                    Layout::List => "row",
                }
                .to_string(),
            ),
        ];
        if let Some(m) = &header.metadata {
            kv.push(KeyValue::new(keys::METADATA.to_string(), m.to_string()));
        }
        // The small keys also go in the Arrow schema's metadata, which pyarrow shows as
        // `table.schema.metadata`; labels stay in the Parquet key-value metadata only, so
        // they are not stored twice.
        let schema_meta: std::collections::HashMap<String, String> = kv
            .iter()
            .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
            .collect();
        let schema = Arc::new(Schema::new(fields).with_metadata(schema_meta));
        // Both axes whole in one entry each when small; else each axis split into parts;
        // beyond the footer limit, not at all.
        let json_len = |labels: &Option<SharedLabels>| labels.as_deref().map_or(0, labels_json_len);
        let total = json_len(&header.row_labels) + json_len(&header.col_labels);
        let mut room = opts.labels_in_footer_max;
        let mut labels_kept = |labels: &Option<SharedLabels>, key: &str| -> Option<bool> {
            let labels = labels.as_ref()?;
            if total <= opts.labels_in_metadata_max as u64 {
                kv.push(KeyValue::new(
                    key.to_string(),
                    serde_json::to_string(&labels[..]).expect("strings serialize"),
                ));
                return Some(true);
            }
            let len = labels_json_len(labels);
            if len > room {
                return Some(false);
            }
            room -= len;
            let parts = label_parts(labels, opts.labels_part_max);
            kv.push(KeyValue::new(
                format!("{key}{}", keys::PARTS_SUFFIX),
                parts.len().to_string(),
            ));
            for (k, part) in parts.into_iter().enumerate() {
                kv.push(KeyValue::new(format!("{key}.{k}"), part));
            }
            Some(true)
        };
        let row_labels_kept = labels_kept(&header.row_labels, keys::ROW_LABELS);
        let col_labels_kept = labels_kept(&header.col_labels, keys::COL_LABELS);
        if layout == Layout::List && col_labels_kept == Some(false) {
            return Err(crate::Error::ListColumnLabels {
                path,
                limit: opts.labels_in_footer_max,
            }
            .into());
        }
        let sort_by = match layout {
            Layout::Coo => vec![0, 1],
            Layout::List => vec![0],
        };
        // Numbers go plain into zstd: on M1 that is both smaller and faster than dictionary
        // encoding (which falls back to plain after 1 MB for column indices anyway). Label
        // strings repeat, so they keep dictionary encoding. Statistics per column chunk
        // (row group) are what readers' filters use; page-level ones cost a third of the
        // write time and no reader here uses them.
        let mut props = WriterProperties::builder()
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::Chunk);
        for label in ["row_label", "col_label", "label"] {
            props = props.set_column_dictionary_enabled(ColumnPath::from(label), true);
        }
        let props = props
            .set_compression(opts.compression)
            // Row groups are closed here, at row block boundaries, not by row count.
            .set_max_row_group_row_count(None);
        // The properties the COO writer encodes the value column with when its values repeat:
        // without the key-value metadata (the footer's), which holds the labels' JSON.
        let value_dict = Arc::new(
            props
                .clone()
                .set_column_dictionary_enabled(ColumnPath::from("value"), true)
                .build(),
        );
        let mut props = props
            .set_key_value_metadata(Some(kv))
            .set_sorting_columns(Some(
                sort_by
                    .into_iter()
                    .map(|column_idx| SortingColumn {
                        column_idx,
                        descending: false,
                        nulls_first: false,
                    })
                    .collect(),
            ))
            .build();

        let tmp = vecfmt::publish::temp_file_for(&path)?;
        let file = tmp.as_file().try_clone().map_err(io_err(&path, "open"))?;
        let out = BufWriter::with_capacity(1 << 20, file);
        let start_err = |source: ParquetError| write_err(&path, "start writing", source);
        let writer = match layout {
            Layout::Coo => {
                // The Arrow schema goes in the metadata as arrow's writer stores it, so pyarrow
                // and pandas see the same types and schema metadata.
                add_encoded_arrow_schema_to_metadata(&schema, &mut props);
                let descr = Arc::new(ArrowSchemaConverter::new().convert(&schema).map_err(start_err)?);
                let props = Arc::new(props);
                let file = SerializedFileWriter::new(out, descr.root_schema_ptr(), props.clone()).map_err(start_err)?;
                let ints = |t: &DataType| {
                    if t == &DataType::Int32 {
                        Column::I32(Vec::new())
                    } else {
                        Column::I64(Vec::new())
                    }
                };
                let table = |labels: &Option<SharedLabels>| labels.as_deref().map(LabelTable::new);
                let encoder = Encoder {
                    file,
                    descr,
                    props,
                    value_dict,
                    row_labels: table(&header.row_labels),
                    col_labels: table(&header.col_labels),
                    bufs: Vec::new(),
                };
                let group = Group {
                    rows: ints(schema.field(0).data_type()),
                    cols: ints(schema.field(1).data_type()),
                    values: Column::for_dtype(header.dtype),
                };
                Writer::Coo(Box::new(
                    CooWriter::start(encoder, group).map_err(io_err(&path, "start a writing thread"))?,
                ))
            }
            Layout::List => Writer::Arrow(Box::new(
                ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(start_err)?,
            )),
        };
        Ok(ParquetSink {
            path,
            tmp,
            writer,
            schema,
            dtype: header.dtype,
            n_rows: header.n_rows,
            n_cols: header.n_cols,
            // The COO writer keeps its own copy of the labels, as Parquet byte arrays.
            row_labels: header.row_labels.clone().filter(|_| layout == Layout::List),
            every_row: layout == Layout::List && row_labels_kept == Some(false),
            next_row: 0,
            in_group: 0,
            target: opts.row_group_entries.max(1),
        })
    }

    /// Where the file will appear.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// List layout: one batch of records to arrow's writer.
    fn write_batch(&mut self, columns: Vec<ArrayRef>) -> Result<()> {
        let batch = RecordBatch::try_new(self.schema.clone(), columns).map_err(|source| crate::Error::Batch {
            path: self.path.clone(),
            source,
        })?;
        let Writer::Arrow(w) = &mut self.writer else {
            unreachable!("record batches are built for the list layout only")
        };
        w.write(&batch).map_err(|source| write_err(&self.path, "write", source))
    }

    fn close_row_group(&mut self) -> Result<()> {
        match &mut self.writer {
            Writer::Arrow(w) => w.flush(),
            Writer::Coo(w) => w.flush_group(),
        }
        .map_err(|source| write_err(&self.path, "write a row group", source))?;
        self.in_group = 0;
        Ok(())
    }

    /// Rows `k0..k1` of the block as one batch.
    fn write_rows_range(&mut self, b: &RowBlock, k0: usize, k1: usize) -> Result<()> {
        let (s, e) = (b.indptr[k0] as usize, b.indptr[k1] as usize);
        let values = b.values.as_values().slice(s..e);
        if let Writer::Coo(w) = &mut self.writer {
            w.append(b, k0, k1, values);
            self.next_row = b.rows[k1 - 1] + 1;
            return Ok(());
        }
        // List layout. Records: (row, first entry, end entry), with empty records for
        // skipped rows when every row must have one.
        let mut recs = Vec::with_capacity(k1 - k0);
        for k in k0..k1 {
            if self.every_row {
                recs.extend((self.next_row..b.rows[k]).map(|r| (r, b.indptr[k], b.indptr[k])));
            }
            recs.push((b.rows[k], b.indptr[k], b.indptr[k + 1]));
            self.next_row = b.rows[k] + 1;
        }
        let columns = self.list_columns(&recs, &b.indices[s..e], values);
        self.write_batch(columns)
    }

    /// List-layout columns of records `(row, start, end)`, whose entries are the consecutive
    /// `indices` and `values`.
    fn list_columns(&self, recs: &[(u64, u64, u64)], indices: &[u64], values: Values<'_>) -> Vec<ArrayRef> {
        let mut offsets = Vec::with_capacity(recs.len() + 1);
        offsets.push(0i32);
        for &(_, s, e) in recs {
            let last = *offsets.last().unwrap_or(&0);
            offsets.push(last + (e - s) as i32);
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        let index_values: ArrayRef = match self.schema.field(1).data_type() {
            DataType::List(f) if f.data_type() == &DataType::Int32 => {
                Arc::new(Int32Array::from(indices.iter().map(|&c| c as i32).collect::<Vec<_>>()))
            }
            _ => Arc::new(Int64Array::from(indices.iter().map(|&c| c as i64).collect::<Vec<_>>())),
        };
        let value_values = value_array(values);
        let list = |child: ArrayRef| -> ArrayRef {
            let field = item(child.data_type().clone());
            Arc::new(ListArray::new(field, offsets.clone(), child, None))
        };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(recs.iter().map(|r| r.0 as i64).collect::<Vec<_>>())),
            list(index_values),
            list(value_values),
        ];
        if let Some(l) = &self.row_labels {
            // One record per row: a dictionary of this batch's labels, each used once.
            let mut sb = StringBuilder::new();
            for r in recs {
                sb.append_value(&l[r.0 as usize]);
            }
            let keys = Int32Array::from_iter_values(0..recs.len() as i32);
            let dict = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(sb.finish()))
                .expect("every key is below the number of values");
            columns.push(Arc::new(dict));
        }
        columns
    }

    fn check(&self, b: &RowBlock) -> Result<()> {
        let n = b.rows.len();
        b.check_lengths()?;
        if b.values.dtype() != self.dtype {
            return Err(Error::DTypeMismatch {
                actual: self.dtype,
                requested: b.values.dtype(),
            });
        }
        let mut next = self.next_row;
        for k in 0..n {
            let r = b.rows[k];
            if r < next {
                return Err(Error::RowOrder {
                    row: r,
                    previous: next.saturating_sub(1),
                });
            }
            next = r + 1;
            if r >= self.n_rows {
                return Err(Error::RowOutOfRange {
                    row: r,
                    n_rows: self.n_rows,
                });
            }
            let (s, e) = (b.indptr[k], b.indptr[k + 1]);
            if s > e || e > b.indices.len() as u64 {
                return Err(Error::BadIndex {
                    what: "indptr entry (not monotone)",
                    value: e.to_string(),
                });
            }
            let row = &b.indices[s as usize..e as usize];
            for (j, &c) in row.iter().enumerate() {
                if c >= self.n_cols {
                    return Err(Error::ColOutOfRange {
                        row: r,
                        col: c,
                        n_cols: self.n_cols,
                    });
                }
                if j > 0 && row[j - 1] >= c {
                    return Err(Error::UnsortedIndices {
                        row: r,
                        previous: row[j - 1],
                        col: c,
                    });
                }
            }
        }
        Ok(())
    }
}

impl MatrixSink for ParquetSink {
    fn write_rows(&mut self, b: &RowBlock) -> Result<()> {
        self.check(b)?;
        let n = b.rows.len();
        let mut k0 = 0;
        while k0 < n {
            // Rows up to BATCH_ENTRIES entries (at least one row), stopping early where the
            // row group reaches its hard limit.
            let mut k1 = k0;
            let mut entries = 0usize;
            while k1 < n {
                let len = (b.indptr[k1 + 1] - b.indptr[k1]) as usize;
                if k1 > k0 && (entries + len > BATCH_ENTRIES || self.in_group + entries + len > 2 * self.target) {
                    break;
                }
                entries += len;
                k1 += 1;
            }
            self.write_rows_range(b, k0, k1)?;
            self.in_group += entries;
            if self.in_group >= 2 * self.target {
                self.close_row_group()?;
            }
            k0 = k1;
        }
        // Block boundary: the source's chunk ends here.
        if self.in_group >= self.target {
            self.close_row_group()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        if self.every_row && self.next_row < self.n_rows {
            // Empty records for the trailing rows, so each carries its label.
            while self.next_row < self.n_rows {
                let end = self.n_rows.min(self.next_row + BATCH_ENTRIES as u64);
                let recs: Vec<_> = (self.next_row..end).map(|r| (r, 0, 0)).collect();
                let columns = self.list_columns(&recs, &[], vecfmt::ValueVec::new(self.dtype).as_values());
                self.write_batch(columns)?;
                self.next_row = end;
            }
        }
        let ParquetSink { path, tmp, writer, .. } = *self;
        let buf = match writer {
            Writer::Arrow(w) => w.into_inner(),
            Writer::Coo(w) => w
                .finish()
                .map_err(|source| write_err(&path, "write a row group", source))?
                .into_inner(),
        }
        .map_err(|source| write_err(&path, "finish the file", source))?;
        let file = buf.into_inner().map_err(|e| io_err(&path, "write")(e.into_error()))?;
        drop(file);
        vecfmt::publish::persist(tmp, &path)
    }
}

/// Where the records go.
#[derive(Debug)]
enum Writer {
    /// The list layout, through arrow's writer (its nested columns need arrow's levels).
    Arrow(Box<ArrowWriter<BufWriter<File>>>),
    /// The COO layout: flat required columns, straight into Parquet's column writers.
    Coo(Box<CooWriter>),
}

/// A label as a JSON string.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The bytes of the labels as one JSON array.
fn labels_json_len(labels: &[String]) -> u64 {
    labels.iter().map(|s| json_string(s).len() as u64 + 1).sum::<u64>() + 1
}

/// Labels as JSON arrays of consecutive labels, each at most `max` bytes (a label longer than
/// that makes a part of its own).
fn label_parts(labels: &[String], max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::from("[");
    for l in labels {
        let j = json_string(l);
        // With the comma before it and the closing bracket after it.
        if cur.len() > 1 && cur.len() + 1 + j.len() + 1 > max {
            cur.push(']');
            parts.push(std::mem::replace(&mut cur, String::from("[")));
        }
        if cur.len() > 1 {
            cur.push(',');
        }
        cur.push_str(&j);
    }
    cur.push(']');
    parts.push(cur);
    parts
}

/// Label columns: dictionary-encoded strings, which pandas reads as categoricals. The
/// dictionary of each row group holds the labels that row group uses.
fn label_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// int32 while every index fits it (what scipy and pandas use for such shapes), else int64.
fn index_type_for(len: u64) -> DataType {
    if len <= i32::MAX as u64 + 1 {
        DataType::Int32
    } else {
        DataType::Int64
    }
}

fn item(t: DataType) -> FieldRef {
    Arc::new(Field::new("element", t, false))
}

/// The Arrow type of a dtype.
pub(crate) fn arrow_type(dtype: DType) -> DataType {
    match dtype {
        DType::F32 => DataType::Float32,
        DType::F64 => DataType::Float64,
        DType::I32 => DataType::Int32,
        DType::I64 => DataType::Int64,
        DType::U32 => DataType::UInt32,
        DType::U64 => DataType::UInt64,
    }
}

fn value_array(v: Values<'_>) -> ArrayRef {
    match v {
        Values::F32(s) => Arc::new(Float32Array::from(s.to_vec())),
        Values::F64(s) => Arc::new(Float64Array::from(s.to_vec())),
        Values::I32(s) => Arc::new(Int32Array::from(s.to_vec())),
        Values::I64(s) => Arc::new(Int64Array::from(s.to_vec())),
        Values::U32(s) => Arc::new(UInt32Array::from(s.to_vec())),
        Values::U64(s) => Arc::new(UInt64Array::from(s.to_vec())),
    }
}

/// A failure in the parquet crate's writer, at `step` ("write a row group").
fn write_err(path: &Path, step: &'static str, source: ParquetError) -> vecfmt::Error {
    crate::Error::Write {
        path: path.to_path_buf(),
        step,
        source,
    }
    .into()
}
