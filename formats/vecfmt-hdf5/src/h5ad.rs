//! AnnData (`.h5ad`) specifics: the `obs`/`var` dataframes whose index gives the labels,
//! and the skeleton of groups and attributes `anndata.read_h5ad` expects of a file.
//!
//! Spec: the anndata on-disk format (encoding-type/encoding-version attributes on every
//! element; dataframe 0.2.0 with `_index`, `column-order`; dict 0.1.0; csr/csc_matrix 0.1.0).

use std::path::Path;
use std::str::FromStr;

use hdf5::types::VarLenUnicode;
use hdf5::{File, Group, Location};
use vecfmt::Result;

use crate::raw;
use crate::{foreign, h5err, Notify};

/// Whether the file is an AnnData file (root `encoding-type` = `anndata`, or the classic
/// `X`/`obs`/`var` trio).
pub(crate) fn is_anndata(file: &File) -> bool {
    raw::attr_string(file, "encoding-type").as_deref() == Some("anndata")
        || (raw::exists(file, "X") && raw::exists(file, "obs") && raw::exists(file, "var"))
}

/// The index of the `obs` or `var` dataframe, when it holds `n` strings that are not just
/// the default `"0"`..`"n-1"`.
pub(crate) fn dataframe_index(
    path: &Path,
    file: &File,
    name: &str,
    n: u64,
    notify: &Notify,
) -> Result<Option<Vec<String>>> {
    if !raw::is_group(file, name) {
        if raw::exists(file, name) {
            notify(&format!(
                "/{name} is not a dataframe group (an anndata file older than 0.7?); its names are not read"
            ));
        }
        return Ok(None);
    }
    let g = file.group(name).map_err(h5err(path, "cannot open obs/var"))?;
    let key = raw::attr_string(&g, "_index").unwrap_or_else(|| "_index".into());
    if !raw::is_dataset(&g, &key) {
        notify(&format!(
            "/{name}/{key} is not a string dataset (categorical?); the names are not read"
        ));
        return Ok(None);
    }
    let ds = g
        .dataset(&key)
        .map_err(h5err(path, "cannot open the dataframe index"))?;
    if !raw::dataset_type(&ds).is_string() {
        notify(&format!("/{name}/{key} does not hold strings; the names are not read"));
        return Ok(None);
    }
    let labels = raw::read_strings(&ds, false).map_err(|e| foreign(path, format!("cannot read /{name}/{key}: {e}")))?;
    if labels.len() as u64 != n {
        return Err(foreign(
            path,
            format!(
                "shape mismatch: /{name}/{key} has {} names, but the matrix has {n} along that axis",
                labels.len()
            ),
        ));
    }
    if labels
        .iter()
        .enumerate()
        .all(|(k, s)| s.parse::<u64>() == Ok(k as u64) && s == &k.to_string())
    {
        return Ok(None);
    }
    Ok(Some(labels))
}

/// Writes a scalar variable-length UTF-8 string attribute (what h5py writes for a `str`).
pub(crate) fn str_attr(out: &Path, loc: &Location, name: &str, value: &str) -> Result<()> {
    let v = VarLenUnicode::from_str(value).map_err(|e| foreign(out, format!("attribute {name}: {e}")))?;
    loc.new_attr::<VarLenUnicode>()
        .create(name)
        .and_then(|a| a.write_scalar(&v))
        .map_err(h5err(out, "cannot write an attribute"))
}

/// Writes a 1-D int64 attribute.
pub(crate) fn ints_attr(out: &Path, loc: &Location, name: &str, values: &[i64]) -> Result<()> {
    loc.new_attr::<i64>()
        .shape(values.len())
        .create(name)
        .and_then(|a| a.write_raw(values))
        .map_err(h5err(out, "cannot write an attribute"))
}

/// Strings written per slab.
const STRING_SLAB: usize = 1 << 16;

/// Writes a 1-D variable-length UTF-8 string dataset, a slab at a time.
pub(crate) fn write_strings(
    out: &Path,
    g: &Group,
    name: &str,
    n: usize,
    label: impl Fn(usize) -> String,
) -> Result<hdf5::Dataset> {
    let b = g.new_dataset::<VarLenUnicode>();
    let ds = if n == 0 {
        b.shape(0).create(name)
    } else {
        b.chunk(n.min(STRING_SLAB)).shape(n).create(name)
    }
    .map_err(h5err(out, "cannot create a string dataset"))?;
    let mut s = 0;
    while s < n {
        let e = (s + STRING_SLAB).min(n);
        let v = (s..e)
            .map(|k| VarLenUnicode::from_str(&label(k)).map_err(|e| foreign(out, format!("label {k}: {e}"))))
            .collect::<Result<Vec<_>>>()?;
        ds.write_slice(ndarray::ArrayView1::from(&v[..]), s..e)
            .map_err(h5err(out, "cannot write a string dataset"))?;
        s = e;
    }
    Ok(ds)
}

/// Writes the `obs` or `var` dataframe: no columns, the index from `labels` or `"0"`..`"n-1"`.
fn dataframe(out: &Path, file: &File, name: &str, n: u64, labels: Option<&Vec<String>>) -> Result<()> {
    let g = file.create_group(name).map_err(h5err(out, "cannot create obs/var"))?;
    str_attr(out, &g, "_index", "_index")?;
    g.new_attr::<f64>()
        .shape(0)
        .create("column-order")
        .map_err(h5err(out, "cannot write column-order"))?;
    str_attr(out, &g, "encoding-type", "dataframe")?;
    str_attr(out, &g, "encoding-version", "0.2.0")?;
    let ds = match labels {
        Some(l) => write_strings(out, &g, "_index", l.len(), |k| l[k].clone())?,
        None => write_strings(out, &g, "_index", n as usize, |k| k.to_string())?,
    };
    str_attr(out, &ds, "encoding-type", "string-array")?;
    str_attr(out, &ds, "encoding-version", "0.2.0")?;
    Ok(())
}

/// Writes everything of an `.h5ad` file but `X`: root attributes, `obs`, `var`, and the
/// empty `uns`, `obsm`, `varm`, `obsp`, `varp`, `layers`.
pub(crate) fn write_skeleton(out: &Path, file: &File, header: &vecfmt::stream::MatrixHeader) -> Result<()> {
    str_attr(out, file, "encoding-type", "anndata")?;
    str_attr(out, file, "encoding-version", "0.1.0")?;
    dataframe(out, file, "obs", header.n_rows, header.row_labels.as_ref())?;
    dataframe(out, file, "var", header.n_cols, header.col_labels.as_ref())?;
    for name in ["uns", "obsm", "varm", "obsp", "varp", "layers"] {
        let g = file.create_group(name).map_err(h5err(out, "cannot create a group"))?;
        str_attr(out, &g, "encoding-type", "dict")?;
        str_attr(out, &g, "encoding-version", "0.1.0")?;
    }
    Ok(())
}
