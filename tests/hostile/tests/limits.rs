//! Resource limits (issue 5, item 6): headers that declare sizes far beyond the file are
//! refused with an error naming the file before anything is sized by the claim. Each case
//! runs under the counting allocator and must stay within a few MiB of heap, whatever it
//! claims (the suite-wide bound is 4 × the file size + 64 MiB; these stay far below).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use vecfmt::Result;
use vecfmt_hostile::alloc::{self, CountingAlloc};
use vecfmt_hostile::read::{self, names_file, Content};
use vecfmt_hostile::scratch;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

static SERIAL: Mutex<()> = Mutex::new(());

/// Heap any of these reads may take: buffered readers of up to 1 MiB and small vectors.
const SMALL_HEAP: usize = 4 << 20;

/// Reads `bytes` as file `name` and returns the error and the peak heap.
fn refused(name: &str, bytes: &[u8], read: fn(&Path, bool) -> Result<Content>) -> (String, usize) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let p = scratch::write(name, bytes);
    let base = alloc::reset_peak();
    let r = read(&p, true);
    let peak = alloc::peak().saturating_sub(base);
    let e = match r {
        Err(e) => e,
        Ok(c) => panic!("{name}: read as {} × {}", c.n_rows, c.n_cols),
    };
    assert!(names_file(&e, &p), "{name}: {e}");
    assert!(peak <= SMALL_HEAP, "{name}: peak heap {peak} bytes");
    (e.to_string(), peak)
}

fn npy_with_header(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut text = dict.as_bytes().to_vec();
    text.push(b'\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&(text.len() as u16).to_le_bytes());
    v.extend_from_slice(&text);
    v.extend_from_slice(data);
    v
}

#[test]
fn npy_header_length_is_not_allocated_before_it_is_read() {
    // Version 2.0: a u32 header length of 1 MiB, in a 20-byte file.
    let mut v = b"\x93NUMPY\x02\x00".to_vec();
    v.extend_from_slice(&(1u32 << 20).to_le_bytes());
    v.extend_from_slice(b"{'descr'");
    let (e, peak) = refused("long_header.npy", &v, read::read_npy);
    assert!(e.contains("ends inside the .npy header"), "{e}");
    assert!(peak < 64 << 10, "peak heap {peak} bytes for a 1 MiB header claim");
}

#[test]
fn npy_shape_is_checked_against_the_file() {
    let v = npy_with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }",
        &[0u8; 64],
    );
    let (e, _) = refused("huge_shape.npy", &v, read::read_npy);
    assert!(e.contains("overflows") || e.contains("truncated"), "{e}");
    let v = npy_with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }",
        &[0u8; 64],
    );
    let (e, _) = refused("big_shape.npy", &v, read::read_npy);
    assert!(e.contains("truncated file"), "{e}");
    let v = npy_with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551621, 1), }",
        &[0u8; 8],
    );
    let (e, _) = refused("wide_dim.npy", &v, read::read_npy);
    assert!(e.contains("does not fit 64 bits"), "{e}");
}

#[test]
fn npy_zero_rows_with_a_huge_width_reads_as_empty() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let v = npy_with_header(
        "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 9223372036854775807), }",
        &[],
    );
    let p = scratch::write("zero_rows.npy", &v);
    let c = read::read_npy(&p, true).expect("an empty array reads");
    assert_eq!((c.n_rows, c.n_cols, c.yielded), (0, 9223372036854775807, 0));
}

/// A scipy csr `.npz` with stored members, from the committed fixture.
fn stored_npz() -> Vec<u8> {
    let seeds = vecfmt_hostile::cases::seeds(vecfmt_hostile::cases::Reader::Npz);
    seeds
        .into_iter()
        .find(|s| s.name == "csr_f32_stored")
        .expect("the stored seed")
        .bytes
}

fn eocd(v: &[u8]) -> usize {
    (0..=v.len() - 22)
        .rev()
        .find(|&i| v[i..i + 4] == *b"PK\x05\x06")
        .expect("an end record")
}

#[test]
fn npz_member_count_is_checked_before_the_zip_library_sizes_anything() {
    let mut v = stored_npz();
    let at = eocd(&v);
    v[at + 8..at + 12].copy_from_slice(&[0xfe, 0xff, 0xfe, 0xff]);
    let (e, _) = refused("many_members.npz", &v, read::read_npz);
    assert!(e.contains("declares 65534 members"), "{e}");
}

#[test]
fn npz_member_sizes_must_fit_their_stored_bytes() {
    let base = stored_npz();
    let at = eocd(&base);
    let cd = u32::from_le_bytes(base[at + 16..at + 20].try_into().unwrap()) as usize;
    // The first central directory entry's uncompressed size (offset 24), for a stored
    // member: 2 GiB claimed from a few hundred bytes.
    let mut v = base.clone();
    v[cd + 24..cd + 28].copy_from_slice(&(1u32 << 31).to_le_bytes());
    let (e, _) = refused("stored_claim.npz", &v, read::read_npz);
    assert!(e.contains("claims 2147483648 bytes from"), "{e}");

    // A deflated member claiming more than deflate can produce.
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for name in ["format.npy", "shape.npy", "data.npy", "indices.npy", "indptr.npy"] {
        w.start_file(name, opts).unwrap();
        w.write_all(&[0u8; 100]).unwrap();
    }
    let mut v = w.finish().unwrap().into_inner();
    let at = eocd(&v);
    let cd = u32::from_le_bytes(v[at + 16..at + 20].try_into().unwrap()) as usize;
    v[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    let (e, _) = refused("deflate_claim.npz", &v, read::read_npz);
    assert!(
        e.contains("claims 4294967295 bytes from") && e.contains("deflated"),
        "{e}"
    );
}

#[test]
fn mtx_entry_count_is_checked_against_the_file() {
    let v = b"%%MatrixMarket matrix coordinate real general\n3 3 1000000000000\n1 1 1.0\n2 2 2.0\n";
    let (e, peak) = refused("many_entries.mtx", v, read::read_mtx);
    assert!(e.contains("declares 1000000000000 entries"), "{e}");
    assert!(peak < 2 << 20, "peak heap {peak}");
    let v = b"%%MatrixMarket matrix array real general\n100000 100000\n1.0\n";
    let (e, _) = refused("big_array.mtx", v, read::read_mtx);
    assert!(e.contains("declares 10000000000 entries"), "{e}");
}

#[test]
fn parquet_dictionary_count_is_checked_before_the_parquet_crate_sizes_it() {
    // Found by the parquet_import fuzz target: a dictionary page declaring 1,207,959,544
    // int32 values in 16 bytes made the parquet crate allocate and zero 4.8 GB.
    let p = vecfmt_hostile::repo_root().join("fuzz/corpus/parquet_import/crash-dictionary-count-oom");
    let bytes = std::fs::read(p).unwrap();
    let (e, _) = refused("dictionary.parquet", &bytes, read::read_parquet);
    assert!(
        e.contains("the dictionary declares 1207959544 values in 16 bytes"),
        "{e}"
    );
}
