//! The file under accumulation: space allocation, chunk reads and copy-on-write chunk writes,
//! and the commit protocol of FORMAT.md §6.1.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::chunk::{self, ChunkBuilder};
use crate::consts::{CHUNK_ALIGN, FORMAT_VERSION, MAGIC, META_PAGE_SIZE, SUPERBLOCK_SIZE};
use crate::error::{io_err, Malformed};
use crate::labels::Labels;
use crate::layout::{align_up, parse_page, PageProblem};
use crate::{Catalog, ChunkEntry, Codec, Commit, DType, Error, Result, SectionRef};

/// The file operations the accumulator needs: positioned reads and writes, sync and the
/// length. Every byte the accumulator reads or writes in its open file goes through this
/// trait, so that tests can model a page cache that loses unsynced writes, or a disk that
/// fails. Whole new files are written through [`MatrixWriter`](crate::MatrixWriter) instead
/// and put in place by rename: the empty file of
/// [`Accumulator::create`](super::Accumulator::create) and the rewrite of
/// [`Accumulator::finish`](super::Accumulator::finish).
///
/// A call interrupted by a signal may return [`io::ErrorKind::Interrupted`]; the accumulator
/// retries it. Any other error stops the accumulator; after a failed `sync` it refuses every
/// further write, because a retried `fsync` can report success for data that was lost.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, extending the file when needed.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every write so far durable (`fdatasync`).
    fn sync(&self) -> io::Result<()>;
    /// The length of the file in bytes.
    fn file_len(&self) -> io::Result<u64>;
    /// Gives the disk blocks of `len` bytes at `offset` back to the file system, keeping
    /// the file's length: the range then reads as zeros. For free space only. The default
    /// keeps them (a storage that cannot punch holes only takes more disk).
    fn punch_hole(&self, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
}

impl Storage for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.sync_data()
    }
    fn file_len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(n)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
            return Ok(());
        };
        // SAFETY: fallocate on our own open file descriptor; it touches no memory of ours.
        let r = unsafe {
            libc::fallocate(
                self.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off,
                n,
            )
        };
        if r == 0 {
            return Ok(());
        }
        match io::Error::last_os_error() {
            // A file system without holes: the space stays allocated, which is only disk.
            e if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
            e => Err(e),
        }
    }
}

impl<S: Storage + ?Sized> Storage for std::sync::Arc<S> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        (**self).write_at(buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        (**self).sync()
    }
    fn file_len(&self) -> io::Result<u64> {
        (**self).file_len()
    }
    fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        (**self).punch_hole(offset, len)
    }
}

/// How many times a call interrupted by a signal is retried before it counts as failed.
const EINTR_RETRIES: usize = 100;

/// Runs `f`, again when it is interrupted by a signal (`EINTR`).
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut n = 0;
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted && n < EINTR_RETRIES => n += 1,
            r => return r,
        }
    }
}

/// The smallest free extent whose disk blocks a commit gives back ([`Storage::punch_hole`]):
/// smaller ones are soon reused, and many of them would cost a call each for little.
const PUNCH_MIN: u64 = 1 << 20;

/// One free extent: `(length, freed_generation)` keyed by offset. Generation 0 marks space
/// that no commit ever referenced, reusable at once.
#[derive(Debug, Default)]
struct Space {
    /// High-water mark: everything at or past it is free.
    end: u64,
    free: FreeList,
    /// Extents referenced by the last commit and superseded since: free once the next commit
    /// is durable, reusable one commit after that (FORMAT.md §6.2).
    limbo: Vec<(u64, u64)>,
    /// Extents written since the last commit (not referenced by any commit yet).
    fresh: HashSet<u64>,
}

/// Free extents, `(length, freed_generation)` keyed by offset; the reusable ones are also
/// indexed by length: a long build frees tens of thousands of slivers, and a first-fit scan
/// over them in offset order took 7% of a C1-1GB build. Extents freed at the last commit
/// can't be reused yet and stay out of that index: scanning past them took two thirds of a
/// build at `--memory 256M`, whose many small allocations each walked the whole old copy.
#[derive(Debug, Default)]
struct FreeList {
    by_off: BTreeMap<u64, (u64, u64)>,
    by_len: std::collections::BTreeSet<(u64, u64)>,
    /// Extents of a generation at or past this one are not reusable (the committed
    /// generation when the list was built; see [`Store::alloc`]).
    horizon: u64,
}

impl FreeList {
    fn new(horizon: u64) -> FreeList {
        FreeList {
            horizon,
            ..FreeList::default()
        }
    }
    fn insert(&mut self, off: u64, (len, gen): (u64, u64)) {
        if let Some((l, _)) = self.by_off.insert(off, (len, gen)) {
            self.by_len.remove(&(l, off));
        }
        if gen == 0 || gen < self.horizon {
            self.by_len.insert((len, off));
        }
    }
    fn remove(&mut self, off: &u64) -> Option<(u64, u64)> {
        let r = self.by_off.remove(off);
        if let Some((l, _)) = r {
            self.by_len.remove(&(l, *off));
        }
        r
    }
    fn get(&self, off: &u64) -> Option<&(u64, u64)> {
        self.by_off.get(off)
    }
    fn range(&self, r: impl std::ops::RangeBounds<u64>) -> std::collections::btree_map::Range<'_, u64, (u64, u64)> {
        self.by_off.range(r)
    }
    fn iter(&self) -> std::collections::btree_map::Iter<'_, u64, (u64, u64)> {
        self.by_off.iter()
    }
    fn values(&self) -> std::collections::btree_map::Values<'_, u64, (u64, u64)> {
        self.by_off.values()
    }
    fn len(&self) -> usize {
        self.by_off.len()
    }
    /// A small reusable extent that holds `need` bytes at `align` (best fit, so that large
    /// extents stay whole for large chunks). Extents shorter than `need + align - 1` fit
    /// only if their start is aligned well enough: a few of them are tried, then the
    /// smallest extent that surely fits. Trying them all walked thousands of misaligned
    /// slivers per allocation at `--memory 256M`.
    fn best_fit(&self, need: u64, align: u64) -> Option<(u64, u64, u64)> {
        let with_gen = |&(l, o): &(u64, u64)| (o, l, self.by_off[&o].1);
        self.by_len
            .range((need, 0)..(need + align - 1, 0))
            .take(8)
            .find(|&&(l, o)| align_up(o, align) + need <= o + l)
            .or_else(|| self.by_len.range((need + align - 1, 0)..).next())
            .map(with_gen)
    }
}

impl IntoIterator for FreeList {
    type Item = (u64, (u64, u64));
    type IntoIter = std::collections::btree_map::IntoIter<u64, (u64, u64)>;
    fn into_iter(self) -> Self::IntoIter {
        self.by_off.into_iter()
    }
}

/// The open file, exclusively locked, and what is known of its layout.
#[derive(Debug)]
pub(crate) struct Store {
    pub path: PathBuf,
    storage: Box<dyn Storage>,
    // Holds the exclusive lock; closing it releases the lock.
    _lock: Option<File>,
    space: Mutex<Space>,
    pub dtype: DType,
    pub index_width: usize,
    pub codec: Codec,
    pub zstd_level: i32,
    /// The current commit (its generation, slot and sections).
    pub commit: Mutex<Commit>,
    pub sections: Mutex<Sections>,
    pub bytes_written: std::sync::atomic::AtomicU64,
    /// Set when a sync failed: that error. The kernel may have dropped the unsynced pages
    /// and a retried sync can succeed without them, so the store writes nothing more.
    poisoned: Mutex<Option<Arc<Error>>>,
}

/// Section references of the last commit.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sections {
    pub catalog: SectionRef,
    pub row_labels: SectionRef,
    pub col_labels: SectionRef,
    pub metadata: SectionRef,
    pub free_extents: SectionRef,
}

/// What a commit writes besides the chunks.
#[derive(Debug)]
pub(crate) struct CommitParts<'a> {
    pub chunks: Vec<ChunkEntry>,
    pub n_rows: u64,
    pub n_cols: u64,
    /// New label sections, or `None` to keep the current ones.
    pub row_labels: Option<&'a [u8]>,
    pub col_labels: Option<&'a [u8]>,
    pub metadata: &'a [u8],
}

impl Store {
    /// Takes over an open, exclusively locked file whose current commit is `commit`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        path: &Path,
        storage: Box<dyn Storage>,
        lock: Option<File>,
        commit: Commit,
        catalog: &Catalog,
        free: Vec<(u64, u64, u64)>,
        codec: Codec,
        zstd_level: i32,
    ) -> Store {
        let mut space = Space {
            end: commit.data_end.max(SUPERBLOCK_SIZE),
            free: FreeList::new(commit.generation),
            ..Space::default()
        };
        for (off, len, gen) in free {
            space.free.insert(off, (len, gen));
        }
        let sections = Sections {
            catalog: SectionRef {
                offset: commit.catalog_offset,
                length: commit.catalog_length,
                crc: commit.catalog_crc,
            },
            row_labels: catalog.row_labels,
            col_labels: catalog.col_labels,
            metadata: catalog.metadata,
            free_extents: catalog.free_extents,
        };
        Store {
            path: path.to_path_buf(),
            storage,
            _lock: lock,
            space: Mutex::new(space),
            dtype: commit.dtype,
            index_width: commit.index_width as usize,
            codec,
            zstd_level,
            commit: Mutex::new(commit),
            sections: Mutex::new(sections),
            bytes_written: Default::default(),
            poisoned: Mutex::new(None),
        }
    }

    fn err(&self, op: &'static str) -> impl FnOnce(io::Error) -> Error + '_ {
        io_err(&self.path, op)
    }

    /// An error when an earlier sync failed: nothing may be written after that.
    fn check(&self) -> Result<()> {
        match &*self.poisoned.lock().expect("poison lock") {
            None => Ok(()),
            Some(cause) => Err(Error::Poisoned {
                path: self.path.clone(),
                cause: cause.clone(),
            }),
        }
    }

    fn write_at(&self, buf: &[u8], offset: u64, op: &'static str) -> Result<()> {
        self.check()?;
        retry(|| self.storage.write_at(buf, offset)).map_err(self.err(op))
    }

    fn read_at(&self, buf: &mut [u8], offset: u64, op: &'static str) -> Result<()> {
        self.check()?;
        retry(|| self.storage.read_at(buf, offset)).map_err(self.err(op))
    }

    /// Syncs; a failure poisons the store.
    fn sync(&self) -> Result<()> {
        self.check()?;
        retry(|| self.storage.sync()).map_err(|e| {
            let e = io_err(&self.path, "sync")(e);
            let mut p = self.poisoned.lock().expect("poison lock");
            if p.is_none() {
                *p = Some(super::shared::poison_cause(&e));
            }
            e
        })
    }

    /// Allocates `len` bytes, 64-aligned: the smallest reusable free extent that fits, or past the end.
    fn alloc(&self, len: u64) -> u64 {
        // Extents are exact byte ranges: sections of a file that `MatrixWriter` wrote are
        // packed at 8-byte alignment, so rounding a freed length up could free the start of
        // the next section. Alignment is found inside an extent instead; the bytes before
        // the aligned start stay free, and so does the gap to the next aligned allocation.
        let need = len.max(1);
        let mut s = self.space.lock().expect("space lock");
        debug_assert_eq!(s.free.horizon, self.commit.lock().expect("commit lock").generation);
        let found = s.free.best_fit(need, CHUNK_ALIGN);
        let off = match found {
            Some((o, l, g)) => {
                s.free.remove(&o);
                let a = align_up(o, CHUNK_ALIGN);
                if a > o {
                    s.free.insert(o, (a - o, g));
                }
                if o + l > a + need {
                    s.free.insert(a + need, (o + l - a - need, g));
                }
                a
            }
            None => {
                let o = align_up(s.end, CHUNK_ALIGN);
                if o > s.end {
                    let gap = (s.end, o - s.end);
                    insert_free(&mut s.free, gap.0, gap.1, 0);
                }
                s.end = o + need;
                o
            }
        };
        s.fresh.insert(off);
        off
    }

    /// Gives back the space of a chunk or section that is no longer referenced.
    pub(crate) fn release(&self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        // Exact: see `alloc`.
        let mut s = self.space.lock().expect("space lock");
        if s.fresh.remove(&offset) {
            insert_free(&mut s.free, offset, len, 0);
        } else {
            s.limbo.push((offset, len));
        }
    }

    /// Writes bytes to new space and returns where.
    pub(crate) fn write_new(&self, bytes: &[u8]) -> Result<u64> {
        let off = self.alloc(bytes.len() as u64);
        self.write_at(bytes, off, "write")?;
        self.bytes_written
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(off)
    }

    /// Allocates `len` bytes for data no commit will reference (a spilled run of pending
    /// sums), to be filled with [`Store::write_reserved`] and given back with
    /// [`Store::release`] before the next commit.
    pub(crate) fn reserve(&self, len: u64) -> u64 {
        self.alloc(len)
    }

    /// Writes part of a [`Store::reserve`]d extent.
    pub(crate) fn write_reserved(&self, bytes: &[u8], offset: u64) -> Result<()> {
        self.write_at(bytes, offset, "write spilled sums")?;
        self.bytes_written
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Reads part of a [`Store::reserve`]d extent back.
    pub(crate) fn read_reserved(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.read_at(buf, offset, "read spilled sums")
    }

    /// Encodes and writes one chunk to new space.
    pub(crate) fn write_chunk(&self, b: &ChunkBuilder) -> Result<ChunkEntry> {
        let enc = chunk::encode(b, self.codec, self.zstd_level).map_err(self.err("encode chunk"))?;
        let mut entry = enc.entry;
        entry.offset = self.write_new(&enc.bytes)?;
        Ok(entry)
    }

    /// Reads a chunk's stored bytes and checks its checksum.
    pub(crate) fn read_chunk(&self, e: &ChunkEntry, index: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; e.stored_len as usize];
        self.read_at(&mut buf, e.offset, "read chunk")?;
        let crc = crc32c::crc32c(&buf);
        if crc != e.crc {
            return Err(Error::CorruptChunk {
                path: self.path.clone(),
                chunk: index,
                row_start: e.row_start,
                row_end: e.row_end,
                offset: e.offset,
                detail: format!("checksum mismatch: stored {:08x}, computed {crc:08x}", e.crc),
            });
        }
        Ok(buf)
    }

    fn section(&self, bytes: &[u8]) -> Result<SectionRef> {
        Ok(SectionRef {
            offset: self.write_new(bytes)?,
            length: bytes.len() as u64,
            crc: crc32c::crc32c(bytes),
        })
    }

    /// Bytes of free space inside the file (reusable now or later).
    pub(crate) fn free_bytes(&self) -> (u64, u64) {
        let s = self.space.lock().expect("space lock");
        let free: u64 = s.free.values().map(|&(l, _)| l).sum::<u64>() + s.limbo.iter().map(|&(_, l)| l).sum::<u64>();
        (free, s.end)
    }

    /// Commits: writes the sections and the catalog to new space, syncs, writes the other
    /// meta page with the next generation, and syncs again (FORMAT.md §6.1).
    pub(crate) fn commit(&self, p: CommitParts<'_>) -> Result<Commit> {
        self.check()?;
        let old = *self.sections.lock().expect("sections lock");
        let mut new = old;
        if let Some(b) = p.row_labels {
            new.row_labels = self.section(b)?;
        }
        if let Some(b) = p.col_labels {
            new.col_labels = self.section(b)?;
        }
        new.metadata = if p.metadata.is_empty() {
            SectionRef::default()
        } else {
            self.section(p.metadata)?
        };
        let prev = self.commit.lock().expect("commit lock").clone();
        let generation = prev.generation + 1;
        // The catalog's own space and the free list's: allocate the catalog first, then the
        // free list with room for every record it could hold.
        let mut catalog = Catalog {
            row_labels: new.row_labels,
            col_labels: new.col_labels,
            metadata: new.metadata,
            free_extents: SectionRef::default(),
            chunks: p.chunks,
        };
        let cat_len = catalog.to_bytes().len() as u64;
        let cat_off = self.alloc(cat_len);
        // Sections of the previous commit become free with this one.
        for s in [old.catalog, old.free_extents, old.metadata] {
            self.release(s.offset, s.length);
        }
        if p.row_labels.is_some() {
            self.release(old.row_labels.offset, old.row_labels.length);
        }
        if p.col_labels.is_some() {
            self.release(old.col_labels.offset, old.col_labels.length);
        }
        let records = {
            let s = self.space.lock().expect("space lock");
            s.free.len() + s.limbo.len() + 1
        };
        let fl_off = self.alloc((records * 24) as u64);
        let free_bytes = {
            let s = self.space.lock().expect("space lock");
            let mut all: Vec<(u64, u64, u64)> = s.free.iter().map(|(&o, &(l, g))| (o, l, g)).collect();
            all.extend(s.limbo.iter().map(|&(o, l)| (o, l, generation)));
            all.sort_unstable();
            let mut b = Vec::with_capacity(all.len() * 24);
            for (o, l, g) in all {
                b.extend_from_slice(&o.to_le_bytes());
                b.extend_from_slice(&l.to_le_bytes());
                b.extend_from_slice(&g.to_le_bytes());
            }
            b
        };
        if free_bytes.is_empty() {
            self.release(fl_off, (records * 24) as u64);
        } else {
            // The list may be a record or two shorter than the room taken for it (taking that
            // room can use up a free extent): give the rest back now, as space no commit has
            // referenced. It is listed from the next commit on.
            // Extents are exact byte ranges (see `alloc`).
            let (room, used) = ((records * 24) as u64, free_bytes.len() as u64);
            if room > used {
                insert_free(
                    &mut self.space.lock().expect("space lock").free,
                    fl_off + used,
                    room - used,
                    0,
                );
            }
            self.write_at(&free_bytes, fl_off, "write free extents")?;
            catalog.free_extents = SectionRef {
                offset: fl_off,
                length: free_bytes.len() as u64,
                crc: crc32c::crc32c(&free_bytes),
            };
        }
        let cat_bytes = catalog.to_bytes();
        self.write_at(&cat_bytes, cat_off, "write catalog")?;
        let nnz = catalog.chunks.iter().map(|c| c.nnz).sum();
        let data_end = self.space.lock().expect("space lock").end;
        let commit = Commit {
            slot: 1 - prev.slot,
            generation,
            dtype: self.dtype,
            index_width: self.index_width as u8,
            n_rows: p.n_rows,
            n_cols: p.n_cols,
            nnz,
            catalog_offset: cat_off,
            catalog_length: cat_bytes.len() as u64,
            catalog_crc: crc32c::crc32c(&cat_bytes),
            data_end,
            commit_time_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        // The file must reach data_end even when the last allocation was never written.
        let len = retry(|| self.storage.file_len()).map_err(self.err("stat"))?;
        if len < data_end {
            self.write_at(&[0], data_end - 1, "extend")?;
        }
        // Data first, then the meta page that points at it (FORMAT.md §6.1).
        self.sync()?;
        let page = commit.to_page();
        self.write_at(&page, commit.slot as u64 * META_PAGE_SIZE, "write superblock")?;
        self.sync()?;
        // Durable: the bookkeeping moves on.
        *self.commit.lock().expect("commit lock") = commit.clone();
        *self.sections.lock().expect("sections lock") = Sections {
            catalog: SectionRef {
                offset: cat_off,
                length: cat_bytes.len() as u64,
                crc: commit.catalog_crc,
            },
            // This commit's free list: the next commit releases it. (Keeping the previous
            // one here released that one again at every later commit, freeing space that
            // had been reused meanwhile.)
            free_extents: catalog.free_extents,
            ..new
        };
        let mut s = self.space.lock().expect("space lock");
        let limbo = std::mem::take(&mut s.limbo);
        // Space freed before this generation is reusable from now on: mark it 0 and
        // coalesce it, so that neighbours freed at different commits make one extent.
        let old = std::mem::replace(&mut s.free, FreeList::new(generation));
        for (o, (l, g)) in old {
            insert_free(&mut s.free, o, l, if g < generation { 0 } else { g });
        }
        for (o, l) in limbo {
            insert_free(&mut s.free, o, l, generation);
        }
        s.fresh.clear();
        // Reusable space goes back to the file system until it is reused: the file's
        // length stays, its disk use is what the commits reference. (Without this, a
        // C1-1GB build's working file took 11.3 GB of disk for about 3 GB of chunks.)
        // Under the space lock, so that no allocation takes part of an extent meanwhile.
        // Best effort: the commit is durable already, and a failure only keeps the disk.
        for (&o, &(l, g)) in s.free.iter() {
            if g == 0 && l >= PUNCH_MIN {
                let _ = retry(|| self.storage.punch_hole(o, l));
            }
        }
        // The free list's own space is referenced by this commit only as a section.
        Ok(commit)
    }
}

/// Inserts a free extent, merging it with free neighbours of the same generation.
fn insert_free(free: &mut FreeList, mut off: u64, mut len: u64, gen: u64) {
    debug_assert!(
        free.range(..off + len)
            .next_back()
            .is_none_or(|(&o, &(l, _))| o + l <= off),
        "free extent {off}+{len} overlaps a free extent"
    );
    if let Some((&po, &(pl, pg))) = free.range(..off).next_back() {
        if po + pl == off && pg == gen {
            free.remove(&po);
            off = po;
            len += pl;
        }
    }
    if let Some(&(nl, ng)) = free.get(&(off + len)) {
        if ng == gen {
            free.remove(&(off + len));
            len += nl;
        }
    }
    free.insert(off, (len, gen));
}

/// Parses a free-extents section (FORMAT.md §6.2).
pub(crate) fn parse_free(bytes: &[u8], path: &Path, offset: u64) -> Result<Vec<(u64, u64, u64)>> {
    if !bytes.len().is_multiple_of(24) {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            what: "free extents",
            offset,
            detail: format!("length {} is not a multiple of 24", bytes.len()),
        });
    }
    Ok(bytes
        .chunks_exact(24)
        .map(|r| {
            let f = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().expect("8 bytes"));
            (f(0), f(8), f(16))
        })
        .collect())
}

/// The current commit of a file and what it references besides the chunks, read through a
/// [`Storage`] and checked as [`Matrix::open`](crate::Matrix::open) checks them.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub commit: Commit,
    pub catalog: Catalog,
    pub row_labels: Option<Vec<String>>,
    pub col_labels: Option<Vec<String>>,
    pub metadata: Option<serde_json::Value>,
    pub free: Vec<(u64, u64, u64)>,
}

/// Reads the current commit of the file in `storage`: the valid meta page with the highest
/// generation (FORMAT.md §2.2), its catalog, labels, metadata and free extents, each checked
/// against the file length and its checksum.
pub(crate) fn load(storage: &dyn Storage, path: &Path) -> Result<Loaded> {
    let len = retry(|| storage.file_len()).map_err(io_err(path, "stat"))?;
    let read = |offset: u64, length: u64, op: &'static str| -> Result<Vec<u8>> {
        let mut b = vec![0u8; length as usize];
        retry(|| storage.read_at(&mut b, offset)).map_err(io_err(path, op))?;
        Ok(b)
    };
    if len < SUPERBLOCK_SIZE {
        let head = if len >= 8 {
            read(0, 8, "read superblock")?
        } else {
            Vec::new()
        };
        if head != MAGIC {
            return Err(Error::NotVfm { path: path.into() });
        }
        return Err(Error::Corrupt {
            path: path.into(),
            what: "file",
            offset: len,
            detail: format!("the file is {len} bytes, shorter than the {SUPERBLOCK_SIZE}-byte superblock (truncated?)"),
        });
    }
    let sb = read(0, SUPERBLOCK_SIZE, "read superblock")?;
    let page = META_PAGE_SIZE as usize;
    let pages = [
        parse_page(&sb[..page], 0, len),
        parse_page(&sb[page..], META_PAGE_SIZE, len),
    ];
    let commit = match pages.iter().flatten().max_by_key(|c| c.generation) {
        Some(c) => c.clone(),
        None => {
            for p in &pages {
                if let Err(PageProblem::NewerVersion(v)) = p {
                    return Err(Error::UnsupportedVersion {
                        path: path.into(),
                        found: *v,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            if pages[0] == Err(PageProblem::BadMagic) && sb[..8] != MAGIC {
                return Err(Error::NotVfm { path: path.into() });
            }
            let describe = |p: &std::result::Result<Commit, PageProblem>| match p {
                Err(PageProblem::Invalid(m)) => format!("{} (byte {})", m.detail, m.offset),
                Err(PageProblem::BadMagic) => "never written".to_string(),
                _ => "unreadable".to_string(),
            };
            return Err(Error::NoValidCommit {
                path: path.into(),
                detail: format!("page A: {}; page B: {}", describe(&pages[0]), describe(&pages[1])),
            });
        }
    };
    let corrupt = |what: &'static str, m: Malformed| Error::Corrupt {
        path: path.into(),
        what,
        offset: m.offset,
        detail: m.detail,
    };
    let checked = |s: &SectionRef, what: &'static str| -> Result<Option<Vec<u8>>> {
        if !s.is_present() {
            return Ok(None);
        }
        let b = read(s.offset, s.length, "read section")?;
        s.check(&b).map_err(|m| corrupt(what, m))?;
        Ok(Some(b))
    };
    let cat_ref = SectionRef {
        offset: commit.catalog_offset,
        length: commit.catalog_length,
        crc: commit.catalog_crc,
    };
    let cat_bytes = checked(&cat_ref, "catalog")?.unwrap_or_default();
    let catalog = Catalog::parse(&cat_bytes, commit.catalog_offset, &commit).map_err(|m| corrupt("catalog", m))?;
    let labels = |s: &SectionRef, what: &'static str, n: u64| -> Result<Option<Vec<String>>> {
        let Some(b) = checked(s, what)? else { return Ok(None) };
        let l = Labels::parse(&b, s.offset).map_err(|m| corrupt(what, m))?;
        if l.len() != n {
            return Err(corrupt(
                what,
                Malformed::new(s.offset + 8, format!("{} labels for {n} entries", l.len())),
            ));
        }
        l.iter()
            .map(|x| x.map(str::to_owned))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Some)
            .map_err(|m| corrupt(what, m))
    };
    let row_labels = labels(&catalog.row_labels, "row labels", commit.n_rows)?;
    let col_labels = labels(&catalog.col_labels, "column labels", commit.n_cols)?;
    let metadata = match checked(&catalog.metadata, "metadata")? {
        None => None,
        Some(b) => {
            Some(crate::reader::parse_metadata(&b, catalog.metadata.offset).map_err(|m| corrupt("metadata", m))?)
        }
    };
    let free = match checked(&catalog.free_extents, "free extents")? {
        None => Vec::new(),
        Some(b) => parse_free(&b, path, catalog.free_extents.offset)?,
    };
    Ok(Loaded {
        commit,
        catalog,
        row_labels,
        col_labels,
        metadata,
        free,
    })
}

/// Writes a new, empty file through `storage`: a zeroed superblock, the sections, and
/// generation 1 in page A once they are durable. Returns the storage.
pub(crate) fn format(
    path: &Path,
    storage: Box<dyn Storage>,
    dtype: DType,
    shape: (u64, u64),
    row_labels: Option<&[u8]>,
    col_labels: Option<&[u8]>,
    metadata: &[u8],
) -> Result<Box<dyn Storage>> {
    retry(|| storage.write_at(&[0u8; SUPERBLOCK_SIZE as usize], 0)).map_err(io_err(path, "write superblock"))?;
    let empty = Commit {
        // The first commit goes to the other slot: page A.
        slot: 1,
        generation: 0,
        dtype,
        index_width: if shape.1 <= 1 << 32 { 4 } else { 8 },
        n_rows: shape.0,
        n_cols: shape.1,
        nnz: 0,
        catalog_offset: 0,
        catalog_length: 0,
        catalog_crc: 0,
        data_end: SUPERBLOCK_SIZE,
        commit_time_ns: 0,
    };
    let store = Store::new(
        path,
        storage,
        None,
        empty,
        &Catalog::default(),
        Vec::new(),
        Codec::Lz4,
        1,
    );
    store.commit(CommitParts {
        chunks: Vec::new(),
        n_rows: shape.0,
        n_cols: shape.1,
        row_labels,
        col_labels,
        metadata,
    })?;
    Ok(store.storage)
}
