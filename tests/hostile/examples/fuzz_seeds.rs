//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/seed-*` from the
//! committed fixtures of `testdata/`:
//!
//! ```sh
//! cargo run -p vecfmt-hostile --example fuzz_seeds
//! ```
//!
//! Seeds are named `seed-<fixture>[-<n>]`; inputs that once crashed a target are named
//! `crash-*` and are never touched here.

use std::io::Read;
use std::path::{Path, PathBuf};

use vecfmt::{Codec, Matrix};
use vecfmt_hostile::fuzz::{npz_member_names, NPZ_DELIMITER};

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn stem(p: &Path) -> String {
    p.file_stem().expect("name").to_string_lossy().into_owned()
}

struct Out {
    root: PathBuf,
    written: usize,
}

impl Out {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
        self.written += 1;
    }
}

fn main() {
    let root = vecfmt_hostile::repo_root();
    let td = root.join("testdata");
    let mut out = Out {
        root: root.join("fuzz/corpus"),
        written: 0,
    };
    // Old seeds go; crash inputs stay.
    if let Ok(dirs) = std::fs::read_dir(&out.root) {
        for d in dirs.flatten() {
            for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
                if f.file_name().to_string_lossy().starts_with("seed-") {
                    std::fs::remove_file(f.path()).expect("remove old seed");
                }
            }
        }
    }

    let mut vfms: Vec<(String, Vec<u8>)> = files(&td.join("v1"), "vfm")
        .iter()
        .map(|p| (stem(p), std::fs::read(p).expect("read")))
        .collect();
    vfms.push(("accum_two_commits".into(), vecfmt_hostile::cases::two_commit_vfm()));
    for (name, bytes) in &vfms {
        out.put("vfm_meta", name, bytes);
        out.put("vfm_scan", name, bytes);
        chunk_seeds(&mut out, name, bytes);
    }

    let npy = td.join("interop/npy");
    for p in files(&npy, "npy") {
        out.put("npy_header", &stem(&p), &std::fs::read(&p).expect("read"));
    }
    for p in files(&npy, "npz") {
        let bytes = std::fs::read(&p).expect("read");
        out.put("npz_member", &stem(&p), &bytes);
        if let Some(structured) = structured_npz(&bytes) {
            out.put("npz_member", &format!("{}-members", stem(&p)), &structured);
        }
    }
    for p in files(&npy, "mtx") {
        out.put("mtx_parse", &stem(&p), &std::fs::read(&p).expect("read"));
    }
    let pq = td.join("interop/parquet");
    let mut parquet = files(&pq, "parquet");
    parquet.extend(files(&pq.join("bad"), "parquet"));
    for part in ["part=0", "part=1"] {
        parquet.extend(files(&pq.join("hive").join(part), "parquet"));
    }
    for (i, p) in parquet.iter().enumerate() {
        out.put(
            "parquet_import",
            &format!("{}-{i}", stem(p)),
            &std::fs::read(p).expect("read"),
        );
    }

    // accumulate: config byte, then ops (see vecfmt_hostile::fuzz::accumulate).
    let acc: [(&str, &[u8]); 5] = [
        (
            "i64-adds-commit-finish",
            &[0x00, 0, 1, 0, 2, 0, 0, 0, 5, 1, 3, 0, 9, 0, 4, 0, 0, 0, 7, 7],
        ),
        (
            "f64-batch-reopen",
            &[
                0x01, 3, 0x70, 0x17, 0x55, 0x44, 0x33, 0x22, 2, 5, 4, 0xff, 0x0f, 9, 9, 9, 9, 1, 6, 7,
            ],
        ),
        (
            "f32-fixed-evict",
            &[
                0x46, 40, 0x00, 0x02, 3, 0xff, 0xff, 1, 2, 3, 4, 3, 5, 3, 0x10, 0x27, 8, 7, 6, 5, 0, 7,
            ],
        ),
        (
            "i32-zstd-commits",
            &[0x07, 0, 1, 2, 3, 4, 5, 5, 1, 0, 0, 0, 0, 2, 6, 5, 7],
        ),
        (
            "i64-raw-many",
            &[
                0x08, 4, 0xff, 0x17, 1, 2, 3, 4, 2, 5, 3, 0xff, 0x17, 4, 3, 2, 1, 3, 6, 7, 4, 0x00, 0x10, 1, 1, 1, 1,
                0, 5,
            ],
        ),
    ];
    for (name, bytes) in acc {
        out.put("accumulate", name, bytes);
    }
    println!("{} seeds written under {}", out.written, out.root.display());
}

/// `vfm_chunk` inputs for the first chunks of a file: as stored, and (for compressed chunks)
/// as a payload for the target to compress with each codec.
fn chunk_seeds(out: &mut Out, name: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("m.vfm");
    std::fs::write(&p, bytes).expect("write");
    let m = Matrix::open(&p).expect("a fixture opens");
    let c = m.commit();
    for (i, e) in m.chunks().iter().take(3).enumerate() {
        let stored = &bytes[e.offset as usize..(e.offset + e.stored_len) as usize];
        let mut entry = Vec::new();
        for x in [
            e.row_start,
            e.row_end,
            e.nnz,
            e.offset,
            e.stored_len,
            e.decoded_len,
            e.n_listed,
        ] {
            entry.extend_from_slice(&x.to_le_bytes());
        }
        entry.extend_from_slice(&[e.codec.code(), e.layout as u8, e.values as u8, 0]);
        entry.extend_from_slice(&e.crc.to_le_bytes());
        let head = |mode: u8| {
            let iw = u8::from(c.index_width == 8);
            let mut v = vec![c.dtype.code() - 1, iw | mode << 1 | 3 << 3 | 3 << 5];
            v.extend_from_slice(&c.n_cols.to_le_bytes());
            v.extend_from_slice(&c.n_rows.to_le_bytes());
            v.extend_from_slice(&entry);
            v
        };
        let mut as_stored = head(0);
        as_stored.extend_from_slice(stored);
        out.put("vfm_chunk", &format!("{name}-{i}"), &as_stored);
        let payload = match e.codec {
            Codec::Raw => None,
            Codec::Lz4 => lz4_flex::block::decompress(stored, e.decoded_len as usize).ok(),
            Codec::Zstd => zstd::bulk::decompress(stored, e.decoded_len as usize).ok(),
        };
        if let Some(payload) = payload {
            for (mode, codec) in [(1u8, "lz4"), (2, "zstd")] {
                let mut v = head(mode);
                v.extend_from_slice(&payload);
                out.put("vfm_chunk", &format!("{name}-{i}-{codec}-payload"), &v);
            }
        }
    }
}

/// The members of a scipy `.npz` in the structured form of `npz_member`.
fn structured_npz(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    let names: Vec<String> = z.file_names().filter_map(|n| n.ok().map(|n| n.into_owned())).collect();
    let layout = (0u8..4).find(|&f| {
        let want = npz_member_names(f);
        want.len() == names.len() && want.iter().all(|w| names.iter().any(|n| n == w))
    })?;
    let deflated = (0..z.len()).any(|i| {
        z.by_index_raw(i)
            .is_ok_and(|f| f.compression() == zip::CompressionMethod::Deflated)
    });
    let mut out = vec![layout | if deflated { 4 } else { 0 }];
    for (k, name) in npz_member_names(layout).iter().enumerate() {
        let mut body = Vec::new();
        z.by_name(name).ok()?.read_to_end(&mut body).ok()?;
        if k > 0 {
            out.extend_from_slice(NPZ_DELIMITER);
        }
        out.extend_from_slice(&body);
    }
    Some(out)
}
