//! Opening a file for accumulation: [`Accumulator::create`] and [`Accumulator::open`] (and
//! their `Storage` forms for tests), the checks against the file's working marker, and the
//! construction of the shared state from the file's catalog.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};

use super::bulk::{self, Bulk, Codes};
use super::commit::rewrite;
use super::options::{default_memory_budget, AccumulatorOptions};
use super::part::{Part, Slot, PART_OVERHEAD};
use super::pending;
use super::shared::Shared;
use super::store::{self, Storage, Store};
use super::vocab::Vocab;
use super::{Accumulator, Inner, WORKING_CODEC, WORKING_KEY};
use crate::error::io_err;
use crate::{Axis, DType, Error, MatrixWriter, Result, WriterOptions};

/// What [`Accumulator::open_store`] found: an accumulator, or a finished file to rewrite in
/// its working dtype first.
enum Opened {
    Ready(Accumulator),
    Rewrite(DType, AccumulatorOptions),
}

impl Accumulator {
    /// Creates a new file at `path` (an error if it exists, unless
    /// [`AccumulatorOptions::overwrite`]) and opens it for accumulation.
    pub fn create(path: impl AsRef<Path>, opts: AccumulatorOptions) -> Result<Accumulator> {
        let path = path.as_ref();
        if !opts.overwrite && path.exists() {
            return Err(io_err(path, "create")(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the file exists; open it to add to it, or choose to overwrite it",
            )));
        }
        if opts.symmetric
            && ((opts.n_rows.is_some() || opts.n_cols.is_some()) && opts.n_rows != opts.n_cols
                || (opts.row_labels || opts.col_labels) && !opts.shared_labels)
        {
            return Err(Error::LengthMismatch {
                what: "symmetric accumulation",
                detail: format!(
                    "{}: a symmetric matrix is square: give the same number of rows and columns, and shared labels or none",
                    path.display()
                ),
            });
        }
        let working = pending::working_dtype(opts.dtype);
        let n_cols = opts.n_cols.unwrap_or(0);
        let wopts = WriterOptions::new(working, n_cols)
            .n_rows(opts.n_rows.unwrap_or(0))
            .codec(WORKING_CODEC);
        let mut w = MatrixWriter::create(path, wopts)?;
        let mut meta = serde_json::Map::new();
        meta.insert(WORKING_KEY.into(), working_marker(&opts));
        w.set_metadata(serde_json::Value::Object(meta))?;
        if opts.row_labels && opts.n_rows.is_none() {
            w.set_row_labels(Vec::<String>::new());
        }
        if opts.col_labels && opts.n_cols.is_none() {
            w.set_col_labels(Vec::<String>::new());
        }
        w.finish()?;
        Accumulator::open(path, opts)
    }

    /// Opens an existing file to add to it. A finished f32 file is first rewritten in f64 (see
    /// the module docs). Holds the file's exclusive lock until dropped: readers are refused
    /// with [`Error::Locked`] meanwhile.
    pub fn open(path: impl AsRef<Path>, opts: AccumulatorOptions) -> Result<Accumulator> {
        let path = path.as_ref();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err(path, "open for update"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked { path: path.into() }),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(path, "lock")(e)),
        }
        // With the file's lock held, no other build of it is live: what a killed one left
        // (spill runs, an unfinished rewrite) can go.
        let scratch: Vec<&Path> = opts.scratch_dir.as_deref().into_iter().collect();
        let removed = crate::publish::remove_stale_temporaries(path, &scratch);
        let storage: Box<dyn Storage> = Box::new(file.try_clone().map_err(io_err(path, "open"))?);
        match Accumulator::open_store(path, storage, Some(file), opts)? {
            Opened::Ready(mut acc) => {
                acc.removed = removed;
                Ok(acc)
            }
            Opened::Rewrite(working, opts) => {
                // The lock was released: the rewrite replaces the file by rename.
                rewrite(
                    path,
                    working,
                    WORKING_CODEC,
                    3,
                    Some(working_marker(&opts)),
                    opts.max_chunk_bytes,
                    super::commit::Work {
                        memory: opts.memory.unwrap_or_else(super::default_memory_budget),
                        threads: opts.threads,
                    },
                    // Stoppable, but not reported: the progress is for the finish.
                    &crate::cancel::Watch {
                        cancel: opts.watch.cancel.clone(),
                        progress: None,
                    },
                )?;
                let mut acc = Accumulator::open(path, opts)?;
                acc.removed.paths.extend(removed.paths);
                acc.removed.bytes += removed.bytes;
                Ok(acc)
            }
        }
    }

    /// Creates a new file in `storage` and opens it for accumulation, as
    /// [`Accumulator::create`] does with a file. `path` only names the file in errors. For
    /// tests that model power loss and failing disks through [`Storage`].
    #[doc(hidden)]
    pub fn create_with_storage(
        path: impl AsRef<Path>,
        storage: Box<dyn Storage>,
        opts: AccumulatorOptions,
    ) -> Result<Accumulator> {
        let path = path.as_ref();
        let working = pending::working_dtype(opts.dtype);
        let empty = |yes: bool, fixed: Option<u64>, axis: Axis| -> Result<Option<Vec<u8>>> {
            (yes && fixed.is_none())
                .then(|| crate::labels::LabelList::default().build(axis))
                .transpose()
        };
        let row_labels = empty(opts.row_labels, opts.n_rows, Axis::Row)?;
        let col_labels = empty(opts.col_labels, opts.n_cols, Axis::Col)?;
        let mut meta = serde_json::Map::new();
        meta.insert(WORKING_KEY.into(), working_marker(&opts));
        let meta = serde_json::to_vec(&meta).expect("JSON serialises");
        let storage = store::format(
            path,
            storage,
            working,
            (opts.n_rows.unwrap_or(0), opts.n_cols.unwrap_or(0)),
            row_labels.as_deref(),
            col_labels.as_deref(),
            &meta,
        )?;
        Accumulator::open_with_storage(path, storage, opts)
    }

    /// Opens the file in `storage` for accumulation, as [`Accumulator::open`] does with a
    /// file (without its lock). `path` only names the file in errors. A finished file whose
    /// dtype differs from the working dtype is refused: open it by path to rewrite it.
    #[doc(hidden)]
    pub fn open_with_storage(
        path: impl AsRef<Path>,
        storage: Box<dyn Storage>,
        opts: AccumulatorOptions,
    ) -> Result<Accumulator> {
        let path = path.as_ref();
        match Accumulator::open_store(path, storage, None, opts)? {
            Opened::Ready(acc) => Ok(acc),
            Opened::Rewrite(..) => Err(io_err(path, "open for update")(std::io::Error::other(
                "a finished file must be rewritten in its working dtype first; open it by path",
            ))),
        }
    }

    /// Opens the file in `storage`, which `lock` (if any) holds exclusively.
    fn open_store(
        path: &Path,
        storage: Box<dyn Storage>,
        lock: Option<std::fs::File>,
        opts: AccumulatorOptions,
    ) -> Result<Opened> {
        let store::Loaded {
            commit,
            catalog,
            row_labels,
            col_labels,
            metadata,
            free,
        } = store::load(storage.as_ref(), path)?;
        let target = marked_dtype(metadata.as_ref()).unwrap_or(commit.dtype);
        if target != opts.dtype {
            return Err(Error::DTypeMismatch {
                actual: target,
                requested: opts.dtype,
            });
        }
        let marked = marked_symmetric(metadata.as_ref());
        if marked != opts.symmetric && (marked || commit.nnz > 0) {
            return Err(io_err(path, "open for update")(std::io::Error::other(if marked {
                "the file holds the upper triangle of an unfinished symmetric build: open it with the symmetric option, or finish it with compact"
            } else {
                "symmetric updates can only start a new file (this one holds a full matrix); build the new data into another file and merge the two"
            })));
        }
        let file_codes = bulk::marked_codes(metadata.as_ref());
        let marked_bulk = file_codes.is_some();
        if marked_bulk != opts.bulk.is_some() && (marked_bulk || commit.nnz > 0) {
            return Err(io_err(path, "open for update")(std::io::Error::other(if marked_bulk {
                "the file holds the runs of an unfinished bulk build: open it with the bulk option, or finish it with compact"
            } else {
                "bulk accumulation can only start a new file (this one holds chunks); build the new data into another file and merge the two"
            })));
        }
        let working = pending::working_dtype(target);
        if commit.dtype != working {
            return Ok(Opened::Rewrite(working, opts));
        }
        let bulk = match &opts.bulk {
            None => None,
            Some(exact) => {
                // The file's own table decodes its runs, and codes the new ones.
                let codes = file_codes.unwrap_or_else(|| Codes::new(exact));
                Some(Bulk::new(codes, bulk::committed_runs(path, metadata.as_ref())?))
            }
        };
        let (n_rows, n_cols) = (commit.n_rows, commit.n_cols);
        if n_rows > u32::MAX as u64 || n_cols > u32::MAX as u64 {
            return Err(Error::LengthMismatch {
                what: "accumulation",
                detail: format!(
                    "{}: {n_rows} rows × {n_cols} columns; accumulation supports ids below 2^32 - 1",
                    path.display(),
                ),
            });
        }
        let mut metadata = match metadata {
            Some(serde_json::Value::Object(o)) => o,
            _ => serde_json::Map::new(),
        };
        let mut marker = working_marker(&opts);
        if let (Some(b), Some(m)) = (&bulk, marker.as_object_mut()) {
            m.insert("bulk".into(), serde_json::json!({ "values": b.codes.to_json() }));
        }
        metadata.insert(WORKING_KEY.into(), marker);
        // A commit lists the runs afresh.
        metadata.remove(bulk::RUNS_KEY);
        let store = Store::new(path, storage, lock, commit, &catalog, free, WORKING_CODEC, 1);

        let mk_vocab =
            |want: bool, have: Option<Vec<String>>, n: u64, axis: Axis| -> Result<Option<Arc<RwLock<Vocab>>>> {
                match (want, have) {
                    (_, Some(l)) => Ok(Some(Arc::new(RwLock::new(Vocab::from_labels(l))))),
                    (true, None) if n == 0 => Ok(Some(Arc::new(RwLock::new(Vocab::default())))),
                    (true, None) => Err(Error::NoLabels { axis }),
                    (false, None) => Ok(None),
                }
            };
        let row_vocab = mk_vocab(opts.row_labels, row_labels, n_rows, Axis::Row)?;
        let col_vocab = if opts.shared_labels {
            row_vocab.clone()
        } else {
            mk_vocab(opts.col_labels, col_labels, n_cols, Axis::Col)?
        };

        let mut parts = Vec::new();
        let chunks = &catalog.chunks;
        for (i, c) in chunks.iter().enumerate() {
            let start = if i == 0 { 0 } else { c.row_start };
            let end = chunks.get(i + 1).map_or(1 << 32, |n| n.row_start);
            parts.push((start, end, vec![*c]));
        }
        if parts.is_empty() {
            parts.push((0, 1 << 32, Vec::new()));
        }
        let budget = opts.memory.unwrap_or_else(default_memory_budget) as i64;
        let entries_per_chunk = (opts.chunk_bytes / 12).max(64);
        let n_parts = parts.len() as i64;
        macro_rules! shared {
            () => {
                Arc::new(Shared {
                    store,
                    budget,
                    parts: RwLock::new(
                        parts
                            .into_iter()
                            .map(|(a, b, c)| Slot::new(Part::new(a, b, c)))
                            .collect(),
                    ),
                    used: AtomicI64::new(n_parts * PART_OVERHEAD as i64),
                    peak: AtomicI64::new(0),
                    cache_bytes: AtomicI64::new(0),
                    heat_threshold: AtomicU64::new(0),
                    unaccounted: AtomicI64::new(0),
                    last_sample: AtomicU64::new(0),
                    evict_lock: Mutex::new(()),
                    clock: AtomicU64::new(0),
                    rows_seen: AtomicU64::new(n_rows),
                    cols_seen: AtomicU64::new(n_cols),
                    row_vocab,
                    col_vocab,
                    vocab_accounted: AtomicI64::new(0),
                    external: AtomicI64::new(0),
                    metadata: Mutex::new(metadata),
                    committed_shape: Mutex::new((n_rows, n_cols)),
                    failed: Mutex::new(None),
                    poisoned: AtomicBool::new(false),
                    split_wanted: AtomicBool::new(false),
                    evictions: AtomicU64::new(0),
                    rounds: AtomicU64::new(0),
                    reloads: AtomicU64::new(0),
                    cache_drops: AtomicU64::new(0),
                    spills: AtomicU64::new(0),
                    commits: AtomicU64::new(0),
                    entries_per_chunk,
                    bulk,
                    opts,
                })
            };
        }
        let inner = if working.is_float() {
            Inner::Float(shared!())
        } else {
            Inner::Int(shared!())
        };
        dispatch!(&inner, s => s.account_vocab());
        Ok(Opened::Ready(Accumulator {
            inner,
            local: Mutex::new(None),
            removed: crate::publish::Removed::default(),
        }))
    }
}

fn working_marker(opts: &AccumulatorOptions) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("dtype".into(), opts.dtype.name().into());
    match (&opts.bulk, opts.symmetric) {
        (None, true) => {
            m.insert("symmetric".into(), "upper triangle".into());
        }
        (None, false) => {}
        (Some(exact), symmetric) => {
            if symmetric {
                m.insert("symmetric".into(), "both triangles, in the runs".into());
            }
            m.insert(
                "bulk".into(),
                serde_json::json!({ "values": Codes::new(exact).to_json() }),
            );
        }
    }
    serde_json::Value::Object(m)
}

/// The dtype a working file's marker says the finished file will have.
pub(super) fn marked_dtype(metadata: Option<&serde_json::Value>) -> Option<DType> {
    metadata?.get(WORKING_KEY)?.get("dtype")?.as_str()?.parse().ok()
}

/// Whether a file's working marker says it holds the upper triangle of a symmetric matrix.
pub(super) fn marked_symmetric(metadata: Option<&serde_json::Value>) -> bool {
    metadata
        .and_then(|v| v.get(WORKING_KEY))
        .and_then(|w| w.get("symmetric"))
        .is_some()
}
