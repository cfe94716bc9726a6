//! Reading inputs in line-aligned blocks, whole or one shard of them; and a worker pool that
//! processes blocks with checkpoints in between.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::Instant;

use vecfmt::Cancel;

use crate::error::HeaderProblem;
use crate::{Checkpoint, Error, Input, Result, Shard};

/// Bytes per block handed to a worker.
pub const BLOCK: usize = 1 << 20;

/// Magic bytes of a binary triplet stream (docs/TRIPLETS.md).
pub const TRIPLET_MAGIC: [u8; 8] = *b"VFMTRIP1";

/// Bytes of a binary triplet stream's header (docs/TRIPLETS.md, "Header").
pub const TRIPLET_HEADER_LEN: usize = 16;

/// Layout of a binary triplet stream's records (docs/TRIPLETS.md, "Records").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryLayout {
    /// Bytes of a row or column id: 4 or 8.
    pub id_width: usize,
    pub dtype: vecfmt::DType,
}

impl BinaryLayout {
    /// Bytes of one record.
    pub fn record(&self) -> usize {
        2 * self.id_width + self.dtype.size()
    }

    /// Parses the 16-byte header (docs/TRIPLETS.md, "Header") of the input named `file`;
    /// `h` starts with the magic bytes.
    ///
    /// ```
    /// use vecfmt_text::BinaryLayout;
    /// let mut h = b"VFMTRIP1".to_vec();
    /// h.extend_from_slice(&1u16.to_le_bytes()); // version
    /// h.extend_from_slice(&[4, vecfmt::DType::F32.code(), 0, 0, 0, 0]);
    /// let l = BinaryLayout::parse_header(&h, "in.trip")?;
    /// assert_eq!((l.id_width, l.dtype, l.record()), (4, vecfmt::DType::F32, 12));
    /// # Ok::<(), vecfmt_text::Error>(())
    /// ```
    pub fn parse_header(h: &[u8], file: &str) -> Result<BinaryLayout> {
        let bad = |offset: u64, problem| Error::BadHeader {
            file: file.to_owned(),
            offset,
            problem,
        };
        if h.len() < TRIPLET_HEADER_LEN {
            return Err(bad(h.len() as u64, HeaderProblem::Short));
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if version != 1 {
            return Err(bad(8, HeaderProblem::Version(version)));
        }
        let id_width = h[10];
        if id_width != 4 && id_width != 8 {
            return Err(bad(10, HeaderProblem::IdWidth(id_width)));
        }
        let dtype = vecfmt::DType::from_code(h[11]).ok_or_else(|| bad(11, HeaderProblem::DTypeCode(h[11])))?;
        if h[12..16] != [0, 0, 0, 0] {
            return Err(bad(12, HeaderProblem::Reserved));
        }
        Ok(BinaryLayout {
            id_width: id_width as usize,
            dtype,
        })
    }
}

/// A block of whole lines (or whole binary records) from one input.
#[derive(Debug)]
pub struct Block {
    /// Index of the input in the slice given to [`read_blocks`].
    pub input: usize,
    /// 1-based number of the block's first line (or record) in its input.
    pub first_line: u64,
    pub data: Vec<u8>,
    /// Set when the input is a binary triplet stream.
    pub binary: Option<BinaryLayout>,
    /// Where the reader is once this block is handed on: reading again from there
    /// ([`read_blocks_from`]) gives the blocks that follow it, cut at the same places.
    pub after: Position,
}

/// Where the reader of [`read_blocks_from`] is: what a checkpoint records so that a run can
/// go on reading where it stopped, and cut its blocks where the uninterrupted run would
/// (a stride shard of a compressed input takes every N-th block, so the cuts matter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// The input being read, by index; the number of inputs once all are read.
    pub input: usize,
    /// Whether reading `input` has started; if not, it starts at its shard's beginning.
    pub started: bool,
    /// Bytes of the input (decompressed) read so far.
    pub offset: u64,
    /// Of those, the bytes read but not handed on: the start of a line, or of a record,
    /// that the next block begins with.
    pub carry: u64,
    /// The number of the next line (or record) of the input, from 1.
    pub line: u64,
    /// Blocks cut so far, over all the inputs.
    pub block_no: u64,
    /// The input's layout, when it is a binary triplet stream.
    pub binary: Option<BinaryLayout>,
    /// Input bytes read, over all the inputs ([`Counters::bytes`]).
    pub bytes: u64,
    /// Lines (or records) handed to workers ([`Counters::lines`]); the pool sets it.
    pub lines: u64,
}

impl Position {
    /// The position as JSON, for a checkpoint's record.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "input": self.input,
            "started": self.started,
            "offset": self.offset,
            "carry": self.carry,
            "line": self.line,
            "block_no": self.block_no,
            "binary": self.binary.map(|l| serde_json::json!([l.id_width, l.dtype.code()])),
            "bytes": self.bytes,
            "lines": self.lines,
        })
    }

    /// The position [`to_json`](Self::to_json) wrote; `None` if `v` is not one.
    pub fn from_json(v: &serde_json::Value) -> Option<Position> {
        let u = |k: &str| v.get(k)?.as_u64();
        let binary = match v.get("binary")? {
            serde_json::Value::Null => None,
            b => Some(BinaryLayout {
                id_width: b.get(0)?.as_u64()? as usize,
                dtype: vecfmt::DType::from_code(u8::try_from(b.get(1)?.as_u64()?).ok()?)?,
            }),
        };
        Some(Position {
            input: usize::try_from(u("input")?).ok()?,
            started: v.get("started")?.as_bool()?,
            offset: u("offset")?,
            carry: u("carry")?,
            line: u("line")?,
            block_no: u("block_no")?,
            binary,
            bytes: u("bytes")?,
            lines: u("lines")?,
        })
        .filter(|p| p.carry <= p.offset)
    }
}

/// How far the reader has got: bytes and lines handed to workers.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes: AtomicU64,
    pub lines: AtomicU64,
}

/// Reads the inputs (or one shard of them) and calls `sink` with each block, in order,
/// until `stop` is set.
///
/// Plain files are split by byte ranges of their total size; a line belongs to the shard
/// where it starts. Compressed inputs and streams cannot be split by bytes: there a shard
/// takes every N-th block of lines instead (blocks are cut at the same places in every
/// shard). An input that starts with [`TRIPLET_MAGIC`] is cut into whole binary records.
pub fn read_blocks(
    inputs: &[Input],
    shard: Option<Shard>,
    counters: &Counters,
    stop: &AtomicBool,
    sink: impl FnMut(Block) -> Result<()>,
) -> Result<()> {
    read_blocks_until(inputs, shard, counters, stop, &Cancel::new(), sink)
}

/// [`read_blocks`], which also stops with `vecfmt::Error::Cancelled` (as [`Error::Core`])
/// once `cancel` is set, before reading the next block.
pub fn read_blocks_until(
    inputs: &[Input],
    shard: Option<Shard>,
    counters: &Counters,
    stop: &AtomicBool,
    cancel: &Cancel,
    sink: impl FnMut(Block) -> Result<()>,
) -> Result<()> {
    read_blocks_from(inputs, shard, &Position::default(), counters, stop, cancel, sink)
}

/// [`read_blocks_until`], from `start`: a [`Block::after`] of an earlier read of the same
/// inputs and shard. The blocks are those that read gave after that block.
pub fn read_blocks_from(
    inputs: &[Input],
    shard: Option<Shard>,
    start: &Position,
    counters: &Counters,
    stop: &AtomicBool,
    cancel: &Cancel,
    mut sink: impl FnMut(Block) -> Result<()>,
) -> Result<()> {
    let sizes: Vec<Option<u64>> = inputs
        .iter()
        .map(|i| if i.is_compressed() { None } else { i.size() })
        .collect();
    let by_bytes = shard.is_some() && sizes.iter().all(|s| s.is_some());
    let total: u64 = sizes.iter().map(|s| s.unwrap_or(0)).sum();
    let range = match shard {
        Some(s) if by_bytes => (total * (s.k - 1) / s.n, total * s.k / s.n),
        _ => (0, u64::MAX),
    };
    let mut base = 0u64;
    let mut block_no = start.block_no;
    for (ii, input) in inputs.iter().enumerate() {
        let size = sizes[ii].unwrap_or(0);
        let (lo, hi) = if by_bytes {
            let (a, b) = (range.0.max(base), range.1.min(base + size));
            base += size;
            if a >= b {
                continue;
            }
            (a - (base - size), b - (base - size))
        } else {
            (0, u64::MAX)
        };
        if ii < start.input {
            continue;
        }
        let (mut r, mut pos, mut skip_partial, mut carry, mut line, mut binary, mut first);
        if ii == start.input && start.started {
            // Go on where the position says, with the bytes it had read and not handed on.
            let from = start.offset - start.carry;
            r = open_at(input, from)?;
            // Grown as the bytes arrive, not allocated from the record's word.
            let mut c = Vec::new();
            let n = (&mut r)
                .take(start.carry)
                .read_to_end(&mut c)
                .map_err(Error::io(input.name(), "read error"))?;
            if n as u64 != start.carry {
                return Err(Error::io(input.name(), "read error")(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the input is shorter than when the run read it",
                )));
            }
            (pos, skip_partial, carry, line, binary, first) = (start.offset, false, c, start.line, start.binary, false);
        } else {
            // Start one byte early and drop through the first newline: the first line kept
            // is the first that starts at or after `lo`.
            let begin = lo.saturating_sub(1);
            r = input.open(begin)?;
            (pos, skip_partial, carry, line, binary, first) = (begin, lo > 0, Vec::new(), 1u64, None, lo == 0);
        }
        let mut done = false;
        // The position after a block handed on: the next input's start once this one is
        // done, else here, with `carry` bytes read ahead and `line` the next line.
        let position_after = |done: bool, pos: u64, carry: usize, line: u64, block_no: u64, binary| {
            let bytes = counters.bytes.load(Ordering::Relaxed);
            if done {
                return Position {
                    input: ii + 1,
                    block_no,
                    bytes,
                    ..Position::default()
                };
            }
            Position {
                input: ii,
                started: true,
                offset: pos,
                carry: carry as u64,
                line,
                block_no,
                binary,
                bytes,
                lines: 0,
            }
        };
        while !done && !stop.load(Ordering::Relaxed) {
            // Checked per block read, also for the blocks of other shards, which are read
            // and not handed on.
            cancel.check()?;
            let mut buf = std::mem::take(&mut carry);
            let old = buf.len();
            buf.resize(old + BLOCK, 0);
            let n = read_full(&mut r, &mut buf[old..]).map_err(Error::io(input.name(), "read error"))?;
            buf.truncate(old + n);
            let eof = n == 0;
            let buf_start = pos - old as u64;
            pos += n as u64;
            let mut from = 0;
            if first {
                first = false;
                if buf.len() >= 8 && buf[..8] == TRIPLET_MAGIC {
                    binary = Some(BinaryLayout::parse_header(&buf, &input.name())?);
                    from = TRIPLET_HEADER_LEN;
                }
            }
            if let Some(layout) = binary {
                let rec = layout.record();
                let whole = (buf.len() - from) / rec * rec;
                if eof && from + whole != buf.len() {
                    return Err(Error::TruncatedRecord {
                        file: input.name(),
                        offset: buf_start + (from + whole) as u64,
                        record_len: rec,
                    });
                }
                let data = buf[from..from + whole].to_vec();
                carry = buf[from + whole..].to_vec();
                if eof {
                    done = true;
                }
                if data.is_empty() {
                    continue;
                }
                let n = (data.len() / rec) as u64;
                counters.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                let after = position_after(done, pos, carry.len(), line + n, block_no, binary);
                sink(Block {
                    input: ii,
                    first_line: line,
                    data,
                    binary,
                    after,
                })?;
                line += n;
                continue;
            }
            if skip_partial {
                match memchr(b'\n', &buf) {
                    Some(i) => {
                        from = i + 1;
                        skip_partial = false;
                    }
                    None if eof => break,
                    None => continue,
                }
            }
            // Cut at the last newline; keep the rest for the next block.
            let mut cut = if eof {
                buf.len()
            } else {
                match buf[from..].iter().rposition(|&b| b == b'\n') {
                    Some(i) => from + i + 1,
                    None => {
                        // Without the bytes before `from` (a partial line of the previous
                        // shard), which the next round would otherwise take for a line.
                        buf.drain(..from);
                        carry = buf;
                        continue;
                    }
                }
            };
            // Lines starting at or past `hi` belong to the next shard.
            if buf_start + from as u64 >= hi {
                break;
            }
            if buf_start + cut as u64 > hi {
                // The first line starting at or past `hi` follows the first newline at or
                // after `hi - 1`; it exists, because the byte before `cut` is a newline (or
                // this is the end of the input).
                let limit = (hi - buf_start) as usize;
                cut = buf[limit - 1..cut]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(cut, |i| limit - 1 + i + 1);
                done = true;
            }
            if eof {
                done = true;
            }
            let data = buf[from..cut].to_vec();
            carry = if done { Vec::new() } else { buf[cut..].to_vec() };
            if data.is_empty() {
                continue;
            }
            let lines = count_lines(&data);
            counters.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            let mine = by_bytes || shard.is_none_or(|s| block_no % s.n == s.k - 1);
            block_no += 1;
            if mine {
                let after = position_after(done, pos, carry.len(), line + lines, block_no, None);
                sink(Block {
                    input: ii,
                    first_line: line,
                    data,
                    binary: None,
                    after,
                })?;
            }
            line += lines;
        }
    }
    Ok(())
}

/// The input's decompressed stream from byte `from`: a seek for a plain file, reading and
/// dropping the bytes before it for a compressed one.
fn open_at(input: &Input, from: u64) -> Result<Box<dyn Read + Send>> {
    if !input.is_compressed() {
        return input.open(from);
    }
    let mut r = input.open(0)?;
    let skipped =
        std::io::copy(&mut (&mut r).take(from), &mut std::io::sink()).map_err(Error::io(input.name(), "read error"))?;
    if skipped != from {
        return Err(Error::io(input.name(), "read error")(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the input is shorter than when the run read it",
        )));
    }
    Ok(r)
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&x| x == b)
}

/// Lines in `s`, a last line without a newline included.
pub fn count_lines(s: &[u8]) -> u64 {
    let n = s.iter().filter(|&&b| b == b'\n').count() as u64;
    if s.last().is_some_and(|&b| b != b'\n') {
        n + 1
    } else {
        n
    }
}

/// Messages to workers.
enum Msg {
    Block(Block),
    /// Flush your producer, then wait at the barrier.
    Flush(Arc<Barrier>),
}

/// Runs `threads` workers over the blocks of [`read_blocks`]. Each worker gets its own state
/// from `make`, handles blocks with `work` and, at every checkpoint and at the end, is
/// flushed with `flush` before `commit` runs (with the number of lines read) while every
/// worker waits at a barrier. The first error stops the reading and is returned; `commit`
/// does not run after it.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use vecfmt_text::pool::{run_pool, Counters};
/// use vecfmt_text::{Checkpoint, Input};
///
/// let input = Input::reader("numbers", std::io::Cursor::new(b"1\n2\n3\n".to_vec()));
/// let sum = AtomicU64::new(0);
/// let committed = AtomicU64::new(0);
/// run_pool(
///     &[input], None, 2, Checkpoint::Never, &Counters::default(),
///     || 0u64,                                     // a worker's own partial sum
///     |w, block| {
///         for l in block.data.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
///             *w += std::str::from_utf8(l).unwrap().parse::<u64>().unwrap();
///         }
///         Ok(())
///     },
///     |w| { sum.fetch_add(std::mem::take(w), Ordering::Relaxed); Ok(()) },
///     |lines| { committed.store(lines, Ordering::Relaxed); Ok(()) },
/// )?;
/// assert_eq!((sum.into_inner(), committed.into_inner()), (6, 3));
/// # Ok::<(), vecfmt_text::Error>(())
/// ```
#[expect(clippy::too_many_arguments, reason = "the pool's four callbacks are its interface")]
pub fn run_pool<W: Send>(
    inputs: &[Input],
    shard: Option<Shard>,
    threads: usize,
    checkpoint: Checkpoint,
    counters: &Counters,
    make: impl Fn() -> W + Sync,
    work: impl Fn(&mut W, Block) -> Result<()> + Sync,
    flush: impl Fn(&mut W) -> Result<()> + Sync,
    mut commit: impl FnMut(u64) -> Result<()>,
) -> Result<()> {
    run_pool_until(
        inputs,
        shard,
        &Position::default(),
        threads,
        checkpoint,
        counters,
        &Cancel::new(),
        make,
        work,
        flush,
        |at: &Position| commit(at.lines),
    )
}

/// [`run_pool`] from `start` (a position an earlier run's `commit` was given, or the
/// default: the beginning), stopped by `cancel`, and giving `commit` the reader's
/// [`Position`] (with the lines read in `lines`), which covers exactly the blocks handed on
/// so far. At the last commit the position is past the last input. Once `cancel` is set, the reader stops before its next
/// block, the workers skip the blocks they have not started, nothing more is flushed or
/// committed (a commit under way completes), and the pool returns `vecfmt::Error::Cancelled`
/// (as [`Error::Core`]), unless an error came first.
///
/// ```
/// use vecfmt_text::pool::{run_pool_until, Counters};
/// use vecfmt_text::{Checkpoint, Input};
///
/// let cancel = vecfmt::Cancel::new();
/// cancel.cancel();
/// let input = Input::reader("numbers", std::io::Cursor::new(b"1\n2\n3\n".to_vec()));
/// let e = run_pool_until(
///     &[input], None, &Default::default(), 2, Checkpoint::Never, &Counters::default(), &cancel,
///     || (),
///     |_, _| panic!("no block is read once cancelled"),
///     |_| Ok(()),
///     |_| panic!("nothing is committed once cancelled"),
/// )
/// .unwrap_err();
/// assert!(e.is_cancelled());
/// ```
#[expect(clippy::too_many_arguments, reason = "the pool's four callbacks are its interface")]
pub fn run_pool_until<W: Send>(
    inputs: &[Input],
    shard: Option<Shard>,
    start: &Position,
    threads: usize,
    checkpoint: Checkpoint,
    counters: &Counters,
    cancel: &Cancel,
    make: impl Fn() -> W + Sync,
    work: impl Fn(&mut W, Block) -> Result<()> + Sync,
    flush: impl Fn(&mut W) -> Result<()> + Sync,
    mut commit: impl FnMut(&Position) -> Result<()>,
) -> Result<()> {
    let threads = threads.max(1);
    counters.bytes.store(start.bytes, Ordering::Relaxed);
    counters.lines.store(start.lines, Ordering::Relaxed);
    let mut at = *start;
    let (tx, rx) = mpsc::sync_channel::<Msg>(threads);
    let rx = Mutex::new(rx);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let fail = |e: Error| {
        let mut f = failed.lock().expect("failed lock");
        if f.is_none() {
            *f = Some(e);
        }
        stop.store(true, Ordering::Relaxed);
    };
    std::thread::scope(|s| -> Result<()> {
        for _ in 0..threads {
            let (rx, make, work, flush, fail, stop) = (&rx, &make, &work, &flush, &fail, &stop);
            s.spawn(move || {
                let mut w = make();
                loop {
                    let msg = rx.lock().expect("queue lock").recv();
                    match msg {
                        Ok(Msg::Block(b)) => {
                            if stop.load(Ordering::Relaxed) {
                                continue;
                            }
                            if cancel.is_cancelled() {
                                // Stops the reader too, without waiting for its next block.
                                fail(vecfmt::Error::Cancelled.into());
                                continue;
                            }
                            if let Err(e) = work(&mut w, b) {
                                fail(e);
                            }
                        }
                        Ok(Msg::Flush(barrier)) => {
                            if !stop.load(Ordering::Relaxed) {
                                if let Err(e) = flush(&mut w) {
                                    fail(e);
                                }
                            }
                            barrier.wait();
                        }
                        Err(_) => break,
                    }
                }
            });
        }
        let mut last = Instant::now();
        let mut last_bytes = 0u64;
        let sync_all = |tx: &mpsc::SyncSender<Msg>| -> bool {
            let barrier = Arc::new(Barrier::new(threads + 1));
            for _ in 0..threads {
                if tx.send(Msg::Flush(barrier.clone())).is_err() {
                    return false;
                }
            }
            barrier.wait();
            !stop.load(Ordering::Relaxed)
        };
        let read = read_blocks_from(inputs, shard, start, counters, &stop, cancel, |b| {
            let lines = match b.binary {
                Some(l) => (b.data.len() / l.record()) as u64,
                None => count_lines(&b.data),
            };
            let after = b.after;
            // The receiver lives as long as this function, so a send cannot fail; stop
            // reading if it ever does.
            if tx.send(Msg::Block(b)).is_err() {
                stop.store(true, Ordering::Relaxed);
                return Ok(());
            }
            at = Position {
                lines: counters.lines.fetch_add(lines, Ordering::Relaxed) + lines,
                ..after
            };
            let due = match checkpoint {
                Checkpoint::Every(d) => last.elapsed() >= d,
                Checkpoint::Bytes(n) => counters.bytes.load(Ordering::Relaxed) - last_bytes >= n,
                Checkpoint::Never => false,
            };
            if due && !stop.load(Ordering::Relaxed) && !cancel.is_cancelled() {
                if sync_all(&tx) && !cancel.is_cancelled() {
                    commit(&at)?;
                }
                last = Instant::now();
                last_bytes = counters.bytes.load(Ordering::Relaxed);
            }
            Ok(())
        });
        if let Err(e) = read {
            fail(e);
        }
        if cancel.is_cancelled() {
            // Read to the end, but cancelled since: no final flush and commit.
            fail(vecfmt::Error::Cancelled.into());
        }
        let mut ok = sync_all(&tx);
        drop(tx);
        if ok && cancel.is_cancelled() {
            fail(vecfmt::Error::Cancelled.into());
            ok = false;
        }
        if ok {
            let end = Position {
                input: inputs.len(),
                started: false,
                bytes: counters.bytes.load(Ordering::Relaxed),
                lines: counters.lines.load(Ordering::Relaxed),
                ..at
            };
            if let Err(e) = commit(&end) {
                fail(e);
            }
        }
        Ok(())
    })?;
    match failed.into_inner().expect("failed lock") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(inputs: &[Input], shard: Option<Shard>) -> Vec<(usize, u64, Vec<u8>)> {
        let mut out = Vec::new();
        let stop = AtomicBool::new(false);
        read_blocks(inputs, shard, &Counters::default(), &stop, |b| {
            out.push((b.input, b.first_line, b.data));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn byte_range_shards_split_at_lines_and_cover_the_input_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..3000 {
            text.push_str(&"x".repeat(i % 17));
            text.push_str(&format!("{i}\n"));
        }
        let (a, b) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
        std::fs::write(&a, &text[..text.len() / 3]).unwrap();
        std::fs::write(&b, &text[text.len() / 3..]).unwrap();
        let inputs = [Input::path(&a), Input::path(&b)];
        let whole: Vec<u8> = blocks(&inputs, None).into_iter().flat_map(|b| b.2).collect();
        assert_eq!(whole, text.as_bytes());
        for n in [1, 2, 3, 7] {
            let mut joined = Vec::new();
            for k in 1..=n {
                for (_, _, data) in blocks(&inputs, Some(Shard::new(k, n).unwrap())) {
                    assert!(data.ends_with(b"\n"));
                    joined.extend(data);
                }
            }
            assert_eq!(joined, text.as_bytes(), "{n} shards");
        }
    }

    /// A shard that started in the last line of a file (or where the rest of the block after
    /// the skipped partial line held no newline) used to keep the partial line's tail as a
    /// line of its own: shards then overlapped.
    #[test]
    fn a_shard_starting_in_the_last_line_of_a_file_skips_that_line() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.txt"), dir.path().join("b.txt"));
        std::fs::write(&a, "x\nyyyyyyyy\n").unwrap();
        std::fs::write(&b, "z\n").unwrap();
        let inputs = [Input::path(&a), Input::path(&b)];
        // 13 bytes: shard 2 of 2 starts at byte 6, inside a's last line.
        let second: Vec<u8> = blocks(&inputs, Some(Shard::new(2, 2).unwrap()))
            .into_iter()
            .flat_map(|b| b.2)
            .collect();
        assert_eq!(second, b"z\n");
        for n in 1..=13 {
            let joined: Vec<u8> = (1..=n)
                .flat_map(|k| blocks(&inputs, Some(Shard::new(k, n).unwrap())))
                .flat_map(|b| b.2)
                .collect();
            assert_eq!(joined, b"x\nyyyyyyyy\nz\n", "{n} shards");
        }
    }

    #[test]
    fn a_binary_stream_is_cut_at_records_and_a_partial_record_is_an_error() {
        let mut s = TRIPLET_MAGIC.to_vec();
        s.extend_from_slice(&1u16.to_le_bytes());
        s.extend_from_slice(&[4, vecfmt::DType::F32.code(), 0, 0, 0, 0]);
        for i in 0..10u32 {
            s.extend_from_slice(&i.to_le_bytes());
            s.extend_from_slice(&(i + 1).to_le_bytes());
            s.extend_from_slice(&1.5f32.to_le_bytes());
        }
        let got = blocks(&[Input::reader("t", std::io::Cursor::new(s.clone()))], None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].2, s[16..]);
        s.push(7);
        let stop = AtomicBool::new(false);
        let input = [Input::reader("t", std::io::Cursor::new(s))];
        let e = read_blocks(&input, None, &Counters::default(), &stop, |_| Ok(())).unwrap_err();
        assert!(
            matches!(
                e,
                Error::TruncatedRecord {
                    offset: 136,
                    record_len: 12,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_binary_headers_name_the_byte() {
        let good = {
            let mut h = TRIPLET_MAGIC.to_vec();
            h.extend_from_slice(&[1, 0, 8, vecfmt::DType::U64.code(), 0, 0, 0, 0]);
            h
        };
        assert_eq!(BinaryLayout::parse_header(&good, "f").unwrap().record(), 24);
        let cases: [(usize, u8, u64, HeaderProblem); 4] = [
            (8, 2, 8, HeaderProblem::Version(2)),
            (10, 3, 10, HeaderProblem::IdWidth(3)),
            (11, 99, 11, HeaderProblem::DTypeCode(99)),
            (14, 1, 12, HeaderProblem::Reserved),
        ];
        for (at, byte, offset, problem) in cases {
            let mut h = good.clone();
            h[at] = byte;
            match BinaryLayout::parse_header(&h, "f") {
                Err(Error::BadHeader {
                    offset: o, problem: p, ..
                }) => assert_eq!((o, p), (offset, problem)),
                other => panic!("{other:?}"),
            }
        }
        let e = BinaryLayout::parse_header(&good[..12], "f").unwrap_err();
        assert!(matches!(
            e,
            Error::BadHeader {
                problem: HeaderProblem::Short,
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "f: binary triplet stream: shorter than its 16-byte header (byte offset 12)"
        );
    }

    #[test]
    fn counting_lines() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a\nb\n"), 2);
        assert_eq!(count_lines(b"a\nb"), 2);
    }
}
