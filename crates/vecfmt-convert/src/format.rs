//! The format registry: which formats `convert` reads and writes, a format from a path's
//! extension or from a name, and the output layouts each format offers.

use std::path::Path;

use crate::{Error, Result};

/// A format [`convert`](crate::convert) reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// vecfmt's own chunked format.
    Vfm,
    /// A dense numpy array.
    Npy,
    /// A scipy.sparse matrix saved by `save_npz` (or a dense array in a `.npz`).
    Npz,
    /// Matrix Market (`coordinate` or `array`).
    Mtx,
    /// A Parquet file, or a directory of Parquet files (a pyarrow dataset, Spark output).
    Parquet,
    /// HDF5 as h5py, PyTables, h5sparse and 10x write it.
    Hdf5,
    /// anndata's `.h5ad` (HDF5 with `X`, `obs` and `var`).
    H5ad,
}

impl Format {
    /// Every format, in the order of [`Format::NAMES`].
    pub const ALL: [Format; 7] = [
        Format::Vfm,
        Format::Npy,
        Format::Npz,
        Format::Mtx,
        Format::Hdf5,
        Format::H5ad,
        Format::Parquet,
    ];

    /// The names [`Format::from_name`] takes (besides a few aliases: `mm`, `h5`).
    pub const NAMES: &'static str = "vfm, npy, npz, mtx, hdf5, h5ad, parquet";

    /// The format of a name such as `npz` or `hdf5` (any case).
    ///
    /// ```
    /// use vecfmt_convert::Format;
    /// assert_eq!(Format::from_name("HDF5")?, Format::Hdf5);
    /// assert!(Format::from_name("xlsx").is_err());
    /// # Ok::<(), vecfmt_convert::Error>(())
    /// ```
    pub fn from_name(name: &str) -> Result<Format> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "vfm" => Format::Vfm,
            "npy" => Format::Npy,
            "npz" => Format::Npz,
            "mtx" | "mm" => Format::Mtx,
            "parquet" => Format::Parquet,
            "hdf5" | "h5" => Format::Hdf5,
            "h5ad" => Format::H5ad,
            _ => return Err(Error::UnknownFormat { name: name.to_string() }),
        })
    }

    /// The format of a path, from its extension; a directory without one is a directory of
    /// Parquet files.
    ///
    /// ```
    /// use vecfmt_convert::Format;
    /// assert_eq!(Format::from_path("counts.h5ad".as_ref())?, Format::H5ad);
    /// assert_eq!(Format::from_path("m.MTX".as_ref())?, Format::Mtx);
    /// # Ok::<(), vecfmt_convert::Error>(())
    /// ```
    pub fn from_path(path: &Path) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "vfm" => Ok(Format::Vfm),
            "npy" => Ok(Format::Npy),
            "npz" => Ok(Format::Npz),
            "mtx" | "mm" => Ok(Format::Mtx),
            "parquet" | "parq" => Ok(Format::Parquet),
            "h5" | "hdf5" => Ok(Format::Hdf5),
            "h5ad" => Ok(Format::H5ad),
            // A directory of Parquet files (a pyarrow dataset, Spark output).
            _ if path.is_dir() => Ok(Format::Parquet),
            _ => Err(Error::UnknownExtension {
                path: path.to_path_buf(),
                ext,
            }),
        }
    }

    /// The name users know the format by: `.vfm`, `Matrix Market`, `HDF5`, ...
    pub fn name(self) -> &'static str {
        match self {
            Format::Vfm => ".vfm",
            Format::Npy => ".npy",
            Format::Npz => ".npz",
            Format::Mtx => "Matrix Market",
            Format::Parquet => "Parquet",
            Format::Hdf5 => "HDF5",
            Format::H5ad => ".h5ad",
        }
    }

    /// The output layouts of this format, the default first.
    pub fn layouts(self) -> &'static [&'static str] {
        match self {
            Format::Vfm => &["csr"],
            Format::Npy => &["dense"],
            Format::Npz => &["csr", "csr_array"],
            Format::Mtx => &["coordinate", "pattern", "symmetric", "symmetric-pattern"],
            Format::Parquet => &["coo", "list"],
            Format::Hdf5 => &["csr", "csc", "dense", "pandas"],
            Format::H5ad => &["csr", "csc"],
        }
    }

    /// The output layout a name chooses (any case), or the default for `None`; the error of
    /// an unknown name lists the candidates.
    ///
    /// ```
    /// use vecfmt_convert::Format;
    /// assert_eq!(Format::Npz.layout(None, "m.npz".as_ref())?, "csr");
    /// assert_eq!(Format::Mtx.layout(Some("Pattern"), "m.mtx".as_ref())?, "pattern");
    /// let e = Format::Parquet.layout(Some("csr"), "m.parquet".as_ref()).unwrap_err();
    /// assert!(e.to_string().contains("coo, list"));
    /// # Ok::<(), vecfmt_convert::Error>(())
    /// ```
    pub fn layout(self, name: Option<&str>, output: &Path) -> Result<&'static str> {
        let names = self.layouts();
        match name {
            None => Ok(names[0]),
            Some(l) => names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(l))
                .copied()
                .ok_or_else(|| Error::UnknownLayout {
                    path: output.to_path_buf(),
                    format: self,
                    layout: l.to_string(),
                }),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Format> {
        Format::from_name(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_and_extension_finds_its_format() {
        for f in Format::ALL {
            let short = match f {
                Format::Vfm => "vfm",
                Format::Npy => "npy",
                Format::Npz => "npz",
                Format::Mtx => "mtx",
                Format::Parquet => "parquet",
                Format::Hdf5 => "hdf5",
                Format::H5ad => "h5ad",
            };
            assert!(Format::NAMES.contains(short));
            assert_eq!(Format::from_name(short).unwrap(), f);
            assert_eq!(Format::from_path(Path::new(&format!("x.{short}"))).unwrap(), f);
        }
        assert_eq!(Format::from_name("mm").unwrap(), Format::Mtx);
        assert_eq!(Format::from_path(Path::new("a.h5")).unwrap(), Format::Hdf5);
        assert_eq!(Format::from_path(Path::new("a.parq")).unwrap(), Format::Parquet);
    }

    #[test]
    fn unknown_names_and_extensions_are_typed_errors_naming_them() {
        let e = Format::from_path(Path::new("data/m.xlsx")).unwrap_err();
        assert!(
            matches!(&e, Error::UnknownExtension { ext, .. } if ext == "xlsx"),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.starts_with("data/m.xlsx: ") && msg.contains(Format::NAMES), "{msg}");
        assert!(!msg.contains("--"), "a library message names no flag: {msg}");
        let e = Format::from_name("xlsx").unwrap_err();
        assert!(matches!(&e, Error::UnknownFormat { name } if name == "xlsx"), "{e:?}");
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Format::from_path(dir.path()).unwrap(), Format::Parquet);
    }

    #[test]
    fn layouts_default_to_the_first_and_unknown_ones_list_the_candidates() {
        for f in Format::ALL {
            assert_eq!(f.layout(None, Path::new("o")).unwrap(), f.layouts()[0]);
            for l in f.layouts() {
                assert_eq!(f.layout(Some(&l.to_uppercase()), Path::new("o")).unwrap(), *l);
            }
        }
        let e = Format::Mtx.layout(Some("csr"), Path::new("out.mtx")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("out.mtx")
                && msg.contains("unknown layout \"csr\"")
                && msg.contains("coordinate, pattern, symmetric, symmetric-pattern"),
            "{msg}"
        );
    }
}
