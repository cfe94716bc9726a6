//! Settling the header of a [`ParquetSource`]: the shape, the labels and the row order,
//! from the footers' statistics and key-value metadata and, when those do not tell, from one
//! first pass over the columns concerned, within the memory budget for labels.

use std::collections::HashMap;
use std::path::Path;

use arrow_array::ArrayRef;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use vecfmt::{Axis, Result};

use super::{column, list_parts, next_batch, ParquetSource, PartMeta, Plan, Role};
use crate::arrays::{self, IndexKind};
use crate::{keys, Error};

/// Strings to dense ids, in order of first appearance, within a memory budget.
#[derive(Debug, Default)]
pub(super) struct LabelMap {
    ids: HashMap<String, u64>,
    labels: Vec<String>,
}

impl LabelMap {
    fn seeded(labels: Vec<String>) -> Self {
        let ids = labels.iter().enumerate().map(|(k, s)| (s.clone(), k as u64)).collect();
        LabelMap { ids, labels }
    }
    pub(super) fn id(&mut self, s: &str, used: &mut u64) -> u64 {
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

impl ParquetSource {
    /// Shape, labels and row order, from footers and, when needed, one first pass.
    pub(super) fn settle_header(
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
        // A shape given for a file with string index columns must match their labels.
        if let Some(stated) = self.stated.filter(|&s| s != (n_rows, n_cols)) {
            return Err(Error::ShapeDisagrees {
                path: self.root.clone(),
                stated,
                carried: (n_rows, n_cols),
                what: "its string index columns hold that many distinct labels",
            }
            .into());
        }
        for (n, axis) in [(n_rows, Axis::Row), (n_cols, Axis::Col)] {
            if n == u64::MAX {
                return Err(Error::NoRoomForShape {
                    path: self.root.clone(),
                    axis,
                }
                .into());
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
                            clash = Some(k as u64);
                        }
                        s
                    }
                })
                .collect();
            if let Some(index) = clash {
                return Err(Error::LabelClash {
                    path: root.to_path_buf(),
                    axis,
                    index,
                }
                .into());
            }
            Ok(out)
        };
        let root = self.root.clone();
        self.header.row_labels = if let Some(m) = first.row_map.take() {
            self.row_map = Some(m.ids);
            Some(m.labels.into())
        } else if let Some(l) = meta_row_labels {
            Some(l.into())
        } else if row_labels_by_index || ordinal_labels {
            Some(by_index(std::mem::take(&mut first.row_labels), n_rows, Axis::Row, &root)?.into())
        } else {
            None
        };
        self.header.col_labels = if let Some(m) = first.col_map.take() {
            self.col_map = Some(m.ids);
            Some(m.labels.into())
        } else if let Some(l) = meta_col_labels {
            Some(l.into())
        } else if col_labels_by_index {
            Some(by_index(std::mem::take(&mut first.col_labels), n_cols, Axis::Col, &root)?.into())
        } else {
            None
        };
        for (labels, n, key) in [
            (&self.header.row_labels, n_rows, keys::ROW_LABELS),
            (&self.header.col_labels, n_cols, keys::COL_LABELS),
        ] {
            if let Some(l) = labels {
                if l.len() as u64 != n {
                    return Err(Error::LabelCount {
                        path: self.root.clone(),
                        key,
                        labels: l.len() as u64,
                        len: n,
                    }
                    .into());
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
                        .map_err(|p| p.at(&path, &format!("{li} (list items)"), offset))?;
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
    .map_err(|e| e.at(path, column, offset))?;
    match clash {
        Some((index, first, second, k)) => Err(Error::TwoLabels {
            path: path.to_path_buf(),
            axis,
            index,
            column: column.to_string(),
            first,
            second,
            record: offset + k as u64,
        }
        .into()),
        None => Ok(()),
    }
}

/// The labels would take more than the memory budget (or a damaged index claims they do):
/// an error that names the file, as every error about an input does.
fn over_budget(path: &Path, needed: u64, budget: u64) -> vecfmt::Error {
    Error::LabelsOverBudget {
        path: path.to_path_buf(),
        needed,
        budget,
    }
    .into()
}
