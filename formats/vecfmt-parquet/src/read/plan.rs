//! Recognising a Parquet input's layout (COO or list) and its columns, and the value dtype
//! that every file of a dataset can be read into exactly.

use std::path::Path;

use arrow_schema::DataType;
use vecfmt::{DType, Result};

use super::{PartMeta, Plan, ReadOptions, Role};
use crate::arrays::{self, IndexKind};
use crate::dataset::HIVE_NULL;
use crate::{ColumnRole, Error, MissingColumns, RECOGNISED_COLUMNS};

/// Recognises the layout and the columns.
pub(super) fn plan(parts: &[PartMeta], opts: &ReadOptions) -> Result<Plan> {
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

    let role = |name: &str, what: ColumnRole| -> Result<Role> {
        let kind = match type_of(name) {
            Some(t) => arrays::index_kind(&t).ok_or_else(|| Error::IndexType {
                path: path.clone(),
                role: what,
                column: name.to_string(),
                data_type: t,
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
            Some(r) if has(&r) => Some(role(&r, ColumnRole::Row)?),
            Some(name) => {
                return Err(missing(
                    path,
                    found,
                    MissingColumns::Named {
                        role: ColumnRole::Row,
                        name,
                    },
                ))
            }
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
                let role = [ColumnRole::Row, ColumnRole::Col, ColumnRole::Value][k];
                let name = name.clone();
                return Err(missing(path, found, MissingColumns::Named { role, name }));
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
        return Err(missing(path, found, MissingColumns::Recognised));
    };
    let row = role(&chosen[0], ColumnRole::Row)?;
    let col = role(&chosen[1], ColumnRole::Col)?;
    let value = chosen[2].clone();
    if type_of(&value).is_none() {
        return Err(Error::ValueIsPartition {
            path: path.clone(),
            column: value,
        }
        .into());
    }
    Ok(Plan::Coo {
        row_label: (row.kind == IndexKind::Int).then(|| label_col("row_label")).flatten(),
        col_label: (col.kind == IndexKind::Int).then(|| label_col("col_label")).flatten(),
        row,
        col,
        value,
    })
}

fn missing(path: &Path, found: Vec<String>, missing: MissingColumns) -> vecfmt::Error {
    Error::MissingColumns {
        path: path.to_path_buf(),
        missing,
        found,
    }
    .into()
}

/// The value dtype, the same in every file (or promoted losslessly), and every file has the
/// plan's columns with the same kinds.
pub(super) fn value_dtype(plan: &Plan, parts: &[PartMeta]) -> Result<DType> {
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
                        return Err(Error::TypeDiffers {
                            path: path.clone(),
                            column: r.name.clone(),
                            data_type: f.data_type().clone(),
                        }
                        .into());
                    }
                }
                None if p.part.partition(&r.name).is_some() => {}
                None => return Err(missing_column(path, &r.name)),
            }
        }
        if is_list && schema.column_with_name("indices").is_none() {
            return Err(missing_column(path, "indices"));
        }
        let Some((_, f)) = schema.column_with_name(value) else {
            return Err(missing_column(path, value));
        };
        let t = match (is_list, f.data_type()) {
            (true, DataType::List(item) | DataType::LargeList(item)) => item.data_type().clone(),
            (true, t) => {
                return Err(Error::NotAList {
                    path: path.clone(),
                    column: value.to_string(),
                    data_type: t.clone(),
                }
                .into())
            }
            (false, t) => t.clone(),
        };
        if is_list {
            if let Some((_, f)) = schema.column_with_name("indices") {
                let it = match f.data_type() {
                    DataType::List(i) | DataType::LargeList(i) => i.data_type().clone(),
                    t => t.clone(),
                };
                if arrays::index_kind(&it) != Some(IndexKind::Int) {
                    return Err(Error::ListIndicesType {
                        path: path.clone(),
                        item_type: it,
                    }
                    .into());
                }
            }
        }
        let d = arrays::value_dtype(&t).ok_or_else(|| Error::NotNumeric {
            path: path.clone(),
            column: value.to_string(),
            data_type: t.clone(),
        })?;
        dtype = Some(match dtype {
            None => d,
            Some(prev) => arrays::promote(prev, d).ok_or_else(|| Error::ValueTypes {
                path: path.clone(),
                here: d,
                before: prev,
            })?,
        });
    }
    Ok(dtype.unwrap_or(DType::F64))
}

fn missing_column(path: &Path, column: &str) -> vecfmt::Error {
    Error::MissingColumn {
        path: path.to_path_buf(),
        column: column.to_string(),
    }
    .into()
}
