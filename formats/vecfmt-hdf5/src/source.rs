//! Opening an HDF5 file as a matrix source: finding the matrix, then the reader for its
//! layout, then its labels.

use std::io::Read;
use std::path::Path;

use hdf5::File;
use vecfmt::stream::{Block, MatrixHeader, MatrixSource};
use vecfmt::Result;

use crate::dense::DenseSource;
use crate::find::{self, Candidate, CandidateKind, Found};
use crate::raw;
use crate::sparse::SparseSource;
use crate::{frame, h5ad, read_err, Error, Notify, ReadOptions};

/// A matrix read from an HDF5 file, in any of the layouts of the crate docs.
pub struct Hdf5Source {
    inner: Box<dyn Source>,
    found: Candidate,
}

impl std::fmt::Debug for Hdf5Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hdf5Source")
            .field("found", &self.found)
            .field("header", self.inner.header())
            .finish_non_exhaustive()
    }
}

/// The HDF5 signature, at offset 0 or a power of two from 512 (after a user block).
const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Checks the signature before HDF5 sees the file, for a clear message.
fn check_signature(path: &Path) -> Result<()> {
    let io = |op: &'static str| {
        move |error| vecfmt::Error::Io {
            path: path.to_path_buf(),
            op,
            error,
        }
    };
    let mut f = std::fs::File::open(path).map_err(io("open"))?;
    let len = f.metadata().map_err(io("stat"))?.len();
    let mut buf = vec![0u8; len.min(1 << 16) as usize];
    f.read_exact(&mut buf).map_err(io("read"))?;
    let mut off = 0usize;
    while off + 8 <= buf.len() {
        if &buf[off..off + 8] == SIGNATURE {
            return Ok(());
        }
        off = if off == 0 { 512 } else { off * 2 };
    }
    Err(Error::NotHdf5 {
        path: path.to_path_buf(),
        len,
    }
    .into())
}

/// Opens `path` for reading, with a clear message for files HDF5 cannot open.
pub(crate) fn open_file(path: &Path) -> Result<File> {
    check_signature(path)?;
    crate::file_builder().and_then(|b| b.open(path)).map_err(|source| {
        Error::Open {
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

impl Hdf5Source {
    /// Every candidate matrix in a file.
    pub fn candidates(path: impl AsRef<Path>) -> Result<Vec<Candidate>> {
        let file = open_file(path.as_ref())?;
        Ok(find::walk(&file).0)
    }

    /// Opens the matrix of an HDF5 file: `opts.dataset` when given; else `X` of an AnnData
    /// file; else the only candidate (the error lists them when there are several).
    pub fn open(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<Self> {
        let path = path.as_ref();
        let file = open_file(path)?;
        let anndata = h5ad::is_anndata(&file);
        let found = match &opts.dataset {
            Some(d) => resolve(path, &file, d)?,
            None if anndata => resolve(path, &file, "/X")?,
            None => {
                let (found, rejected) = find::walk(&file);
                match found.len() {
                    1 => found.into_iter().next().expect("one"),
                    0 => {
                        return Err(Error::NoMatrix {
                            path: path.to_path_buf(),
                            rejected,
                        }
                        .into());
                    }
                    _ => {
                        return Err(Error::SeveralCandidates {
                            path: path.to_path_buf(),
                            candidates: found,
                        }
                        .into())
                    }
                }
            }
        };
        let inner = open_candidate(path, &file, &found, anndata, opts)?;
        Ok(Hdf5Source { inner, found })
    }

    /// What was found and read.
    pub fn found(&self) -> &Candidate {
        &self.found
    }
}

/// A source of this crate, whose header can be changed after it is opened.
pub(crate) trait Source: MatrixSource {
    fn header_mut(&mut self) -> &mut MatrixHeader;
}

/// The candidate at the path named in [`ReadOptions::dataset`].
fn resolve(path: &Path, file: &File, d: &str) -> Result<Candidate> {
    let p = format!("/{}", d.trim_matches('/'));
    let inner = p.trim_start_matches('/');
    let not_a_matrix = |ndim: Option<usize>| Error::NotAMatrix {
        path: path.to_path_buf(),
        object: p.clone(),
        ndim,
        candidates: find::walk(file).0,
    };
    if inner.is_empty() || !file.link_exists(inner) {
        return Err(Error::NoSuchObject {
            path: path.to_path_buf(),
            object: p.clone(),
            candidates: find::walk(file).0,
        }
        .into());
    }
    let found = if raw::is_group(file, inner) {
        let g = file.group(inner).map_err(read_err(path, &p))?;
        find::classify_group(&g, &p)
    } else if raw::is_dataset(file, inner) {
        let ds = file.dataset(inner).map_err(read_err(path, &p))?;
        if ds.ndim() != 2 {
            return Err(not_a_matrix(Some(ds.ndim())).into());
        }
        find::classify_dataset(&ds, &p)
    } else {
        Found::Nothing
    };
    match found {
        Found::Matrix(c) => Ok(c),
        Found::Rejected(_, reason) => Err(Error::Rejected {
            path: path.to_path_buf(),
            object: p.clone(),
            reason,
        }
        .into()),
        Found::Nothing => Err(not_a_matrix(None).into()),
    }
}

/// Labels of one axis, when there are any.
type Labels = Option<Vec<String>>;

/// Labels of an element that has the AnnData `obs × var` shape.
fn anndata_labels(path: &Path, file: &File, h: &MatrixHeader, notify: &Notify) -> Result<(Labels, Labels)> {
    Ok((
        h5ad::dataframe_index(path, file, "obs", h.n_rows, notify)?,
        h5ad::dataframe_index(path, file, "var", h.n_cols, notify)?,
    ))
}

/// A 1-D string dataset of `n` labels at `name` in `g`, when there is one.
fn label_dataset(g: &hdf5::Group, name: &str, n: u64, notify: &Notify, what: &str) -> Option<Vec<String>> {
    if !raw::is_dataset(g, name) {
        return None;
    }
    let ds = g.dataset(name).ok()?;
    if !raw::dataset_type(&ds).is_string() {
        return None;
    }
    match raw::read_strings(&ds, false) {
        Ok(v) if v.len() as u64 == n => Some(v),
        Ok(v) => {
            notify(&format!(
                "{what} has {} names for {n} entries; not used as labels",
                v.len()
            ));
            None
        }
        Err(e) => {
            notify(&format!("{what} not used as labels: {e}"));
            None
        }
    }
}

fn open_candidate(
    path: &Path,
    file: &File,
    c: &Candidate,
    anndata: bool,
    opts: &ReadOptions,
) -> Result<Box<dyn Source>> {
    let inner = c.path.trim_start_matches('/');
    let in_anndata = anndata && (inner == "X" || inner.starts_with("layers/"));
    Ok(match c.kind {
        CandidateKind::Csr | CandidateKind::Csc => {
            let g = file.group(inner).map_err(read_err(path, &c.path))?;
            let mut src = SparseSource::open(path, &g, &c.path, c.kind, opts)?;
            let h = src.header_mut().clone();
            let (rows, cols) = if in_anndata {
                anndata_labels(path, file, &h, &opts.notify)?
            } else if raw::is_dataset(&g, "barcodes") {
                // 10x Genomics: features × barcodes; feature ids in `features/id` (Cell
                // Ranger 3+) or `genes` (Cell Ranger 2).
                let what = |n: &str| format!("{}/{n}", c.path);
                let rows = match g.group("features") {
                    Ok(f) => label_dataset(&f, "id", h.n_rows, &opts.notify, &what("features/id")),
                    Err(_) => label_dataset(&g, "genes", h.n_rows, &opts.notify, &what("genes")),
                };
                let cols = label_dataset(&g, "barcodes", h.n_cols, &opts.notify, &what("barcodes"));
                (rows, cols)
            } else {
                (
                    label_dataset(
                        &g,
                        "row_labels",
                        h.n_rows,
                        &opts.notify,
                        &format!("{}/row_labels", c.path),
                    ),
                    label_dataset(
                        &g,
                        "col_labels",
                        h.n_cols,
                        &opts.notify,
                        &format!("{}/col_labels", c.path),
                    ),
                )
            };
            src.set_labels(rows, cols);
            Box::new(src)
        }
        CandidateKind::Dense => {
            let ds = file.dataset(inner).map_err(read_err(path, &c.path))?;
            let mut src = DenseSource::open(path, ds, &c.path, false, opts)?;
            let h = src.header_mut().clone();
            let (rows, cols) = if in_anndata {
                anndata_labels(path, file, &h, &opts.notify)?
            } else {
                let (parent, name) = match inner.rsplit_once('/') {
                    Some((p, n)) => (file.group(p).map_err(read_err(path, p))?, n.to_string()),
                    None => ((**file).clone(), inner.to_string()),
                };
                (
                    label_dataset(
                        &parent,
                        &format!("{name}_row_labels"),
                        h.n_rows,
                        &opts.notify,
                        "row labels",
                    ),
                    label_dataset(
                        &parent,
                        &format!("{name}_col_labels"),
                        h.n_cols,
                        &opts.notify,
                        "column labels",
                    ),
                )
            };
            let hm = src.header_mut();
            hm.row_labels = rows.map(Into::into);
            hm.col_labels = cols.map(Into::into);
            Box::new(src)
        }
        CandidateKind::Frame => {
            let g = file.group(inner).map_err(read_err(path, &c.path))?;
            frame::open(path, &g, &c.path, opts)?
        }
    })
}

impl MatrixSource for Hdf5Source {
    fn header(&self) -> &MatrixHeader {
        self.inner.header()
    }
    fn next_block(&mut self) -> Result<Option<Block>> {
        self.inner.next_block()
    }
    fn total_bytes(&self) -> Option<u64> {
        self.inner.total_bytes()
    }
    fn bytes_read(&self) -> u64 {
        self.inner.bytes_read()
    }
    fn release_labels(&mut self) {
        self.inner.header_mut().clear_labels();
    }
}
