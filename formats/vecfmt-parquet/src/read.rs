//! [`ParquetSource`]: a Parquet file or dataset directory in, batch by batch.
//!
//! Opening reads every file's footer, recognises the columns and settles the header. When
//! the header needs facts the footers do not give (string labels, a maximum index without
//! statistics, whether records come sorted by row), one first pass reads just the columns
//! concerned. Then [`MatrixSource::next_block`] reads bounded batches: row blocks when the
//! records are sorted by row, triplet blocks otherwise.

use std::collections::HashMap;
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use vecfmt::stream::{Block, MatrixHeader, MatrixSource, RowBlock, TripletBlock};
use vecfmt::{with_value_vec, Axis, DType, Element, Error, Result, ValueVec};

use crate::arrays::{self, IndexKind};
use crate::dataset::{self, Part, HIVE_NULL};
use crate::{foreign, keys, RECOGNISED_COLUMNS};

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
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            row_col: None,
            col_col: None,
            value_col: None,
            batch_size: 1 << 16,
            memory: 1 << 30,
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

/// Strings to dense ids, in order of first appearance, within a memory budget.
#[derive(Debug, Default)]
struct LabelMap {
    ids: HashMap<String, u64>,
    labels: Vec<String>,
}

impl LabelMap {
    fn seeded(labels: Vec<String>) -> Self {
        let ids = labels.iter().enumerate().map(|(k, s)| (s.clone(), k as u64)).collect();
        LabelMap { ids, labels }
    }
    fn id(&mut self, s: &str, used: &mut u64) -> u64 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.labels.len() as u64;
        self.ids.insert(s.to_owned(), id);
        self.labels.push(s.to_owned());
        *used += label_bytes(s);
        id
    }
}

/// Heap bytes of one label held twice (list and map key) plus the map entry.
fn label_bytes(s: &str) -> u64 {
    2 * s.len() as u64 + 96
}

/// Reads a Parquet file, or a directory of them, as a matrix.
#[derive(Debug)]
pub struct ParquetSource {
    root: PathBuf,
    parts: Vec<PartMeta>,
    plan: Plan,
    header: MatrixHeader,
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
            .map_err(|e| foreign(&part.path, format!("not a readable Parquet file: {e}")))?;
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
                let (r, c) = parsed.ok_or_else(|| {
                    foreign(
                        &p.part.path,
                        format!("key-value metadata {}={s:?} is not [n_rows, n_cols]", keys::SHAPE),
                    )
                })?;
                shape = Some(shape.map_or((r, c), |(r0, c0)| (r0.max(r), c0.max(c))));
            }
        }
        let metadata = match first.kv(keys::METADATA) {
            Some(s) => Some(
                serde_json::from_str::<serde_json::Value>(s)
                    .ok()
                    .filter(|v| v.is_object())
                    .ok_or_else(|| {
                        foreign(
                            &first.part.path,
                            format!("key-value metadata {} is not a JSON object", keys::METADATA),
                        )
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
                serde_json::from_str::<Vec<String>>(s).map_err(|_| {
                    foreign(
                        &first.part.path,
                        format!("key-value metadata {key} is not a JSON array of strings"),
                    )
                })
            };
            if let Some(s) = first.kv(key) {
                return parse(key, s).map(Some);
            }
            // Labels too large for one entry: split into parts (see `keys::ROW_LABELS`).
            let parts_key = format!("{key}{}", keys::PARTS_SUFFIX);
            let Some(n) = first.kv(&parts_key) else {
                return Ok(None);
            };
            let n: usize = n.parse().map_err(|_| {
                foreign(
                    &first.part.path,
                    format!("key-value metadata {parts_key}={n:?} is not a number of parts"),
                )
            })?;
            let mut labels = Vec::new();
            for k in 0..n {
                let part_key = format!("{key}.{k}");
                let s = first.kv(&part_key).ok_or_else(|| {
                    foreign(
                        &first.part.path,
                        format!("key-value metadata {parts_key} says {n} parts, but {part_key} is missing"),
                    )
                })?;
                labels.extend(parse(&part_key, s)?);
            }
            Ok(Some(labels))
        };
        let meta_row_labels = meta_labels(keys::ROW_LABELS)?;
        let meta_col_labels = meta_labels(keys::COL_LABELS)?;

        let mut src = ParquetSource {
            root,
            header: MatrixHeader::new(dtype, 0, 0),
            parts,
            plan,
            row_map: None,
            col_map: None,
            rows_mode: false,
            sort_declared: false,
            batch_size: opts.batch_size.max(1),
            next_part: 0,
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

    /// Shape, labels and row order, from footers and, when needed, one first pass.
    fn settle_header(
        &mut self,
        shape: Option<(u64, u64)>,
        meta_row_labels: Option<Vec<String>>,
        meta_col_labels: Option<Vec<String>>,
        memory: u64,
    ) -> Result<()> {
        let row_role = self.row_role().cloned();
        let (col_role, row_label_col, col_label_col, list_label) = match &self.plan {
            Plan::Coo {
                col,
                row_label,
                col_label,
                ..
            } => (Some(col.clone()), row_label.clone(), col_label.clone(), None),
            Plan::List { label, .. } => (None, None, None, label.clone()),
        };
        let is_list = matches!(self.plan, Plan::List { .. });

        // Declared order: a file vecfmt wrote, or row groups that list the row column first
        // in their sorting columns. Checked while reading.
        if let (Some(role), [p]) = (&row_role, self.parts.as_slice()) {
            let by_kv = p
                .kv(keys::SORTED)
                .is_some_and(|s| s.split(',').next() == Some("row") && role.name == "row");
            let leaf = p
                .meta
                .parquet_schema()
                .columns()
                .iter()
                .position(|c| c.path().parts() == [role.name.clone()]);
            let groups = p.meta.metadata().row_groups();
            let by_sorting_columns = leaf.is_some()
                && !groups.is_empty()
                && groups.iter().all(|g| {
                    g.sorting_columns()
                        .and_then(|s| s.first())
                        .is_some_and(|s| Some(s.column_idx as usize) == leaf && !s.descending)
                });
            self.sort_declared = by_kv || by_sorting_columns;
        }

        // Maxima from statistics, where every row group has them.
        let int_role = |r: &Option<Role>| r.as_ref().filter(|r| r.kind == IndexKind::Int).cloned();
        let row_stats = int_role(&row_role).and_then(|r| self.stat_ranges(&r.name));
        let col_stats = int_role(&col_role).and_then(|r| self.stat_ranges(&r.name));

        let row_str = row_role.as_ref().is_some_and(|r| r.kind == IndexKind::Str);
        let col_str = col_role.as_ref().is_some_and(|r| r.kind == IndexKind::Str);
        let need_row_max =
            row_role.as_ref().is_some_and(|r| r.kind == IndexKind::Int) && shape.is_none() && row_stats.is_none();
        let need_col_max = if is_list {
            shape.is_none()
        } else {
            col_role.as_ref().is_some_and(|r| r.kind == IndexKind::Int) && shape.is_none() && col_stats.is_none()
        };
        // Row order: declared, or to be checked in the first pass unless statistics show
        // row groups overlapping.
        let stats_unsorted = row_stats
            .as_ref()
            .is_some_and(|s| s.windows(2).any(|w| w[0].1 > w[1].0));
        let check_order = row_role.is_some() && !self.sort_declared && !stats_unsorted;
        let row_labels_by_index = row_role.as_ref().is_some_and(|r| r.kind == IndexKind::Int)
            && meta_row_labels.is_none()
            && (row_label_col.is_some() || list_label.is_some());
        let ordinal_labels = row_role.is_none() && list_label.is_some() && meta_row_labels.is_none();
        let col_labels_by_index = meta_col_labels.is_none() && col_label_col.is_some();

        let mut first = FirstPass {
            row_map: row_str.then(|| meta_row_labels.clone().map(LabelMap::seeded).unwrap_or_default()),
            col_map: col_str.then(|| meta_col_labels.clone().map(LabelMap::seeded).unwrap_or_default()),
            row_max: None,
            col_max: None,
            sorted: true,
            prev_row: None,
            row_labels: HashMap::new(),
            col_labels: HashMap::new(),
            used: 0,
            memory,
        };
        let need_pass = row_str
            || col_str
            || need_row_max
            || need_col_max
            || check_order
            || row_labels_by_index
            || ordinal_labels
            || col_labels_by_index;
        if need_pass {
            let want = Want {
                row: row_role
                    .clone()
                    .filter(|_| row_str || need_row_max || check_order || row_labels_by_index),
                col: col_role.clone().filter(|_| col_str || need_col_max),
                list_indices: match &self.plan {
                    Plan::List { indices, .. } if need_col_max => Some(indices.clone()),
                    _ => None,
                },
                row_label: if row_labels_by_index || ordinal_labels {
                    row_label_col.clone().or(list_label.clone())
                } else {
                    None
                },
                col_label: col_label_col.clone().filter(|_| col_labels_by_index),
                col_for_labels: col_labels_by_index,
            };
            self.first_pass(&want, &mut first)?;
        }

        // Shape.
        let n_rows = match (&row_role, &first.row_map) {
            (_, Some(m)) => m.labels.len() as u64,
            (None, _) => shape.map_or(self.parts.iter().map(PartMeta::records).sum(), |s| s.0),
            (Some(_), None) => shape.map(|s| s.0).unwrap_or_else(|| {
                let stat_max = row_stats.as_ref().and_then(|s| s.iter().map(|x| x.1).max());
                first.row_max.or(stat_max).map_or(0, |m| m.saturating_add(1))
            }),
        };
        let n_cols = match &first.col_map {
            Some(m) => m.labels.len() as u64,
            None => shape.map(|s| s.1).unwrap_or_else(|| {
                let stat_max = col_stats.as_ref().and_then(|s| s.iter().map(|x| x.1).max());
                first.col_max.or(stat_max).map_or(0, |m| m.saturating_add(1))
            }),
        };
        for (n, axis) in [(n_rows, Axis::Row), (n_cols, Axis::Col)] {
            if n == u64::MAX {
                return Err(foreign(
                    &self.root,
                    format!("a {axis} index of {} leaves no room for a shape", u64::MAX),
                ));
            }
        }
        self.header.n_rows = n_rows;
        self.header.n_cols = n_cols;

        // Labels.
        let used = first.used;
        let by_index = |map: HashMap<u64, String>, n: u64, axis: Axis, root: &Path| -> Result<Vec<String>> {
            // One label per index, most of them possibly placeholders: within the budget.
            let needed = n
                .saturating_mul(2 * std::mem::size_of::<String>() as u64 + 8)
                .saturating_add(used);
            if needed > memory {
                return Err(over_budget(root, needed, memory));
            }
            let mut labels: Vec<Option<String>> = vec![None; n as usize];
            for (k, s) in map {
                if let Some(slot) = labels.get_mut(k as usize) {
                    *slot = Some(s);
                }
            }
            // Rows or columns without records carry no label in the data: they get their
            // index as label, unless a real label already is that string.
            let taken: std::collections::HashSet<&str> = labels.iter().flatten().map(String::as_str).collect();
            let mut clash = None;
            let out: Vec<String> = labels
                .iter()
                .enumerate()
                .map(|(k, l)| match l {
                    Some(s) => s.clone(),
                    None => {
                        let s = k.to_string();
                        if taken.contains(s.as_str()) {
                            clash = Some(s.clone());
                        }
                        s
                    }
                })
                .collect();
            if let Some(s) = clash {
                return Err(foreign(
                    root,
                    format!("{axis} {s} has no records and so no label, and its index as label ({s:?}) is another {axis}'s label"),
                ));
            }
            Ok(out)
        };
        let root = self.root.clone();
        self.header.row_labels = if let Some(m) = first.row_map.take() {
            self.row_map = Some(m.ids);
            Some(m.labels)
        } else if let Some(l) = meta_row_labels {
            Some(l)
        } else if row_labels_by_index || ordinal_labels {
            Some(by_index(
                std::mem::take(&mut first.row_labels),
                n_rows,
                Axis::Row,
                &root,
            )?)
        } else {
            None
        };
        self.header.col_labels = if let Some(m) = first.col_map.take() {
            self.col_map = Some(m.ids);
            Some(m.labels)
        } else if let Some(l) = meta_col_labels {
            Some(l)
        } else if col_labels_by_index {
            Some(by_index(
                std::mem::take(&mut first.col_labels),
                n_cols,
                Axis::Col,
                &root,
            )?)
        } else {
            None
        };
        for (labels, n, key) in [
            (&self.header.row_labels, n_rows, keys::ROW_LABELS),
            (&self.header.col_labels, n_cols, keys::COL_LABELS),
        ] {
            if let Some(l) = labels {
                if l.len() as u64 != n {
                    return Err(foreign(
                        &self.root,
                        format!(
                            "{} labels for {n} indices (key-value metadata {key} disagrees with the shape)",
                            l.len()
                        ),
                    ));
                }
            }
        }

        self.rows_mode = match &row_role {
            None => true,
            Some(_) if self.sort_declared => true,
            Some(_) if stats_unsorted => false,
            Some(_) => check_order && first.sorted,
        };
        Ok(())
    }

    /// `(min, max)` of an integer column per row group, over every file, when every row
    /// group has both statistics (a partition key gives its value).
    fn stat_ranges(&self, name: &str) -> Option<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        for p in &self.parts {
            if !p.has_column(name) {
                let v = p.part.partition(name)?.parse::<u64>().ok()?;
                out.push((v, v));
                continue;
            }
            let conv = StatisticsConverter::try_new(name, p.meta.schema(), p.meta.parquet_schema()).ok()?;
            let groups = p.meta.metadata().row_groups();
            let mins = conv.row_group_mins(groups.iter()).ok()?;
            let maxes = conv.row_group_maxes(groups.iter()).ok()?;
            let (mut lo, mut hi) = (Vec::new(), Vec::new());
            arrays::append_indices(mins.as_ref(), &mut lo).ok()?;
            arrays::append_indices(maxes.as_ref(), &mut hi).ok()?;
            out.extend(lo.into_iter().zip(hi));
        }
        Some(out)
    }

    fn first_pass(&mut self, want: &Want, st: &mut FirstPass) -> Result<()> {
        for pi in 0..self.parts.len() {
            let p = &self.parts[pi];
            let path = p.part.path.clone();
            let mut columns: Vec<&str> = Vec::new();
            for name in [
                want.row.as_ref().map(|r| r.name.as_str()),
                want.col.as_ref().map(|r| r.name.as_str()),
                want.list_indices.as_deref(),
                want.row_label.as_deref(),
                want.col_label.as_deref(),
            ]
            .into_iter()
            .flatten()
            {
                if p.has_column(name) && !columns.contains(&name) {
                    columns.push(name);
                }
            }
            // Label columns are keyed by the index column next to them.
            if want.row_label.is_some() {
                if let Some(r) = self.row_role() {
                    if p.has_column(&r.name) && !columns.contains(&r.name.as_str()) {
                        columns.push(&r.name);
                    }
                }
            }
            if want.col_for_labels {
                if let Plan::Coo { col, .. } = &self.plan {
                    if p.has_column(&col.name) && !columns.contains(&col.name.as_str()) {
                        columns.push(&col.name);
                    }
                }
            }
            let columns: Vec<String> = columns.into_iter().map(str::to_owned).collect();
            let mut reader = self.part_reader(pi, &columns)?;
            let mut offset = 0u64;
            let mut ids = Vec::new();
            loop {
                let batch = match next_batch(&path, &mut reader)? {
                    Some(b) => b,
                    None => break,
                };
                let n = batch.num_rows();
                // Row ids.
                let row_ids: Option<Vec<u64>> = match self.row_role() {
                    Some(r) if want.row.is_some() || want.row_label.is_some() => {
                        ids.clear();
                        let r = r.clone();
                        self.index_ids(pi, &batch, &r, offset, &mut ids, st.row_map.as_mut(), &mut st.used)?;
                        Some(std::mem::take(&mut ids))
                    }
                    None if want.row_label.is_some() => {
                        let base = self.records_before + offset;
                        Some((base..base + n as u64).collect())
                    }
                    _ => None,
                };
                if let Some(rows) = &row_ids {
                    if let Some(&m) = rows.iter().max() {
                        st.row_max = Some(st.row_max.map_or(m, |x| x.max(m)));
                    }
                    for &r in rows {
                        if st.prev_row.is_some_and(|p| r < p) {
                            st.sorted = false;
                        }
                        st.prev_row = Some(r);
                    }
                    if let Some(lc) = &want.row_label {
                        let a = column(&path, &batch, lc)?;
                        collect_labels(&path, a, lc, rows, &mut st.row_labels, &mut st.used, offset, Axis::Row)?;
                    }
                }
                // Column ids.
                let col_role = match &self.plan {
                    Plan::Coo { col, .. } if want.col.is_some() || want.col_for_labels => Some(col.clone()),
                    _ => None,
                };
                if let Some(c) = col_role {
                    ids.clear();
                    self.index_ids(pi, &batch, &c, offset, &mut ids, st.col_map.as_mut(), &mut st.used)?;
                    if let Some(&m) = ids.iter().max() {
                        st.col_max = Some(st.col_max.map_or(m, |x| x.max(m)));
                    }
                    if let Some(lc) = &want.col_label {
                        let a = column(&path, &batch, lc)?;
                        collect_labels(&path, a, lc, &ids, &mut st.col_labels, &mut st.used, offset, Axis::Col)?;
                    }
                }
                if let Some(li) = &want.list_indices {
                    let a = column(&path, &batch, li)?;
                    let (_, child) = list_parts(&path, a, li, offset)?;
                    ids.clear();
                    arrays::append_indices(child.as_ref(), &mut ids)
                        .map_err(|p| foreign(&path, p.describe(&format!("{li} (list items)"), offset)))?;
                    if let Some(&m) = ids.iter().max() {
                        st.col_max = Some(st.col_max.map_or(m, |x| x.max(m)));
                    }
                }
                if st.used > st.memory {
                    return Err(over_budget(&path, st.used, st.memory));
                }
                offset += n as u64;
            }
            self.records_before += offset;
        }
        self.records_before = 0;
        Ok(())
    }

    /// A reader of part `pi` over `columns` (top-level names present in the file).
    fn part_reader(&self, pi: usize, columns: &[String]) -> Result<ParquetRecordBatchReader> {
        let p = &self.parts[pi];
        let path = &p.part.path;
        let schema = p.meta.schema();
        let roots: Vec<usize> = columns.iter().filter_map(|c| schema.index_of(c).ok()).collect();
        let file = StrictFile::open(path)?;
        let schema_descr = p.meta.parquet_schema();
        let leaves: Vec<usize> = (0..schema_descr.num_columns())
            .filter(|&l| roots.contains(&schema_descr.get_column_root_idx(l)))
            .collect();
        crate::pages::check(path, &file.file, file.len, p.meta.metadata(), &leaves)?;
        let mask = ProjectionMask::roots(p.meta.parquet_schema(), roots);
        let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, p.meta.clone())
            .with_projection(mask)
            .with_batch_size(self.batch_size);
        guard(path, || builder.build())?.map_err(|e| foreign(path, format!("cannot read: {e}")))
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
                return Err(foreign(
                    path,
                    format!("partition {}= is null (its directory is {HIVE_NULL})", role.name),
                ));
            }
            let id = match (role.kind, map) {
                (IndexKind::Int, _) => v.parse::<u64>().map_err(|_| {
                    foreign(
                        path,
                        format!("partition value {}={v} is not a non-negative integer index", role.name),
                    )
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
                arrays::append_indices(a.as_ref(), out).map_err(|e| foreign(path, e.describe(&role.name, offset)))
            }
            (IndexKind::Str, Some(m)) => {
                let res = arrays::append_string_ids::<std::convert::Infallible>(a.as_ref(), out, |s| Ok(m.id(s, used)))
                    .map_err(|e| foreign(path, e.describe(&role.name, offset)))?;
                match res {
                    Ok(()) => Ok(()),
                    Err(never) => match never {},
                }
            }
            (IndexKind::Str, None) => {
                arrays::append_string_ids(a.as_ref(), out, |s| self.known_id(path, &role.name, s))
                    .map_err(|e| foreign(path, e.describe(&role.name, offset)))?
            }
        }
    }

    fn known_id(&self, path: &Path, column: &str, label: &str) -> Result<u64> {
        let map = if self.row_role().is_some_and(|r| r.name == column) {
            self.row_map.as_ref()
        } else {
            self.col_map.as_ref()
        };
        map.and_then(|m| m.get(label).copied()).ok_or_else(|| {
            foreign(
                path,
                format!("label {label:?} in column {column:?} was not there in the first pass (did the file change?)"),
            )
        })
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
                self.reader = Some(self.part_reader(self.next_part, &columns)?);
                self.part_records = 0;
            }
            let pi = self.next_part;
            let path = self.parts[pi].part.path.clone();
            let batch = match next_batch(&path, self.reader.as_mut().expect("a reader is open"))? {
                Some(b) => b,
                None => {
                    self.reader = None;
                    self.bytes_done += self.parts[pi].part.size;
                    self.records_before += self.part_records;
                    self.next_part += 1;
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
                arrays::append_values(a.as_ref(), &mut values).map_err(|e| foreign(path, e.describe(value, offset)))?;
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
                        return Err(foreign(
                            path,
                            format!("record {}: {il} indices but {vl} values", offset + k as u64),
                        ));
                    }
                    rows.extend(std::iter::repeat_n(record_rows[k], il));
                }
                arrays::append_indices(ichild.as_ref(), &mut cols)
                    .map_err(|e| foreign(path, e.describe(&format!("{indices} (list items)"), offset)))?;
                arrays::append_values(vchild.as_ref(), &mut values)
                    .map_err(|e| foreign(path, e.describe(&format!("{vcol} (list items)"), offset)))?;
            }
        }
        let (n_rows, n_cols) = (self.header.n_rows, self.header.n_cols);
        if let Some(k) = rows.iter().position(|&r| r >= n_rows) {
            return Err(foreign(
                path,
                format!(
                    "row index {} is out of range: the matrix has {n_rows} rows{}",
                    rows[k],
                    self.shape_source()
                ),
            ));
        }
        if let Some(k) = cols.iter().position(|&c| c >= n_cols) {
            return Err(foreign(
                path,
                format!(
                    "column index {} is out of range: the matrix has {n_cols} columns{}",
                    cols[k],
                    self.shape_source()
                ),
            ));
        }
        Ok(TripletBlock { rows, cols, values })
    }

    fn shape_source(&self) -> &'static str {
        if self.parts.iter().any(|p| p.kv(keys::SHAPE).is_some()) {
            " (the shape in the file's vecfmt.shape metadata)"
        } else {
            " (by the row group statistics)"
        }
    }
}

/// What the first pass reads.
#[derive(Debug)]
struct Want {
    row: Option<Role>,
    col: Option<Role>,
    list_indices: Option<String>,
    /// A label column keyed by the row index (or the record ordinal).
    row_label: Option<String>,
    col_label: Option<String>,
    col_for_labels: bool,
}

/// What the first pass found.
#[derive(Debug)]
struct FirstPass {
    row_map: Option<LabelMap>,
    col_map: Option<LabelMap>,
    row_max: Option<u64>,
    col_max: Option<u64>,
    sorted: bool,
    prev_row: Option<u64>,
    row_labels: HashMap<u64, String>,
    col_labels: HashMap<u64, String>,
    used: u64,
    memory: u64,
}

#[expect(
    clippy::too_many_arguments,
    reason = "names the file, column, axis and record in its errors"
)]
fn collect_labels(
    path: &Path,
    a: &ArrayRef,
    column: &str,
    ids: &[u64],
    into: &mut HashMap<u64, String>,
    used: &mut u64,
    offset: u64,
    axis: Axis,
) -> Result<()> {
    let mut clash = None;
    arrays::each_string(a.as_ref(), |k, s| {
        if clash.is_some() {
            return;
        }
        let id = ids[k];
        match into.get(&id) {
            Some(old) if old != s => clash = Some((id, old.clone(), s.to_owned(), k)),
            Some(_) => {}
            None => {
                *used += label_bytes(s);
                into.insert(id, s.to_owned());
            }
        }
    })
    .map_err(|e| foreign(path, e.describe(column, offset)))?;
    match clash {
        Some((id, a, b, k)) => Err(foreign(
            path,
            format!(
                "{axis} {id} has two labels in column {column:?}: {a:?} and {b:?} (record {})",
                offset + k as u64
            ),
        )),
        None => Ok(()),
    }
}

/// A named column of a batch.
fn column<'b>(path: &Path, batch: &'b RecordBatch, name: &str) -> Result<&'b ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| foreign(path, format!("column {name:?} is missing from this file")))
}

/// Offsets (from 0) and the child values of a list column, refusing null lists.
fn list_parts(path: &Path, a: &ArrayRef, name: &str, offset: u64) -> Result<(Vec<usize>, ArrayRef)> {
    if let Some(n) = a.logical_nulls() {
        if let Some(k) = n.iter().position(|v| !v) {
            return Err(foreign(
                path,
                format!("column {name:?} holds a null list at record {}", offset + k as u64),
            ));
        }
    }
    let (offs, values): (Vec<usize>, &ArrayRef) = if let Some(l) = a.as_list_opt::<i32>() {
        (l.value_offsets().iter().map(|&o| o as usize).collect(), l.values())
    } else if let Some(l) = a.as_list_opt::<i64>() {
        (l.value_offsets().iter().map(|&o| o as usize).collect(), l.values())
    } else {
        return Err(foreign(
            path,
            format!("column {name:?} has type {}, not a list", a.data_type()),
        ));
    };
    let first = offs.first().copied().unwrap_or(0);
    let last = offs.last().copied().unwrap_or(0);
    let child = values.slice(first, last - first);
    Ok((offs.into_iter().map(|o| o - first).collect(), child))
}

/// A Parquet file for the parquet crate's readers, where a read past the end of the file is
/// an error rather than an empty read. The crate's Thrift reader skips a field of a page
/// header by copying its length from the stream, and takes an empty copy at the end of the
/// file for success: found by fuzzing, a 1,551-byte file whose page header declares a list
/// of 2^31 doubles kept vecfmt in 2^31 empty reads for 81 s. Nothing the crate reads
/// legitimately lies at the end of the file (the footer is read whole, first).
#[derive(Debug)]
struct StrictFile {
    file: File,
    len: u64,
}

impl StrictFile {
    fn open(path: &Path) -> Result<StrictFile> {
        let file = File::open(path).map_err(crate::io_err(path, "open"))?;
        let len = file.metadata().map_err(crate::io_err(path, "stat"))?.len();
        Ok(StrictFile { file, len })
    }
}

impl parquet::file::reader::Length for StrictFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl parquet::file::reader::ChunkReader for StrictFile {
    type T = StrictRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<StrictRead> {
        use std::io::{Seek, SeekFrom};
        let left = self.len.checked_sub(start).ok_or_else(|| {
            parquet::errors::ParquetError::EOF(format!("offset {start} is past the end of the file ({})", self.len))
        })?;
        let mut f = self.file.try_clone()?;
        f.seek(SeekFrom::Start(start))?;
        Ok(StrictRead {
            inner: std::io::BufReader::new(f),
            left,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        use std::os::unix::fs::FileExt;
        if start.checked_add(length as u64).is_none_or(|end| end > self.len) {
            return Err(parquet::errors::ParquetError::EOF(format!(
                "bytes {start}+{length} lie past the end of the file ({})",
                self.len
            )));
        }
        let mut buf = vec![0u8; length];
        self.file.read_exact_at(&mut buf, start)?;
        Ok(buf.into())
    }
}

/// A reader of a [`StrictFile`] from an offset: see there.
struct StrictRead {
    inner: std::io::BufReader<File>,
    /// Bytes between the position and the end of the file.
    left: u64,
}

impl std::io::Read for StrictRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "a read past the end of the file",
            ));
        }
        let cap = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..cap])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The labels would take more than the memory budget (or a damaged index claims they do):
/// an error that names the file, as every error about an input does.
fn over_budget(path: &Path, needed: u64, budget: u64) -> Error {
    foreign(
        path,
        format!("its labels need {needed} bytes of memory, over the budget of {budget} bytes; raise --memory"),
    )
}

/// Runs a parquet call that might panic on a malformed file, turning a panic into an error.
fn guard<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| foreign(path, "the file is malformed (the Parquet decoder gave up)"))
}

fn next_batch(path: &Path, reader: &mut ParquetRecordBatchReader) -> Result<Option<RecordBatch>> {
    match guard(path, || reader.next())? {
        None => Ok(None),
        Some(Ok(b)) => Ok(Some(b)),
        Some(Err(e)) => Err(foreign(
            path,
            format!("cannot read records (corrupt or truncated file?): {e}"),
        )),
    }
}

/// Recognises the layout and the columns.
fn plan(parts: &[PartMeta], opts: &ReadOptions) -> Result<Plan> {
    let first = &parts[0];
    let schema = first.meta.schema();
    let has = |name: &str| first.has_column(name) || first.part.partition(name).is_some();
    let type_of = |name: &str| schema.column_with_name(name).map(|(_, f)| f.data_type().clone());
    let is_list = |name: &str| matches!(type_of(name), Some(DataType::List(_) | DataType::LargeList(_)));
    let mut found: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{} ({})", f.name(), f.data_type()))
        .collect();
    found.extend(first.part.partitions.iter().map(|(k, _)| format!("{k} (partition)")));
    let path = &first.part.path;

    let role = |name: &str, what: &str| -> Result<Role> {
        let kind = match type_of(name) {
            Some(t) => arrays::index_kind(&t).ok_or_else(|| {
                foreign(
                    path,
                    format!("{what} column {name:?} has type {t}; indices must be integers or strings (labels)"),
                )
            })?,
            None => {
                // A hive partition key: integers if every value is one.
                let all_int = parts.iter().all(|p| {
                    p.part
                        .partition(name)
                        .is_some_and(|v| v == HIVE_NULL || v.parse::<u64>().is_ok())
                });
                if all_int {
                    IndexKind::Int
                } else {
                    IndexKind::Str
                }
            }
        };
        Ok(Role {
            name: name.to_string(),
            kind,
        })
    };
    let label_col = |name: &str| -> Option<String> {
        type_of(name)
            .filter(|t| arrays::index_kind(t) == Some(IndexKind::Str))
            .map(|_| name.to_string())
    };

    let list_values = opts.value_col.clone().unwrap_or_else(|| "values".into());
    if is_list("indices") && is_list(&list_values) {
        let row_name = opts.row_col.clone().or_else(|| has("row").then(|| "row".to_string()));
        let row = match row_name {
            Some(r) if has(&r) => Some(role(&r, "row")?),
            Some(r) => return Err(missing(path, &found, &format!("the row column {r:?} (--row-col)"))),
            None => None,
        };
        let label = if row.as_ref().is_some_and(|r| r.kind == IndexKind::Str) {
            None
        } else {
            label_col("label")
        };
        return Ok(Plan::List {
            row,
            indices: "indices".into(),
            values: list_values,
            label,
        });
    }

    let given = [&opts.row_col, &opts.col_col, &opts.value_col];
    for (k, g) in given.iter().enumerate() {
        if let Some(name) = g {
            if !has(name) {
                let flag = ["--row-col", "--col-col", "--value-col"][k];
                return Err(missing(path, &found, &format!("the column {name:?} named by {flag}")));
            }
        }
    }
    let pick = RECOGNISED_COLUMNS.iter().find_map(|names| {
        let chosen: Vec<String> = (0..3)
            .map(|k| given[k].clone().unwrap_or_else(|| names[k].to_string()))
            .collect();
        chosen.iter().all(|c| has(c)).then_some(chosen)
    });
    let Some(chosen) = pick else {
        return Err(missing(path, &found, "row, column and value columns"));
    };
    let row = role(&chosen[0], "row")?;
    let col = role(&chosen[1], "column")?;
    let value = chosen[2].clone();
    if type_of(&value).is_none() {
        return Err(foreign(
            path,
            format!("the value column {value:?} is a partition key, not a column"),
        ));
    }
    Ok(Plan::Coo {
        row_label: (row.kind == IndexKind::Int).then(|| label_col("row_label")).flatten(),
        col_label: (col.kind == IndexKind::Int).then(|| label_col("col_label")).flatten(),
        row,
        col,
        value,
    })
}

fn missing(path: &Path, found: &[String], what: &str) -> Error {
    let names: Vec<String> = RECOGNISED_COLUMNS.iter().map(|n| n.join("/")).collect();
    foreign(
        path,
        format!(
            "cannot find {what}; the file has columns: {}; recognised names: {} (or the list layout: row, \
             indices: list, values: list); name the columns with --row-col, --col-col and --value-col",
            if found.is_empty() {
                "(none)".to_string()
            } else {
                found.join(", ")
            },
            names.join(", ")
        ),
    )
}

/// The value dtype, the same in every file (or promoted losslessly), and every file has the
/// plan's columns with the same kinds.
fn value_dtype(plan: &Plan, parts: &[PartMeta]) -> Result<DType> {
    let (value, roles): (&str, Vec<&Role>) = match plan {
        Plan::Coo { row, col, value, .. } => (value, vec![row, col]),
        Plan::List { row, values, .. } => (values, row.iter().collect()),
    };
    let is_list = matches!(plan, Plan::List { .. });
    let mut dtype: Option<DType> = None;
    for p in parts {
        let path = &p.part.path;
        let schema = p.meta.schema();
        for r in &roles {
            match schema.column_with_name(&r.name) {
                Some((_, f)) => {
                    if arrays::index_kind(f.data_type()) != Some(r.kind) {
                        return Err(foreign(
                            path,
                            format!(
                                "column {:?} has type {}, unlike in the dataset's first file",
                                r.name,
                                f.data_type()
                            ),
                        ));
                    }
                }
                None if p.part.partition(&r.name).is_some() => {}
                None => return Err(foreign(path, format!("column {:?} is missing from this file", r.name))),
            }
        }
        if is_list && schema.column_with_name("indices").is_none() {
            return Err(foreign(path, "column \"indices\" is missing from this file"));
        }
        let Some((_, f)) = schema.column_with_name(value) else {
            return Err(foreign(
                path,
                format!("the value column {value:?} is missing from this file"),
            ));
        };
        let t = match (is_list, f.data_type()) {
            (true, DataType::List(item) | DataType::LargeList(item)) => item.data_type().clone(),
            (true, t) => return Err(foreign(path, format!("column {value:?} has type {t}, not a list"))),
            (false, t) => t.clone(),
        };
        if is_list {
            if let Some((_, f)) = schema.column_with_name("indices") {
                let it = match f.data_type() {
                    DataType::List(i) | DataType::LargeList(i) => i.data_type().clone(),
                    t => t.clone(),
                };
                if arrays::index_kind(&it) != Some(IndexKind::Int) {
                    return Err(foreign(path, format!("column \"indices\" holds {it}, not integers")));
                }
            }
        }
        let d = arrays::value_dtype(&t).ok_or_else(|| {
            foreign(
                path,
                format!("the value column {value:?} has type {t}, which is not numeric"),
            )
        })?;
        dtype = Some(match dtype {
            None => d,
            Some(prev) => arrays::promote(prev, d).ok_or_else(|| {
                foreign(
                    path,
                    format!(
                        "the value column is {d} here but {prev} in earlier files, and no dtype holds both exactly"
                    ),
                )
            })?,
        });
    }
    Ok(dtype.unwrap_or(DType::F64))
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
                        Error::RowOrder { row, previous } => foreign(
                            &path,
                            format!(
                                "records are not sorted by row (row {row} after row {previous}){}",
                                if declared {
                                    " although the file declares them sorted (vecfmt.sorted or sorting_columns)"
                                } else {
                                    " although they were in the first pass (did the file change?)"
                                }
                            ),
                        ),
                        e => e,
                    })?;
                    if asm.block.nnz() >= self.batch_size {
                        return Ok(Some(Block::Rows(asm.take())));
                    }
                }
                None => {
                    asm.finish_row()?;
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

/// Gathers triplets sorted by row into row blocks: each row's entries sorted by column,
/// duplicates summed.
#[derive(Debug)]
struct Assembler {
    row: Option<u64>,
    cols: Vec<u64>,
    vals: ValueVec,
    block: RowBlock,
}

impl Assembler {
    fn new(dtype: DType) -> Self {
        Assembler {
            row: None,
            cols: Vec::new(),
            vals: ValueVec::new(dtype),
            block: RowBlock::new(dtype),
        }
    }

    fn take(&mut self) -> RowBlock {
        std::mem::replace(&mut self.block, RowBlock::new(self.vals.dtype()))
    }

    fn push(&mut self, t: &TripletBlock) -> Result<()> {
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
    fn finish_row(&mut self) -> Result<()> {
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
