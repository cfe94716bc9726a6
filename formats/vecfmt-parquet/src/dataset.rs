//! Finding the Parquet files of an input: one file, or a directory tree as pyarrow's
//! `write_dataset` and Spark write it, with hive `key=value/` directories.

use std::fs;
use std::path::{Path, PathBuf};

use vecfmt::Result;

use crate::{io_err, Error};

/// Spark's and Hive's name for a null partition value.
pub(crate) const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";

/// One data file and the hive partition values of the directories above it.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    pub path: PathBuf,
    /// `(key, value)` from each `key=value` directory between the root and the file,
    /// outermost first, with `%XX` escapes decoded.
    pub partitions: Vec<(String, String)>,
    pub size: u64,
}

impl Part {
    /// The partition value of a key, if a directory above the file names it.
    pub fn partition(&self, key: &str) -> Option<&str> {
        self.partitions
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The data files under `root` in a stable order (sorted by path). Names beginning with `.`
/// or `_` (`_SUCCESS`, `_metadata`, `_common_metadata`, `.part-0.crc`) and files ending in
/// `.crc` are skipped, as pyarrow and Spark skip them.
pub(crate) fn discover(root: &Path) -> Result<Vec<Part>> {
    let meta = fs::metadata(root).map_err(io_err(root, "open"))?;
    if !meta.is_dir() {
        return Ok(vec![Part {
            path: root.to_path_buf(),
            partitions: Vec::new(),
            size: meta.len(),
        }]);
    }
    let mut out = Vec::new();
    walk(root, &mut Vec::new(), &mut out)?;
    if out.is_empty() {
        return Err(Error::EmptyDataset {
            path: root.to_path_buf(),
        }
        .into());
    }
    Ok(out)
}

fn walk(dir: &Path, partitions: &mut Vec<(String, String)>, out: &mut Vec<Part>) -> Result<()> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir, "list directory"))? {
        let entry = entry.map_err(io_err(dir, "list directory"))?;
        entries.push(entry.path());
    }
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || name.starts_with('_') || name.ends_with(".crc") {
            continue;
        }
        // Follows symbolic links, as a dataset reader would.
        let meta = fs::metadata(&path).map_err(io_err(&path, "open"))?;
        if meta.is_dir() {
            let pushed = match name.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    partitions.push((percent_decode(k), percent_decode(v)));
                    true
                }
                _ => false,
            };
            walk(&path, partitions, out)?;
            if pushed {
                partitions.pop();
            }
        } else if meta.is_file() {
            out.push(Part {
                path,
                partitions: partitions.clone(),
                size: meta.len(),
            });
        }
    }
    Ok(())
}

/// Decodes `%XX` escapes, as pyarrow (`segment_encoding="uri"`) and Spark write them; a
/// malformed escape is kept as it is.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(hi), Some(lo)) = ((b[i + 1] as char).to_digit(16), (b[i + 2] as char).to_digit(16)) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%2"), "%2");
        assert_eq!(percent_decode("x%2Fy"), "x/y");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn spark_side_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("bucket=1")).unwrap();
        fs::create_dir_all(d.join("bucket=0")).unwrap();
        for f in [
            "_SUCCESS",
            "._SUCCESS.crc",
            "bucket=1/part-00000.parquet",
            "bucket=1/.part-00000.parquet.crc",
            "bucket=0/part-0.parquet",
            "_metadata",
        ] {
            fs::write(d.join(f), b"x").unwrap();
        }
        let parts = discover(d).unwrap();
        let names: Vec<_> = parts
            .iter()
            .map(|p| p.path.strip_prefix(d).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["bucket=0/part-0.parquet", "bucket=1/part-00000.parquet"]);
        assert_eq!(parts[1].partition("bucket"), Some("1"));
    }
}
