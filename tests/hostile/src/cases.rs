//! The hostile-input corpus: every truncation of a small valid file, and every single-bit
//! flip in its header and index regions, grouped in families (reader, seed file, kind,
//! region) whose expected outcome the registry gives.
//!
//! Seeds are the committed fixtures of `testdata/` (written by numpy, scipy, pyarrow, h5py,
//! PyTables, and vecfmt's own v1 files), plus a few generated here: a `.vfm` with two
//! commits (written by the `Accumulator`) and an `.npz` with stored (uncompressed) members,
//! whose member `.npy` headers lie in the archive as plain bytes.

use std::io::{Read, Write};
use std::ops::Range;
use std::path::Path;

use vecfmt::consts::{META_PAGE_SIZE, SUPERBLOCK_SIZE};
use vecfmt::{Accumulator, AccumulatorOptions, Codec, DType};

/// The readers under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reader {
    Vfm,
    Npy,
    Npz,
    Hdf5,
    Parquet,
    Mtx,
}

impl Reader {
    /// Every reader.
    pub const ALL: [Reader; 6] = [
        Reader::Vfm,
        Reader::Npy,
        Reader::Npz,
        Reader::Hdf5,
        Reader::Parquet,
        Reader::Mtx,
    ];
    /// The name used in family keys.
    pub fn name(self) -> &'static str {
        match self {
            Reader::Vfm => "vfm",
            Reader::Npy => "npy",
            Reader::Npz => "npz",
            Reader::Hdf5 => "hdf5",
            Reader::Parquet => "parquet",
            Reader::Mtx => "mtx",
        }
    }
    /// The file extension of its inputs.
    pub fn ext(self) -> &'static str {
        match self {
            Reader::Vfm => "vfm",
            Reader::Npy => "npy",
            Reader::Npz => "npz",
            Reader::Hdf5 => "h5",
            Reader::Parquet => "parquet",
            Reader::Mtx => "mtx",
        }
    }
}

/// A named set of byte ranges of a seed.
#[derive(Debug, Clone)]
pub struct Region {
    pub name: String,
    pub ranges: Vec<Range<usize>>,
}

impl Region {
    fn new(name: impl Into<String>, ranges: Vec<Range<usize>>) -> Self {
        Region {
            name: name.into(),
            ranges,
        }
    }
    /// A region of one range.
    fn one(name: impl Into<String>, range: Range<usize>) -> Self {
        Region {
            name: name.into(),
            ranges: std::iter::once(range).collect(),
        }
    }
    fn len(&self) -> usize {
        self.ranges.iter().map(|r| r.len()).sum()
    }
}

/// A small valid file and the regions its cases come from.
#[derive(Debug, Clone)]
pub struct Seed {
    pub reader: Reader,
    pub name: String,
    pub bytes: Vec<u8>,
    /// Truncation lengths by region: each length `n` in a region gives the first `n` bytes.
    /// Together the regions cover `0..len` (every truncation).
    pub truncations: Vec<Region>,
    /// Byte ranges whose every bit is flipped, one bit per case.
    pub flips: Vec<Region>,
}

/// One hostile input.
#[derive(Debug, Clone)]
pub struct Case {
    /// `reader:seed:trunc|flip:region`, the key of the registry.
    pub family: String,
    /// What was done: `truncated to 812 bytes`, `bit 3 of byte 77 flipped`.
    pub what: String,
    pub bytes: Vec<u8>,
}

impl Seed {
    /// The family keys of this seed's cases.
    pub fn families(&self) -> Vec<String> {
        let mut f: Vec<String> = self
            .truncations
            .iter()
            .filter(|r| r.len() > 0)
            .map(|r| self.family("trunc", &r.name))
            .collect();
        f.extend(
            self.flips
                .iter()
                .filter(|r| r.len() > 0)
                .map(|r| self.family("flip", &r.name)),
        );
        f
    }

    fn family(&self, kind: &str, region: &str) -> String {
        format!("{}:{}:{kind}:{region}", self.reader.name(), self.name)
    }

    /// Number of cases.
    pub fn count(&self) -> usize {
        self.truncations.iter().map(Region::len).sum::<usize>() + 8 * self.flips.iter().map(Region::len).sum::<usize>()
    }

    /// Every case, built one at a time.
    pub fn cases(&self) -> impl Iterator<Item = Case> + '_ {
        let truncs = self.truncations.iter().flat_map(move |r| {
            let family = self.family("trunc", &r.name);
            r.ranges.clone().into_iter().flatten().map(move |n| Case {
                family: family.clone(),
                what: format!("truncated to {n} bytes"),
                bytes: self.bytes[..n].to_vec(),
            })
        });
        let flips = self.flips.iter().flat_map(move |r| {
            let family = self.family("flip", &r.name);
            r.ranges.clone().into_iter().flatten().flat_map(move |at| {
                let family = family.clone();
                (0..8).map(move |bit| {
                    let mut bytes = self.bytes.clone();
                    bytes[at] ^= 1 << bit;
                    Case {
                        family: family.clone(),
                        what: format!("bit {bit} of byte {at} flipped"),
                        bytes,
                    }
                })
            })
        });
        truncs.chain(flips)
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading seed {}: {e}", path.display()))
}

fn stem(path: &Path) -> String {
    path.file_stem().expect("a file name").to_string_lossy().into_owned()
}

fn all(len: usize) -> Vec<Region> {
    vec![Region::one("all", 0..len)]
}

/// The seeds of one reader. HDF5 seeds are listed here too (their regions need no HDF5
/// library); they are read by the HDF5 crate's own hostile test, in child processes.
pub fn seeds(reader: Reader) -> Vec<Seed> {
    let root = crate::repo_root();
    let td = root.join("testdata");
    match reader {
        Reader::Vfm => {
            let mut v: Vec<Seed> = ["f32_raw_labels.vfm", "i32_lz4.vfm"]
                .iter()
                .map(|f| vfm_seed(stem(Path::new(f)), read(&td.join("v1").join(f))))
                .collect();
            v.push(vfm_seed("accum_two_commits".into(), two_commit_vfm()));
            v
        }
        Reader::Npy => ["c_f64.npy", "f_i32.npy", "be_f32.npy"]
            .iter()
            .map(|f| {
                let bytes = read(&td.join("interop/npy").join(f));
                let h = vecfmt_npy::header::read_header(&mut &bytes[..]).expect("a valid .npy seed");
                Seed {
                    reader,
                    name: stem(Path::new(f)),
                    truncations: all(bytes.len()),
                    flips: vec![Region::one("header", 0..h.data_offset as usize)],
                    bytes,
                }
            })
            .collect(),
        Reader::Npz => {
            let mut v: Vec<Seed> = ["csr_f32.npz", "coo_f64.npz", "csc_i64.npz"]
                .iter()
                .map(|f| npz_seed(stem(Path::new(f)), read(&td.join("interop/npy").join(f))))
                .collect();
            let stored = restore_npz(&read(&td.join("interop/npy/csr_f32.npz")));
            v.push(npz_seed("csr_f32_stored".into(), stored));
            v
        }
        Reader::Parquet => [
            "coo_sorted.parquet",
            "list_layout.parquet",
            "coo_ijv_small_types.parquet",
        ]
        .iter()
        .map(|f| {
            let bytes = read(&td.join("interop/parquet").join(f));
            let len = bytes.len();
            let meta_len = u32::from_le_bytes(bytes[len - 8..len - 4].try_into().expect("4 bytes")) as usize;
            Seed {
                reader,
                name: stem(Path::new(f)),
                truncations: all(len),
                flips: vec![
                    Region::one("metadata", len - 8 - meta_len..len - 8),
                    Region::one("footer", len - 8..len),
                ],
                bytes,
            }
        })
        .collect(),
        Reader::Mtx => [
            "real_general.mtx",
            "integer_symmetric.mtx",
            "pattern_general.mtx",
            "array_real.mtx",
        ]
        .iter()
        .map(|f| mtx_seed(stem(Path::new(f)), read(&td.join("interop/npy").join(f))))
        .collect(),
        Reader::Hdf5 => [
            ("pytables_array.h5", 2048),
            ("h5py_dense_gzip.h5", 1024),
            ("h5py_csr_int64.h5", 2048),
        ]
        .iter()
        .map(|&(f, head)| {
            let bytes = read(&td.join("interop/hdf5").join(f));
            Seed {
                reader,
                name: stem(Path::new(f)),
                truncations: all(bytes.len()),
                flips: vec![Region::one(format!("first-{head}"), 0..head.min(bytes.len()))],
                bytes,
            }
        })
        .collect(),
    }
}

/// A `.vfm` seed: flips in the used bytes of both meta pages and in the catalog of each
/// valid commit, named by role (the current commit or the previous one).
fn vfm_seed(name: String, bytes: Vec<u8>) -> Seed {
    let len = bytes.len() as u64;
    let pages: Vec<(usize, Option<vecfmt::Commit>)> = [0usize, META_PAGE_SIZE as usize]
        .into_iter()
        .map(|base| {
            let page = &bytes[base..base + META_PAGE_SIZE as usize];
            (base, vecfmt::layout::parse_page(page, base as u64, len).ok())
        })
        .collect();
    let current = pages
        .iter()
        .filter_map(|(b, c)| c.as_ref().map(|c| (*b, c.generation)))
        .max_by_key(|&(b, g)| (g, std::cmp::Reverse(b)))
        .map(|(b, _)| b)
        .expect("a valid .vfm seed");
    let mut flips = Vec::new();
    for (base, commit) in &pages {
        let role = match commit {
            _ if *base == current => "current",
            Some(_) => "previous",
            None => "unused",
        };
        flips.push(Region::one(format!("meta-{role}"), *base..*base + 128));
        if let Some(c) = commit {
            let at = c.catalog_offset as usize;
            flips.push(Region::one(
                format!("catalog-{role}"),
                at..at + c.catalog_length as usize,
            ));
        }
    }
    let mut truncations = vec![Region::one("superblock", 0..SUPERBLOCK_SIZE as usize)];
    // A file with an older commit still reads (as that commit) when it is cut past the
    // older commit's end: those truncations form their own family.
    let old_end = pages
        .iter()
        .filter(|(b, _)| *b != current)
        .filter_map(|(_, c)| c.as_ref().map(|c| c.data_end as usize))
        .next();
    match old_end {
        Some(e) => {
            truncations.push(Region::one("before-previous-end", SUPERBLOCK_SIZE as usize..e));
            truncations.push(Region::one("after-previous-end", e..bytes.len()));
        }
        None => truncations.push(Region::one("data", SUPERBLOCK_SIZE as usize..bytes.len())),
    }
    Seed {
        reader: Reader::Vfm,
        name,
        bytes,
        truncations,
        flips,
    }
}

/// A `.vfm` file with two valid commits: written by the `Accumulator` (commit, more adds,
/// commit) and left unfinished, as a long build leaves it.
pub fn two_commit_vfm() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("two.vfm");
    let opts = AccumulatorOptions::new(DType::F64).memory(8 << 20).codec(Codec::Lz4);
    let acc = Accumulator::create(&path, opts).expect("create");
    for i in 0..40u64 {
        acc.add(i % 13, (i * 7) % 29, 1.0 + i as f64).expect("add");
    }
    acc.commit().expect("first commit");
    for i in 0..30u64 {
        acc.add(13 + i % 5, (i * 3) % 31, -(i as f64)).expect("add");
    }
    acc.commit().expect("second commit");
    drop(acc);
    read(&path)
}

/// Where the parts of a zip archive lie: local headers, central directory entries, the end
/// record, and each stored member's `.npy` header (or the start of a deflated member).
fn npz_seed(name: String, bytes: Vec<u8>) -> Seed {
    let eocd = (0..=bytes.len() - 22)
        .rev()
        .find(|&i| bytes[i..i + 4] == *b"PK\x05\x06")
        .expect("a zip end record");
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2")) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4")) as usize;
    let n = u16_at(eocd + 10);
    let mut at = u32_at(eocd + 16);
    let (mut local, mut central, mut npy) = (Vec::new(), Vec::new(), Vec::new());
    let mut all_stored = true;
    for _ in 0..n {
        assert_eq!(bytes[at..at + 4], *b"PK\x01\x02", "central directory entry");
        let method = u16_at(at + 10);
        let csize = u32_at(at + 20);
        let (nl, xl, cl) = (u16_at(at + 28), u16_at(at + 30), u16_at(at + 32));
        let lh = u32_at(at + 42);
        let end = at + 46 + nl + xl + cl;
        central.push(at..end);
        at = end;
        let (lnl, lxl) = (u16_at(lh + 26), u16_at(lh + 28));
        let data = lh + 30 + lnl + lxl;
        local.push(lh..data);
        all_stored &= method == 0;
        if method == 0 {
            let h = vecfmt_npy::header::read_raw_header(&mut &bytes[data..data + csize]).expect("a member .npy");
            npy.push(data..data + h.data_offset as usize);
        } else {
            npy.push(data..data + csize.min(16));
        }
    }
    let member_region = if all_stored {
        "member-npy-headers"
    } else {
        "member-data-start"
    };
    Seed {
        reader: Reader::Npz,
        name,
        truncations: all(bytes.len()),
        flips: vec![
            Region::new("local-headers", local),
            Region::new("central-directory", central),
            Region::one("end-record", eocd..bytes.len()),
            Region::new(member_region, npy),
        ],
        bytes,
    }
}

/// The same archive with every member stored uncompressed.
fn restore_npz(bytes: &[u8]) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip seed");
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..z.len() {
        let mut f = z.by_index(i).expect("member");
        let mut body = Vec::new();
        f.read_to_end(&mut body).expect("member bytes");
        let name = f.name().map(|n| n.into_owned()).expect("a member name");
        w.start_file(name, opts).expect("start member");
        w.write_all(&body).expect("write member");
    }
    w.finish().expect("finish zip").into_inner()
}

/// A Matrix Market seed: flips in the banner and the size line; truncations in the header,
/// among the entries, and inside the last entry (which can leave a valid file with a
/// shorter last number).
fn mtx_seed(name: String, bytes: Vec<u8>) -> Seed {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' {
            lines.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < bytes.len() {
        lines.push(start..bytes.len());
    }
    let size_line = lines
        .iter()
        .skip(1)
        .find(|r| {
            let t = String::from_utf8_lossy(&bytes[(*r).clone()]);
            let t = t.trim();
            !t.is_empty() && !t.starts_with('%')
        })
        .expect("a size line")
        .clone();
    let last = lines.last().expect("lines").clone();
    Seed {
        reader: Reader::Mtx,
        name,
        truncations: vec![
            Region::one("header", 0..size_line.end),
            Region::one("entries", size_line.end..last.start),
            Region::one("last-entry", last.start..bytes.len()),
        ],
        flips: vec![
            Region::one("banner", lines[0].clone()),
            Region::one("size-line", size_line),
        ],
        bytes,
    }
}

/// The families every seed of `reader` produces, in order.
pub fn families(reader: Reader) -> Vec<String> {
    seeds(reader).iter().flat_map(Seed::families).collect()
}
