//! What to read: inputs (files, `.gz`, `.zst`, stdin or any reader), which shard of them,
//! and when to commit while reading.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::{Error, Result};

/// One input: a file (plain, `.gz` or `.zst`, by its extension), stdin, or a reader.
///
/// Files can be read more than once (`cooccur`'s vocabulary pass) and split into byte-range
/// shards; stdin and readers are streams, read once from the start.
///
/// ```
/// use vecfmt_text::Input;
/// let inputs = Input::from_paths(&["corpus.txt.gz".into(), "-".into()]);
/// assert_eq!(inputs[0].name(), "corpus.txt.gz");
/// assert_eq!(inputs[1].name(), "<stdin>");
/// let r = Input::reader("updates", std::io::Cursor::new(b"0\t1\t2.5\n".to_vec()));
/// assert!(!r.is_file());
/// ```
pub struct Input {
    source: Source,
}

enum Source {
    Path(PathBuf),
    Stdin,
    Reader {
        name: String,
        reader: Mutex<Option<Box<dyn Read + Send>>>,
    },
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Input").field(&self.name()).finish()
    }
}

impl Input {
    /// A file: plain, or `.gz`/`.zst` (decompressed on the fly).
    pub fn path(path: impl Into<PathBuf>) -> Input {
        Input {
            source: Source::Path(path.into()),
        }
    }

    /// The process's standard input.
    pub fn stdin() -> Input {
        Input { source: Source::Stdin }
    }

    /// Any reader, read once, uncompressed; `name` names it in errors.
    pub fn reader(name: impl Into<String>, reader: impl Read + Send + 'static) -> Input {
        Input {
            source: Source::Reader {
                name: name.into(),
                reader: Mutex::new(Some(Box::new(reader))),
            },
        }
    }

    /// The command-line convention: each path a file, `-` for stdin, and stdin alone when
    /// there are no paths.
    pub fn from_paths(paths: &[PathBuf]) -> Vec<Input> {
        if paths.is_empty() {
            return vec![Input::stdin()];
        }
        paths
            .iter()
            .map(|p| {
                if p.as_os_str() == "-" {
                    Input::stdin()
                } else {
                    Input::path(p)
                }
            })
            .collect()
    }

    /// How errors and metadata name the input: its path, `<stdin>`, or a reader's name.
    pub fn name(&self) -> String {
        match &self.source {
            Source::Path(p) => p.display().to_string(),
            Source::Stdin => "<stdin>".into(),
            Source::Reader { name, .. } => name.clone(),
        }
    }

    /// The file, when the input is one.
    pub fn file_path(&self) -> Option<&Path> {
        match &self.source {
            Source::Path(p) => Some(p),
            _ => None,
        }
    }

    /// Whether the input is a file (which can be read twice), not a stream.
    pub fn is_file(&self) -> bool {
        self.file_path().is_some()
    }

    fn compression(&self) -> Compression {
        let ext = self
            .file_path()
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .unwrap_or("");
        match ext {
            "gz" => Compression::Gzip,
            "zst" | "zstd" => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// Whether the input is a compressed file.
    pub fn is_compressed(&self) -> bool {
        self.compression() != Compression::None
    }

    /// Size on disk, when the input is a regular file.
    pub fn size(&self) -> Option<u64> {
        self.file_path()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
    }

    /// Opens the decompressed stream, positioned at byte `from` of the file (plain files only).
    pub(crate) fn open(&self, from: u64) -> Result<Box<dyn Read + Send>> {
        let path = match &self.source {
            Source::Path(p) => p,
            Source::Stdin => return Ok(Box::new(std::io::stdin())),
            Source::Reader { name, reader } => {
                return reader
                    .lock()
                    .map_err(|_| Error::InputConsumed { input: name.clone() })?
                    .take()
                    .ok_or_else(|| Error::InputConsumed { input: name.clone() })
            }
        };
        let name = || path.display().to_string();
        let mut f = File::open(path).map_err(Error::io(name(), "cannot open"))?;
        if from > 0 {
            f.seek(SeekFrom::Start(from))
                .map_err(Error::io(name(), "cannot seek"))?;
        }
        Ok(match self.compression() {
            Compression::None => Box::new(f),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, f))),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(f).map_err(Error::io(name(), "not a zstd stream"))?)
            }
        })
    }
}

/// The total size of the inputs, when all are regular files.
pub fn total_size(inputs: &[Input]) -> Option<u64> {
    inputs.iter().map(|i| i.size()).sum()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Shard `k` (1-based) of `n`: the `k`-th of `n` byte ranges of the inputs, split at line
/// boundaries (every `n`-th block of lines for compressed inputs and streams).
///
/// ```
/// let s: vecfmt_text::Shard = "3/8".parse()?;
/// assert_eq!((s.k, s.n), (3, 8));
/// assert!("9/8".parse::<vecfmt_text::Shard>().is_err());
/// # Ok::<(), vecfmt_text::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl Shard {
    /// Shard `k` of `n`; fails unless `1 <= k <= n`.
    pub fn new(k: u64, n: u64) -> Result<Shard> {
        if n == 0 || k == 0 || k > n {
            return Err(Error::BadShard {
                spec: format!("{k}/{n}"),
            });
        }
        Ok(Shard { k, n })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

impl std::str::FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Shard> {
        let bad = || Error::BadShard { spec: s.to_owned() };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k = k.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Shard::new(k, n).map_err(|_| bad())
    }
}

/// When to commit while reading: every so often, or every so many input bytes.
///
/// ```
/// use std::time::Duration;
/// use vecfmt_text::Checkpoint;
/// assert!(matches!("30s".parse::<Checkpoint>()?, Checkpoint::Every(d) if d == Duration::from_secs(30)));
/// assert!(matches!("1G".parse::<Checkpoint>()?, Checkpoint::Bytes(n) if n == 1 << 30));
/// assert!(matches!("never".parse::<Checkpoint>()?, Checkpoint::Never));
/// # Ok::<(), vecfmt_text::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    Every(Duration),
    Bytes(u64),
    Never,
}

impl Default for Checkpoint {
    /// Every minute.
    fn default() -> Checkpoint {
        Checkpoint::Every(Duration::from_secs(60))
    }
}

impl std::str::FromStr for Checkpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Checkpoint> {
        let t = s.trim();
        if t == "0" || t == "never" || t == "off" {
            return Ok(Checkpoint::Never);
        }
        if t.ends_with(['s', 'm', 'h']) && !t.to_ascii_uppercase().ends_with("MB") {
            return Ok(Checkpoint::Every(crate::units::parse_duration(t)?));
        }
        Ok(Checkpoint::Bytes(crate::units::parse_bytes(t)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse() {
        assert_eq!("2/8".parse::<Shard>().unwrap(), Shard { k: 2, n: 8 });
        assert_eq!(" 1 / 1 ".parse::<Shard>().unwrap(), Shard { k: 1, n: 1 });
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/2/3"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(matches!(&e, Error::BadShard { spec } if spec == bad), "{bad}: {e}");
        }
    }

    #[test]
    fn checkpoints_parse() {
        assert_eq!(
            "5m".parse::<Checkpoint>().unwrap(),
            Checkpoint::Every(Duration::from_secs(300))
        );
        assert_eq!("64K".parse::<Checkpoint>().unwrap(), Checkpoint::Bytes(64 << 10));
        assert_eq!("512MB".parse::<Checkpoint>().unwrap(), Checkpoint::Bytes(512 << 20));
        assert_eq!("0".parse::<Checkpoint>().unwrap(), Checkpoint::Never);
        assert!(matches!("soon".parse::<Checkpoint>(), Err(Error::BadSize { .. })));
        assert!(matches!("xs".parse::<Checkpoint>(), Err(Error::BadDuration { .. })));
    }

    #[test]
    fn a_reader_is_read_once() {
        let i = Input::reader("r", std::io::Cursor::new(vec![1u8]));
        assert!(i.open(0).is_ok());
        assert!(matches!(i.open(0), Err(Error::InputConsumed { input }) if input == "r"));
    }
}
