//! Shared by the power-loss and fault-injection tests: a [`Storage`] that models an OS page
//! cache, scripted update workloads with a model of every committed state, and the check that
//! a file image holds one of those states.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use vecfmt::accum::Storage;
use vecfmt::{Accumulator, AccumulatorOptions, DType, Matrix};
pub use vecfmt_testkit::sample::Rng;

/// One unsynced write.
#[derive(Debug, Clone)]
struct Pending {
    offset: u64,
    bytes: Vec<u8>,
}

#[derive(Debug, Default)]
struct DiskState {
    /// What survives any crash: everything synced.
    durable: Vec<u8>,
    /// What reads see: `durable` with every pending write applied in order.
    cache: Vec<u8>,
    /// Writes since the last sync, in order.
    pending: Vec<Pending>,
    /// Writes and syncs so far.
    ops: u64,
    writes: u64,
    syncs: u64,
    /// Writes past the superblock into bytes already on disk: reused space.
    reused: u64,
    /// The power fails at this write or sync (it may be partly done).
    crash_at: Option<u64>,
    crashed: bool,
}

/// A file in a modelled page cache: writes are held in the cache until `sync`; a crash keeps
/// the synced bytes and, for each 512 B or 4 KiB sector, the result of some prefix of the
/// unsynced writes that touched it (writeback in any order, torn at sector boundaries).
#[derive(Debug, Default)]
pub struct SimDisk {
    s: Mutex<DiskState>,
}

fn put(buf: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let end = offset as usize + bytes.len();
    if buf.len() < end {
        buf.resize(end, 0);
    }
    buf[offset as usize..end].copy_from_slice(bytes);
}

fn power_lost() -> io::Error {
    io::Error::other("simulated power loss")
}

impl SimDisk {
    pub fn new() -> Arc<SimDisk> {
        Arc::new(SimDisk::default())
    }
    /// A disk whose durable and cached contents are `bytes`.
    pub fn with_contents(bytes: Vec<u8>) -> Arc<SimDisk> {
        let d = SimDisk::default();
        {
            let mut s = d.s.lock().unwrap();
            s.durable = bytes.clone();
            s.cache = bytes;
        }
        Arc::new(d)
    }
    /// The power fails at write-or-sync number `n` (counted from 0).
    pub fn crash_at(&self, n: u64) {
        self.s.lock().unwrap().crash_at = Some(n);
    }
    pub fn ops(&self) -> u64 {
        self.s.lock().unwrap().ops
    }
    pub fn counts(&self) -> (u64, u64) {
        let s = self.s.lock().unwrap();
        (s.writes, s.syncs)
    }
    /// Writes into space that already held synced data (past the superblock).
    pub fn reused_writes(&self) -> u64 {
        self.s.lock().unwrap().reused
    }
    pub fn crashed(&self) -> bool {
        self.s.lock().unwrap().crashed
    }
    /// What reads see now (no crash).
    pub fn cached(&self) -> Vec<u8> {
        self.s.lock().unwrap().cache.clone()
    }
    /// Only what was synced.
    pub fn durable(&self) -> Vec<u8> {
        self.s.lock().unwrap().durable.clone()
    }
    /// Models `fsync` failing with EIO: the unsynced writes are dropped from what a crash
    /// can keep, though reads still see them.
    pub fn lose_pending(&self) {
        let mut s = self.s.lock().unwrap();
        s.pending.clear();
    }
    /// The file as a crash leaves it. Each seed picks a sector size (512 B or 4 KiB) and, per
    /// sector, how many of the unsynced writes that touched it reached the disk.
    pub fn crash_image(&self, seed: u64) -> Vec<u8> {
        let s = self.s.lock().unwrap();
        let mut rng = Rng::new(seed ^ 0xC0FF_EE00);
        let sector: u64 = if rng.below(2) == 0 { 512 } else { 4096 };
        // How eager writeback was: nothing, everything, or a random share, per sector.
        let mode = rng.below(4);
        let mut img = s.durable.clone();
        let mut touched: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, w) in s.pending.iter().enumerate() {
            if w.bytes.is_empty() {
                continue;
            }
            let first = w.offset / sector;
            let last = (w.offset + w.bytes.len() as u64 - 1) / sector;
            for sec in first..=last {
                touched.entry(sec).or_default().push(i);
            }
        }
        for (sec, writes) in touched {
            let n = writes.len() as u64;
            let k = match mode {
                0 => 0,
                1 => n,
                _ => rng.below(n + 1),
            };
            let (lo, hi) = (sec * sector, (sec + 1) * sector);
            for &i in &writes[..k as usize] {
                let w = &s.pending[i];
                let a = w.offset.max(lo);
                let b = (w.offset + w.bytes.len() as u64).min(hi);
                put(&mut img, a, &w.bytes[(a - w.offset) as usize..(b - w.offset) as usize]);
            }
        }
        img
    }
}

impl Storage for SimDisk {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let s = self.s.lock().unwrap();
        if s.crashed {
            return Err(power_lost());
        }
        let end = offset as usize + buf.len();
        if end > s.cache.len() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"));
        }
        buf.copy_from_slice(&s.cache[offset as usize..end]);
        Ok(())
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.s.lock().unwrap();
        if s.crashed {
            return Err(power_lost());
        }
        let n = s.ops;
        s.ops += 1;
        s.writes += 1;
        if offset >= 8192 && offset < s.durable.len() as u64 {
            s.reused += 1;
        }
        s.pending.push(Pending {
            offset,
            bytes: buf.to_vec(),
        });
        put(&mut s.cache, offset, buf);
        if s.crash_at == Some(n) {
            // The power fails during this write: it is in the cache, maybe partly on disk.
            s.crashed = true;
            return Err(power_lost());
        }
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        let mut s = self.s.lock().unwrap();
        if s.crashed {
            return Err(power_lost());
        }
        let n = s.ops;
        s.ops += 1;
        s.syncs += 1;
        if s.crash_at == Some(n) {
            // The power fails during the sync: any part of the pending writes may be on disk.
            s.crashed = true;
            return Err(power_lost());
        }
        // Pages an earlier failed sync marked clean were never written and stay lost; a
        // later sync succeeds without them. This is why a store must stop after one fails.
        let pending = std::mem::take(&mut s.pending);
        for w in pending {
            put(&mut s.durable, w.offset, &w.bytes);
        }
        Ok(())
    }
    fn file_len(&self) -> io::Result<u64> {
        let s = self.s.lock().unwrap();
        if s.crashed {
            return Err(power_lost());
        }
        Ok(s.cache.len() as u64)
    }
}

/// The content of a matrix at one commit: entries, and the row labels if any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub entries: BTreeMap<(u64, u64), f64>,
    pub labels: Vec<String>,
}

/// One step of a scripted workload.
#[derive(Debug, Clone)]
pub enum Step {
    /// Updates `(row, col, value)`; with labels, the row is named `r{row}`.
    Add(Vec<(u64, u64, i64)>),
    Commit,
    /// Drop the accumulator (losing what was added since the last commit) and open the file
    /// again.
    Reopen,
}

/// A scripted workload: how the accumulator is configured, and its steps.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: &'static str,
    pub dtype: DType,
    pub memory: u64,
    pub chunk_bytes: usize,
    pub labels: bool,
    pub n_cols: u64,
    /// Start from a file that `MatrixWriter` wrote (sections packed at 8 bytes, labels and
    /// metadata), opened for accumulation, instead of creating one.
    pub written: bool,
    pub steps: Vec<Step>,
}

impl Workload {
    pub fn opts(&self) -> AccumulatorOptions {
        let mut o = AccumulatorOptions::new(self.dtype)
            .memory(self.memory)
            .chunk_bytes(self.chunk_bytes)
            .n_cols(self.n_cols)
            .row_labels(self.labels);
        if self.dtype.is_float() {
            o = o.codec(vecfmt::Codec::Lz4);
        }
        o
    }
}

fn adds(rng: &mut Rng, n: usize, rows: u64, cols: u64, negative: bool) -> Step {
    Step::Add(
        (0..n)
            .map(|_| {
                let r = rng.below(rows);
                let c = rng.below(cols);
                let mut v = (rng.below(8) + 1) as i64;
                if negative && rng.below(3) == 0 {
                    v = -v * 1_000_000_007;
                }
                (r, c, v)
            })
            .collect(),
    )
}

/// The scripted workloads: a fresh build with commits; reopen-and-continue with labels;
/// evictions under a tiny budget (copy-on-write chunk rewrites, reloads and reuse of freed
/// space between commits); an integer matrix.
pub fn workloads() -> Vec<Workload> {
    let mut rng = Rng::new(7);
    let mut fresh = Vec::new();
    for _ in 0..5 {
        fresh.push(adds(&mut rng, 300, 200, 64, false));
        fresh.push(Step::Commit);
    }
    let mut reopen = Vec::new();
    for round in 0..3 {
        // Three commits after each reopen: the third reuses space the first freed.
        for _ in 0..3 {
            reopen.push(adds(&mut rng, 150, 60 + 40 * round, 40, false));
            reopen.push(Step::Commit);
        }
        // Added but never committed: lost by the reopen.
        reopen.push(adds(&mut rng, 50, 150, 40, false));
        reopen.push(Step::Reopen);
    }
    for _ in 0..3 {
        reopen.push(adds(&mut rng, 100, 150, 40, false));
        reopen.push(Step::Commit);
    }
    let mut evict = Vec::new();
    for i in 0..4 {
        evict.push(adds(&mut rng, 1500, 400, 300, false));
        evict.push(Step::Commit);
        if i == 1 {
            evict.push(Step::Reopen);
        }
    }
    let mut written = Vec::new();
    for i in 0..6 {
        written.push(adds(&mut rng, 400, 60, 120, false));
        written.push(Step::Commit);
        if i == 2 {
            written.push(Step::Reopen);
        }
    }
    let mut int = Vec::new();
    for _ in 0..5 {
        int.push(adds(&mut rng, 250, 120, 50, true));
        int.push(Step::Commit);
    }
    vec![
        Workload {
            name: "fresh build",
            written: false,
            dtype: DType::F32,
            memory: 64 << 20,
            chunk_bytes: 4096,
            labels: false,
            n_cols: 64,
            steps: fresh,
        },
        Workload {
            name: "reopen and continue",
            written: false,
            dtype: DType::F64,
            memory: 64 << 20,
            chunk_bytes: 2048,
            labels: true,
            n_cols: 40,
            steps: reopen,
        },
        Workload {
            name: "evictions, tiny budget",
            written: false,
            dtype: DType::F32,
            memory: 48 << 10,
            chunk_bytes: 1024,
            labels: false,
            n_cols: 300,
            steps: evict,
        },
        Workload {
            name: "a file MatrixWriter wrote",
            written: true,
            dtype: DType::F64,
            memory: 256 << 10,
            chunk_bytes: 1024,
            labels: true,
            n_cols: 120,
            steps: written,
        },
        Workload {
            name: "integer i64",
            written: false,
            dtype: DType::I64,
            memory: 64 << 20,
            chunk_bytes: 2048,
            labels: false,
            n_cols: 50,
            steps: int,
        },
    ]
}

/// A file written by `MatrixWriter` (raw chunks, row labels `r0..`, metadata), and its state.
fn written_file(w: &Workload) -> (Vec<u8>, State) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("written.vfm");
    let opts = vecfmt::WriterOptions::new(DType::F64, w.n_cols).codec(vecfmt::Codec::Raw);
    let mut mw = vecfmt::MatrixWriter::create(&path, opts).unwrap();
    let mut state = State::default();
    let rows = 40u64;
    for r in (0..rows).filter(|r| r % 3 != 1) {
        let cols: Vec<u32> = (0..8)
            .map(|k| ((r * 7 + k * 13) % w.n_cols) as u32)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let vals: Vec<f64> = cols.iter().map(|&c| (c % 5 + 1) as f64).collect();
        for (&c, &v) in cols.iter().zip(&vals) {
            state.entries.insert((r, c as u64), v);
        }
        mw.push_row(r, &cols, &vals).unwrap();
    }
    if w.labels {
        state.labels = (0..rows).map(|r| format!("r{r}")).collect();
        mw.set_row_labels(state.labels.clone());
    } else {
        // The row count comes from the last row pushed.
    }
    mw.set_metadata(serde_json::json!({ "origin": "MatrixWriter", "note": "sections packed at 8 bytes" }))
        .unwrap();
    mw.finish().unwrap();
    (std::fs::read(&path).unwrap(), state)
}

/// What a run acknowledged.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `states[k]` is the content of commit `k` (0: the empty file as created).
    pub states: Vec<State>,
    /// The last commit the workload saw succeed, if any (None: not even the create).
    pub acked: Option<usize>,
    /// The error that stopped the run, if any.
    pub error: Option<String>,
    pub evictions: u64,
    pub reloads: u64,
    pub file_bytes: u64,
    pub bytes_written: u64,
}

impl Outcome {
    /// Commit numbers a file may hold after the run: the last acknowledged one, or the one
    /// in flight when the run stopped.
    pub fn allowed(&self) -> std::ops::RangeInclusive<usize> {
        match self.acked {
            None => 0..=0,
            Some(k) => k..=(k + 1).min(self.states.len() - 1),
        }
    }
}

/// The storage an accumulator of a run gets: the disk, perhaps behind a wrapper.
pub type Wrap<'a> = &'a dyn Fn() -> Box<dyn Storage>;

const NAME: &str = "sim.vfm";

/// Runs a workload on a storage until it ends or a call fails. Every error is returned,
/// never a panic. The model is updated for every acknowledged commit.
pub fn run(w: &Workload, storage: Wrap<'_>) -> Outcome {
    run_with(w, storage, &|_, _| {})
}

/// [`run`], calling `on_error` with the accumulator (still open) and the error that stopped
/// the run.
pub fn run_with(w: &Workload, storage: Wrap<'_>, on_error: &dyn Fn(Option<&Accumulator>, &vecfmt::Error)) -> Outcome {
    let mut out = Outcome::default();
    let mut model = State::default();
    let mut acc: Option<Accumulator> = None;
    let r = (|| -> vecfmt::Result<()> {
        let mut committed = State::default();
        if w.written {
            // Commit 0 is the file MatrixWriter wrote, put on the disk whole.
            let (img, state) = written_file(w);
            out.states.push(state.clone());
            let io = |op: &'static str| {
                move |error| vecfmt::Error::Io {
                    path: NAME.into(),
                    op,
                    error,
                }
            };
            // As MatrixWriter writes it: the data, synced, then the superblock, synced.
            let st = storage();
            let sb = vecfmt::consts::SUPERBLOCK_SIZE as usize;
            st.write_at(&img[sb..], sb as u64).map_err(io("write"))?;
            st.sync().map_err(io("sync"))?;
            st.write_at(&img[..sb], 0).map_err(io("write superblock"))?;
            st.sync().map_err(io("sync"))?;
            drop(st);
            (model, committed) = (state.clone(), state);
            acc = Some(Accumulator::open_with_storage(NAME, storage(), w.opts())?);
        } else {
            // Commit 0 is the empty file as created.
            out.states.push(State::default());
            acc = Some(Accumulator::create_with_storage(NAME, storage(), w.opts())?);
        }
        out.acked = Some(0);
        for step in &w.steps {
            let a = acc.as_ref().expect("open");
            match step {
                Step::Add(ups) => {
                    for &(r, c, v) in ups {
                        let row = if w.labels {
                            let l = format!("r{r}");
                            let id = a.row_id(&l)?;
                            if id as usize == model.labels.len() {
                                model.labels.push(l);
                            }
                            id
                        } else {
                            r
                        };
                        if w.dtype.is_float() {
                            a.add(row, c, v as f64)?;
                        } else {
                            a.add_int(row, c, v)?;
                        }
                        *model.entries.entry((row, c)).or_insert(0.0) += v as f64;
                    }
                }
                Step::Commit => {
                    let k = out.states.len();
                    a.set_metadata("step", serde_json::json!(k));
                    // Recorded before the call: a commit that landed but was not
                    // acknowledged is a valid state too.
                    out.states.push(model.clone());
                    a.commit()?;
                    out.acked = Some(k);
                    committed = model.clone();
                }
                Step::Reopen => {
                    let st = a.stats();
                    out.evictions += st.evictions;
                    out.reloads += st.reloads;
                    out.bytes_written += st.bytes_written;
                    drop(acc.take());
                    model = committed.clone();
                    acc = Some(Accumulator::open_with_storage(NAME, storage(), w.opts())?);
                }
            }
        }
        let st = acc.as_ref().expect("open").stats();
        out.evictions += st.evictions;
        out.reloads += st.reloads;
        out.file_bytes = st.file_bytes;
        out.bytes_written += st.bytes_written;
        Ok(())
    })();
    if let Err(e) = r {
        on_error(acc.as_ref(), &e);
        out.error = Some(e.to_string());
    }
    out
}

/// Opens a file image and checks it: it opens, every checksum verifies, and it holds the
/// state of a commit in `allowed`. Returns the commit number found, or `None` when the file
/// does not open and `may_fail` allows that (nothing was acknowledged).
pub fn check_image(img: &[u8], file: &Path, w: &Workload, out: &Outcome, may_fail: bool, what: &str) -> Option<usize> {
    std::fs::write(file, img).unwrap();
    let m = match Matrix::open(file) {
        Ok(m) => m,
        Err(e) if may_fail => {
            let _ = e;
            return None;
        }
        Err(e) => panic!("{what}: the file does not open: {e}"),
    };
    let report = m.verify();
    assert!(report.is_clean(), "{what}: verify: {:?}", report.problems);
    let k = m
        .metadata()
        .and_then(|v| v.get("step"))
        .and_then(|s| s.as_u64())
        .unwrap_or(0) as usize;
    let allowed = out.allowed();
    assert!(
        allowed.contains(&k),
        "{what}: the file holds commit {k}; allowed {allowed:?} (acknowledged {:?})",
        out.acked
    );
    let got = read_state(&m, w.labels, what);
    let want = &out.states[k];
    assert!(
        nonzero(&got) == nonzero(want),
        "{what}: the content is not that of commit {k} ({} entries found, {} expected)",
        got.entries.len(),
        want.entries.len()
    );
    Some(k)
}

/// A state without entries whose sums cancelled to zero (they may be stored as explicit
/// zeros).
pub fn nonzero(s: &State) -> State {
    State {
        entries: s
            .entries
            .iter()
            .filter(|(_, v)| **v != 0.0)
            .map(|(k, v)| (*k, *v))
            .collect(),
        labels: s.labels.clone(),
    }
}

/// The entries (and row labels) of a matrix.
pub fn read_state(m: &Matrix, labels: bool, what: &str) -> State {
    let mut got = State::default();
    for row in m.iter_rows() {
        let row = row.unwrap_or_else(|e| panic!("{what}: {e}"));
        for (c, v) in row.iter() {
            got.entries.insert((row.id(), c), v.to_f64());
        }
    }
    if labels {
        got.labels = m
            .row_labels()
            .map(|l| l.iter().map(|s| s.unwrap().to_owned()).collect())
            .unwrap_or_default();
    }
    got
}

/// A storage that, at every sync, opens what is on disk and checks its current commit: every
/// checksum verifies, and no extent of its free list overlaps a chunk or section it references.
#[derive(Debug, Clone)]
pub struct Checking {
    pub disk: Arc<SimDisk>,
    pub file: Arc<std::path::PathBuf>,
    pub checked: Arc<std::sync::atomic::AtomicU64>,
}

impl Storage for Checking {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.disk.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.disk.write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.disk.sync()?;
        let img = self.disk.durable();
        std::fs::write(&*self.file, &img).unwrap();
        // Before the first commit of a new file there is nothing to check.
        let Ok(m) = Matrix::open(&*self.file) else {
            return Ok(());
        };
        let generation = m.commit().generation;
        let r = m.verify();
        assert!(r.is_clean(), "commit {generation}: {:?}", r.problems);
        let c = m.catalog();
        let mut used: Vec<(u64, u64, String)> = c
            .chunks
            .iter()
            .enumerate()
            .map(|(i, e)| (e.offset, e.stored_len, format!("chunk {i}")))
            .collect();
        used.push((
            m.commit().catalog_offset,
            m.commit().catalog_length,
            "the catalog".into(),
        ));
        for (s, n) in [
            (c.row_labels, "the row labels"),
            (c.col_labels, "the column labels"),
            (c.metadata, "the metadata"),
            (c.free_extents, "the free list"),
        ] {
            if s.is_present() {
                used.push((s.offset, s.length, n.into()));
            }
        }
        let f = c.free_extents;
        if f.is_present() {
            for r in img[f.offset as usize..(f.offset + f.length) as usize].chunks_exact(24) {
                let g = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().unwrap());
                let (o, l, freed) = (g(0), g(8), g(16));
                for (uo, ul, n) in &used {
                    assert!(
                        o + l <= *uo || uo + ul <= o,
                        "commit {generation}: free extent {o}+{l} (freed at {freed}) overlaps {n} at {uo}+{ul}"
                    );
                }
            }
        }
        self.checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
    fn file_len(&self) -> io::Result<u64> {
        self.disk.file_len()
    }
}
