//! Finding the matrix in an HDF5 file: every CSR/CSC group, dense 2-D numeric dataset and
//! pandas fixed frame is a candidate; objects that look like a matrix but cannot be read
//! (a complex or string 2-D dataset, a pandas table) are remembered with the reason, for
//! the error message.

use std::fmt;

use hdf5::Group;

use crate::raw::{self, TypeClass};
use crate::Rejection;

/// The layout of a candidate matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateKind {
    /// A group with `data`, `indices`, `indptr`, rows compressed.
    Csr,
    /// A group with `data`, `indices`, `indptr`, columns compressed.
    Csc,
    /// A 2-D numeric dataset.
    Dense,
    /// A pandas `to_hdf(format="fixed")` frame.
    Frame,
}

impl fmt::Display for CandidateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CandidateKind::Csr => "CSR group",
            CandidateKind::Csc => "CSC group",
            CandidateKind::Dense => "dense dataset",
            CandidateKind::Frame => "pandas frame",
        })
    }
}

/// A matrix found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its path inside the file, e.g. `/X`.
    pub path: String,
    pub kind: CandidateKind,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.path, self.kind)
    }
}

/// What is at one path.
#[derive(Debug)]
pub(crate) enum Found {
    Matrix(Candidate),
    /// Looks like a matrix but is not readable, and why.
    Rejected(String, Rejection),
    Nothing,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix == "/" {
        format!("/{name}")
    } else {
        format!("{prefix}/{name}")
    }
}

/// How a sparse group compresses: from its attributes (anndata `encoding-type`, h5sparse
/// `h5sparse_format`, or `format`); CSC for the 10x Genomics layout (a `shape` dataset
/// next to `barcodes` and `features` or `genes`: features × barcodes); otherwise whichever
/// axis `indptr` fits (one more entry than rows: CSR, than columns only: CSC), CSR when
/// nothing tells.
pub(crate) fn sparse_kind(g: &Group) -> CandidateKind {
    for attr in ["encoding-type", "h5sparse_format", "format"] {
        if let Some(v) = raw::attr_string(g, attr) {
            match v.as_str() {
                "csr_matrix" | "csr" => return CandidateKind::Csr,
                "csc_matrix" | "csc" => return CandidateKind::Csc,
                _ => {}
            }
        }
    }
    let tenx = raw::is_dataset(g, "shape")
        && raw::is_dataset(g, "barcodes")
        && (raw::is_group(g, "features") || raw::is_dataset(g, "genes"));
    if tenx {
        return CandidateKind::Csc;
    }
    let shape = ["shape", "h5sparse_shape"]
        .iter()
        .find_map(|a| raw::attr_ints(g, a))
        .or_else(|| g.dataset("shape").ok().and_then(|d| d.read_raw::<i64>().ok()));
    let majors = g.dataset("indptr").map(|d| d.size() as i64 - 1).ok();
    match (shape.as_deref(), majors) {
        (Some(&[r, c]), Some(m)) if m != r && m == c => CandidateKind::Csc,
        _ => CandidateKind::Csr,
    }
}

fn is_sparse_group(g: &Group) -> bool {
    ["data", "indices", "indptr"].iter().all(|n| raw::is_dataset(g, n))
}

/// Classifies the group at `path`.
pub(crate) fn classify_group(g: &Group, path: &str) -> Found {
    if is_sparse_group(g) {
        let kind = sparse_kind(g);
        return Found::Matrix(Candidate {
            path: path.to_string(),
            kind,
        });
    }
    if let Some(t) = raw::attr_string(g, "pandas_type") {
        return if t == "frame" {
            Found::Matrix(Candidate {
                path: path.to_string(),
                kind: CandidateKind::Frame,
            })
        } else {
            Found::Rejected(path.to_string(), Rejection::PandasObject { pandas_type: t })
        };
    }
    Found::Nothing
}

/// Classifies the dataset at `path`.
pub(crate) fn classify_dataset(ds: &hdf5::Dataset, path: &str) -> Found {
    if ds.ndim() != 2 {
        return Found::Nothing;
    }
    let class = raw::dataset_type(ds);
    if crate::value_dtype(class).is_some() {
        Found::Matrix(Candidate {
            path: path.to_string(),
            kind: CandidateKind::Dense,
        })
    } else {
        Found::Rejected(
            path.to_string(),
            Rejection::UnsupportedDtype {
                stored: unsupported_dtype(class),
            },
        )
    }
}

/// A stored type that is not a matrix value, described for [`Rejection::UnsupportedDtype`].
pub(crate) fn unsupported_dtype(class: TypeClass) -> String {
    match class {
        TypeClass::Other("compound (structured) type") => {
            "a compound type (complex numbers or a structured array)".into()
        }
        TypeClass::Float(16) => "float128 (long double)".into(),
        other => other.describe(),
    }
}

/// Every candidate (and rejected look-alike) in a file, in name order.
pub(crate) fn walk(root: &Group) -> (Vec<Candidate>, Vec<(String, Rejection)>) {
    let mut found = Vec::new();
    let mut rejected = Vec::new();
    walk_group(root, "/", 0, &mut found, &mut rejected);
    (found, rejected)
}

fn walk_group(
    g: &Group,
    prefix: &str,
    depth: usize,
    found: &mut Vec<Candidate>,
    rejected: &mut Vec<(String, Rejection)>,
) {
    // Hard links can make cycles; no real layout nests this deep.
    if depth > 32 {
        return;
    }
    let Ok(names) = g.member_names() else { return };
    for name in names {
        let path = join(prefix, &name);
        match g.loc_type_by_name(&name) {
            Ok(hdf5::LocationType::Group) => {
                let Ok(child) = g.group(&name) else { continue };
                match classify_group(&child, &path) {
                    Found::Matrix(c) => found.push(c),
                    Found::Rejected(p, why) => rejected.push((p, why)),
                    Found::Nothing => walk_group(&child, &path, depth + 1, found, rejected),
                }
            }
            Ok(hdf5::LocationType::Dataset) => {
                let Ok(ds) = g.dataset(&name) else { continue };
                match classify_dataset(&ds, &path) {
                    Found::Matrix(c) => found.push(c),
                    Found::Rejected(p, why) => rejected.push((p, why)),
                    Found::Nothing => {}
                }
            }
            _ => {}
        }
    }
}
