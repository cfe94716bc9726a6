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

use crate::chunks::ChunkAppender;
use crate::raw;
use crate::{read_err, write_err, Error, Notify};

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
    let g = file.group(name).map_err(read_err(path, name))?;
    let key = raw::attr_string(&g, "_index").unwrap_or_else(|| "_index".into());
    if !raw::is_dataset(&g, &key) {
        notify(&format!(
            "/{name}/{key} is not a string dataset (categorical?); the names are not read"
        ));
        return Ok(None);
    }
    let object = format!("/{name}/{key}");
    let ds = g.dataset(&key).map_err(read_err(path, &object))?;
    if !raw::dataset_type(&ds).is_string() {
        notify(&format!("/{name}/{key} does not hold strings; the names are not read"));
        return Ok(None);
    }
    let labels = match raw::read_strings(&ds, false) {
        Ok(l) => l,
        Err(problem) => {
            return Err(Error::Strings {
                path: path.to_path_buf(),
                object,
                problem,
            }
            .into())
        }
    };
    if labels.len() as u64 != n {
        return Err(Error::IndexLength {
            path: path.to_path_buf(),
            object,
            names: labels.len() as u64,
            len: n,
        }
        .into());
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
    let v = VarLenUnicode::from_str(value).map_err(|source| Error::BadString {
        path: out.to_path_buf(),
        object: attr_path(loc, name),
        source,
    })?;
    loc.new_attr::<VarLenUnicode>()
        .create(name)
        .and_then(|a| a.write_scalar(&v))
        .map_err(|e| write_err(out, "write the attribute", &attr_path(loc, name))(e))
}

/// The path of attribute `name` of `loc`, for messages (`/X@shape`).
pub(crate) fn attr_path(loc: &Location, name: &str) -> String {
    format!("{}@{name}", loc.name())
}

/// Writes a 1-D int64 attribute.
pub(crate) fn ints_attr(out: &Path, loc: &Location, name: &str, values: &[i64]) -> Result<()> {
    loc.new_attr::<i64>()
        .shape(values.len())
        .create(name)
        .and_then(|a| a.write_raw(values))
        .map_err(|e| write_err(out, "write the attribute", &attr_path(loc, name))(e))
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
    let object = format!("{}/{name}", g.name().trim_end_matches('/'));
    let b = g.new_dataset::<VarLenUnicode>();
    let ds = if n == 0 {
        b.shape(0).create(name)
    } else {
        b.chunk(n.min(STRING_SLAB)).shape(n).create(name)
    }
    .map_err(write_err(out, "create the string dataset", &object))?;
    let mut s = 0;
    while s < n {
        let e = (s + STRING_SLAB).min(n);
        let v = (s..e)
            .map(|k| {
                VarLenUnicode::from_str(&label(k)).map_err(|source| Error::BadString {
                    path: out.to_path_buf(),
                    object: format!("{object}[{k}]"),
                    source,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        ds.write_slice(ndarray::ArrayView1::from(&v[..]), s..e)
            .map_err(write_err(out, "write the string dataset", &object))?;
        s = e;
    }
    Ok(ds)
}

/// Raw bytes per chunk of a fixed-length string index.
const INDEX_CHUNK_BYTES: usize = 256 << 10;

/// The names of an `obs`/`var` index: the labels, or `"0"`..`"n-1"`.
enum Names<'a> {
    Labels(&'a [String]),
    Count(u64),
}

impl<'a> Names<'a> {
    fn of(labels: &'a Option<vecfmt::stream::SharedLabels>, n: u64) -> Self {
        match labels {
            Some(l) => Names::Labels(l),
            None => Names::Count(n),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Names::Labels(l) => l.len() as u64,
            Names::Count(n) => *n,
        }
    }

    /// The byte width of the longest name, and whether every name can be stored as a
    /// fixed-length string (no NUL byte, which NULLPAD strings drop) without the padding
    /// costing more than four times the names' bytes (one very long label among many short
    /// ones would).
    fn fixed_width(&self) -> Option<usize> {
        match self {
            Names::Count(n) => Some(n.saturating_sub(1).to_string().len()),
            Names::Labels(l) => {
                let mut total = 0usize;
                let mut max = 0usize;
                for s in l.iter() {
                    if s.as_bytes().contains(&0) {
                        return None;
                    }
                    total += s.len();
                    max = max.max(s.len());
                }
                let width = max.max(1);
                (width <= 64 || width.saturating_mul(l.len()) <= 4 * total).then_some(width)
            }
        }
    }
}

/// Writes the index of `obs`/`var` as a string-array. Fixed-length UTF-8 strings (NULLPAD,
/// as h5py stores a numpy `S` array with `h5py.string_dtype("utf-8", width)`) compressed
/// with deflate: anndata reads them in memory and backed, and they are written and read far
/// faster than variable-length strings, whose every element is a global-heap object. Names
/// that cannot be fixed-length ([`Names::fixed_width`]) are written variable-length.
fn write_index(out: &Path, g: &Group, names: &Names<'_>, deflate: u8) -> Result<hdf5::Dataset> {
    let n = names.len() as usize;
    let Some(width) = names.fixed_width() else {
        let Names::Labels(l) = names else {
            unreachable!("counted names are always fixed-width")
        };
        return write_strings(out, g, "_index", n, |k| l[k].clone());
    };
    let chunk = (INDEX_CHUNK_BYTES / width).clamp(1, n.max(1));
    let mut b = g
        .new_dataset_builder()
        .empty_as(hdf5::types::TypeDescriptor::FixedUnicode(width))
        .chunk(chunk)
        .shape(0..);
    if deflate > 0 {
        b = b.deflate(deflate);
    }
    let object = format!("{}/_index", g.name());
    let ds = b
        .create("_index")
        .map_err(write_err(out, "create the string dataset", &object))?;
    let mut w = ChunkAppender::new(ds, width, chunk, false, deflate);
    let err = || write_err(out, "write the string dataset", &object);
    let mut buf = Vec::with_capacity(chunk * width);
    match names {
        Names::Labels(l) => {
            for part in l.chunks(chunk) {
                buf.clear();
                for s in part {
                    buf.extend_from_slice(s.as_bytes());
                    buf.resize(buf.len() + width - s.len(), 0);
                }
                w.extend(&buf).map_err(err())?;
            }
        }
        Names::Count(_) => {
            let mut digits = Decimal::default();
            let mut left = n;
            while left > 0 {
                let m = left.min(chunk);
                buf.clear();
                for _ in 0..m {
                    let d = digits.bytes();
                    buf.extend_from_slice(d);
                    buf.resize(buf.len() + width - d.len(), 0);
                    digits.increment();
                }
                w.extend(&buf).map_err(err())?;
                left -= m;
            }
        }
    }
    w.finish().map_err(err())
}

/// A decimal counter from 0, its ASCII digits kept (no formatting per number).
#[derive(Debug)]
struct Decimal {
    /// Digits, most significant first, right-aligned in the array.
    d: [u8; 20],
    start: usize,
}

impl Default for Decimal {
    fn default() -> Self {
        let mut d = [b'0'; 20];
        d[19] = b'0';
        Decimal { d, start: 19 }
    }
}

impl Decimal {
    fn bytes(&self) -> &[u8] {
        &self.d[self.start..]
    }
    fn increment(&mut self) {
        let mut i = 19;
        loop {
            if self.d[i] == b'9' {
                self.d[i] = b'0';
                if i == 0 {
                    return;
                }
                i -= 1;
                if i < self.start {
                    self.start = i;
                    self.d[i] = b'1';
                    return;
                }
            } else {
                self.d[i] += 1;
                return;
            }
        }
    }
}

/// Writes the `obs` or `var` dataframe: no columns, the index from `labels` or `"0"`..`"n-1"`.
fn dataframe(out: &Path, file: &File, name: &str, names: Names<'_>, deflate: u8) -> Result<()> {
    let object = format!("/{name}");
    let g = file
        .create_group(name)
        .map_err(write_err(out, "create the group", &object))?;
    str_attr(out, &g, "_index", "_index")?;
    g.new_attr::<f64>().shape(0).create("column-order").map_err(write_err(
        out,
        "write the attribute",
        &format!("{object}@column-order"),
    ))?;
    str_attr(out, &g, "encoding-type", "dataframe")?;
    str_attr(out, &g, "encoding-version", "0.2.0")?;
    let ds = write_index(out, &g, &names, deflate)?;
    str_attr(out, &ds, "encoding-type", "string-array")?;
    str_attr(out, &ds, "encoding-version", "0.2.0")?;
    Ok(())
}

/// Writes everything of an `.h5ad` file but `X`: root attributes, `obs`, `var`, and the
/// empty `uns`, `obsm`, `varm`, `obsp`, `varp`, `layers`.
pub(crate) fn write_skeleton(
    out: &Path,
    file: &File,
    header: &vecfmt::stream::MatrixHeader,
    deflate: u8,
) -> Result<()> {
    str_attr(out, file, "encoding-type", "anndata")?;
    str_attr(out, file, "encoding-version", "0.1.0")?;
    dataframe(out, file, "obs", Names::of(&header.row_labels, header.n_rows), deflate)?;
    dataframe(out, file, "var", Names::of(&header.col_labels, header.n_cols), deflate)?;
    for name in ["uns", "obsm", "varm", "obsp", "varp", "layers"] {
        let g = file
            .create_group(name)
            .map_err(write_err(out, "create the group", &format!("/{name}")))?;
        str_attr(out, &g, "encoding-type", "dict")?;
        str_attr(out, &g, "encoding-version", "0.1.0")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Decimal, Names};

    #[test]
    fn decimal_counts_like_to_string() {
        let mut d = Decimal::default();
        for k in 0..12_345u64 {
            assert_eq!(d.bytes(), k.to_string().as_bytes());
            d.increment();
        }
    }

    #[test]
    fn fixed_width_only_without_nul_and_without_runaway_padding() {
        assert_eq!(Names::Count(0).fixed_width(), Some(1));
        assert_eq!(Names::Count(4_000_000).fixed_width(), Some(7));
        let l = vec!["a".to_string(), "héllo".to_string(), String::new()];
        assert_eq!(Names::Labels(&l).fixed_width(), Some(6));
        let nul = vec!["a\0b".to_string()];
        assert_eq!(Names::Labels(&nul).fixed_width(), None);
        let mut skewed: Vec<String> = (0..100).map(|k| k.to_string()).collect();
        skewed.push("x".repeat(1000));
        assert_eq!(Names::Labels(&skewed).fixed_width(), None);
    }
}
