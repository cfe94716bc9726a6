//! Reading inputs in line-aligned blocks: plain files, `.gz`, `.zst` or stdin, whole or one
//! shard of them; and a worker pool that processes blocks with checkpoints in between.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Bytes per block handed to a worker.
pub const BLOCK: usize = 1 << 20;

/// One input: a path, or `-` for stdin.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: Option<PathBuf>,
}

impl Input {
    pub fn from_args(paths: &[PathBuf]) -> Vec<Input> {
        if paths.is_empty() {
            return vec![Input { path: None }];
        }
        paths
            .iter()
            .map(|p| Input {
                path: (p.as_os_str() != "-").then(|| p.clone()),
            })
            .collect()
    }

    pub fn name(&self) -> String {
        self.path.as_ref().map_or("<stdin>".into(), |p| p.display().to_string())
    }

    fn compression(&self) -> Compression {
        let ext = self
            .path
            .as_ref()
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .unwrap_or("");
        match ext {
            "gz" => Compression::Gzip,
            "zst" | "zstd" => Compression::Zstd,
            _ => Compression::None,
        }
    }

    pub fn is_compressed(&self) -> bool {
        self.compression() != Compression::None
    }

    /// Size on disk, when the input is a regular file.
    pub fn size(&self) -> Option<u64> {
        self.path
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
    }

    /// Opens the decompressed stream, positioned at byte `from` of the file (plain files only).
    fn open(&self, from: u64) -> Result<Box<dyn Read + Send>> {
        let Some(path) = &self.path else {
            return Ok(Box::new(std::io::stdin()));
        };
        let mut f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        if from > 0 {
            f.seek(SeekFrom::Start(from))
                .with_context(|| format!("{}: cannot seek", path.display()))?;
        }
        Ok(match self.compression() {
            Compression::None => Box::new(f),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 20, f))),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(f)
                    .with_context(|| format!("{}: not a zstd stream", path.display()))?,
            ),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

/// `--shard K/N`: shard K (1-based) of N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl std::str::FromStr for Shard {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Shard> {
        let (k, n) = s.split_once('/').context("--shard takes K/N, e.g. 2/8")?;
        let (k, n): (u64, u64) = (k.trim().parse()?, n.trim().parse()?);
        if n == 0 || k == 0 || k > n {
            bail!("--shard {s}: K must be between 1 and N");
        }
        Ok(Shard { k, n })
    }
}

/// Magic bytes of a binary triplet stream (docs/TRIPLETS.md).
pub const TRIPLET_MAGIC: [u8; 8] = *b"VFMTRIP1";

/// Layout of a binary triplet stream's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinaryLayout {
    pub id_width: usize,
    pub dtype: vecfmt::DType,
}

impl BinaryLayout {
    pub fn record(&self) -> usize {
        2 * self.id_width + self.dtype.size()
    }
}

/// A block of whole lines (or whole binary records) from one input.
#[derive(Debug)]
pub struct Block {
    pub input: usize,
    /// 1-based number of the block's first line (or record) in its input.
    pub first_line: u64,
    pub data: Vec<u8>,
    /// Set when the input is a binary triplet stream.
    pub binary: Option<BinaryLayout>,
}

fn parse_binary_header(h: &[u8], name: &str) -> Result<BinaryLayout> {
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != 1 {
        bail!("{name}: binary triplet stream version {version} is not supported (expected 1)");
    }
    let id_width = h[10] as usize;
    if id_width != 4 && id_width != 8 {
        bail!("{name}: binary triplet stream: id width {id_width} must be 4 or 8");
    }
    let dtype = vecfmt::DType::from_code(h[11])
        .with_context(|| format!("{name}: binary triplet stream: unknown value dtype code {}", h[11]))?;
    if h[12..16] != [0, 0, 0, 0] {
        bail!("{name}: binary triplet stream: reserved header bytes 12..16 must be zero");
    }
    Ok(BinaryLayout { id_width, dtype })
}

/// Progress shared between the reader and the progress bar.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes: AtomicU64,
    pub lines: AtomicU64,
}

/// Reads the inputs (or one shard of them) and calls `sink` with each block, in order.
/// Plain files are split by byte ranges of their total size; a line belongs to the shard
/// where it starts. Compressed inputs and stdin cannot be split by bytes: there a shard takes
/// every N-th block of lines instead (blocks are cut at the same places in every shard).
pub fn read_blocks(
    inputs: &[Input],
    shard: Option<Shard>,
    progress: &Progress,
    stop: &AtomicBool,
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
    let mut block_no = 0u64;
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
        // Start one byte early and drop through the first newline: the first line kept is
        // the first that starts at or after `lo`.
        let start = lo.saturating_sub(1);
        let mut r = input.open(start)?;
        let mut pos = start;
        let mut skip_partial = lo > 0;
        let mut carry: Vec<u8> = Vec::new();
        let mut line = 1u64;
        let mut done = false;
        let mut binary: Option<BinaryLayout> = None;
        let mut first = lo == 0;
        while !done && !stop.load(Ordering::Relaxed) {
            let mut buf = std::mem::take(&mut carry);
            let old = buf.len();
            buf.resize(old + BLOCK, 0);
            let n = read_full(&mut r, &mut buf[old..]).with_context(|| format!("{}: read error", input.name()))?;
            buf.truncate(old + n);
            let eof = n == 0;
            let buf_start = pos - old as u64;
            pos += n as u64;
            let mut from = 0;
            if first {
                first = false;
                if buf.len() >= 16 && buf[..8] == TRIPLET_MAGIC {
                    binary = Some(parse_binary_header(&buf, &input.name())?);
                    from = 16;
                } else if buf.len() >= 8 && buf[..8] == TRIPLET_MAGIC {
                    bail!(
                        "{}: binary triplet stream shorter than its 16-byte header",
                        input.name()
                    );
                }
            }
            if let Some(layout) = binary {
                let rec = layout.record();
                let whole = (buf.len() - from) / rec * rec;
                if eof && from + whole != buf.len() {
                    bail!(
                        "{}: binary triplet stream ends inside a record at byte {} (records are {rec} bytes)",
                        input.name(),
                        buf_start + (from + whole) as u64
                    );
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
                progress.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                sink(Block {
                    input: ii,
                    first_line: line,
                    data,
                    binary,
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
            progress.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            let mine = by_bytes || shard.is_none_or(|s| block_no % s.n == s.k - 1);
            block_no += 1;
            if mine {
                sink(Block {
                    input: ii,
                    first_line: line,
                    data,
                    binary: None,
                })?;
            }
            line += lines;
        }
    }
    Ok(())
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

pub fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&x| x == b)
}

pub fn count_lines(s: &[u8]) -> u64 {
    let n = s.iter().filter(|&&b| b == b'\n').count() as u64;
    if s.last().is_some_and(|&b| b != b'\n') {
        n + 1
    } else {
        n
    }
}

/// When to commit while reading: every so often, or every so many input bytes.
#[derive(Debug, Clone, Copy)]
pub enum Checkpoint {
    Every(Duration),
    Bytes(u64),
    Never,
}

impl std::str::FromStr for Checkpoint {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Checkpoint> {
        let t = s.trim();
        if t == "0" || t == "never" || t == "off" {
            return Ok(Checkpoint::Never);
        }
        if t.ends_with(['s', 'm', 'h']) && !t.to_ascii_uppercase().ends_with("MB") {
            return Ok(Checkpoint::Every(crate::units::parse_duration(t)?));
        }
        Ok(Checkpoint::Bytes(crate::parse_bytes(t)?))
    }
}

/// Messages to workers.
enum Msg {
    Block(Block),
    /// Flush your producer, then wait at the barrier.
    Flush(Arc<Barrier>),
}

/// Runs `threads` workers over the blocks of `read_blocks`. Each worker gets its own state
/// from `make`, handles blocks with `work` and, at every checkpoint and at the end, is
/// flushed with `flush` before `commit` runs with every worker stopped at a barrier.
#[allow(clippy::too_many_arguments)]
pub fn run_pool<W: Send>(
    inputs: &[Input],
    shard: Option<Shard>,
    threads: usize,
    checkpoint: Checkpoint,
    progress: &Progress,
    make: impl Fn() -> W + Sync,
    work: impl Fn(&mut W, Block) -> Result<()> + Sync,
    flush: impl Fn(&mut W) -> Result<()> + Sync,
    mut commit: impl FnMut(u64) -> Result<()>,
) -> Result<()> {
    let threads = threads.max(1);
    let (tx, rx) = mpsc::sync_channel::<Msg>(threads);
    let rx = Mutex::new(rx);
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let fail = |e: anyhow::Error| {
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
        let sync_all = |tx: &mpsc::SyncSender<Msg>| -> Result<bool> {
            let barrier = Arc::new(Barrier::new(threads + 1));
            for _ in 0..threads {
                if tx.send(Msg::Flush(barrier.clone())).is_err() {
                    return Ok(false);
                }
            }
            barrier.wait();
            Ok(!stop.load(Ordering::Relaxed))
        };
        let read = read_blocks(inputs, shard, progress, &stop, |b| {
            let lines = match b.binary {
                Some(l) => (b.data.len() / l.record()) as u64,
                None => count_lines(&b.data),
            };
            tx.send(Msg::Block(b)).map_err(|_| anyhow::anyhow!("workers stopped"))?;
            progress.lines.fetch_add(lines, Ordering::Relaxed);
            let due = match checkpoint {
                Checkpoint::Every(d) => last.elapsed() >= d,
                Checkpoint::Bytes(n) => progress.bytes.load(Ordering::Relaxed) - last_bytes >= n,
                Checkpoint::Never => false,
            };
            if due && !stop.load(Ordering::Relaxed) {
                if sync_all(&tx)? {
                    commit(progress.lines.load(Ordering::Relaxed))?;
                }
                last = Instant::now();
                last_bytes = progress.bytes.load(Ordering::Relaxed);
            }
            Ok(())
        });
        if let Err(e) = read {
            fail(e);
        }
        let ok = sync_all(&tx)?;
        drop(tx);
        if ok {
            if let Err(e) = commit(progress.lines.load(Ordering::Relaxed)) {
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
