//! Compressed chunks store whole-number floats as i32 byte planes (FORMAT.md §4.3): bit for
//! bit the same values, and only when every value of the chunk qualifies.

use vecfmt::{Codec, Element, Error, Matrix, MatrixWriter, ValueEncoding, WriterOptions};
use vecfmt_testkit::vfm::{entry, Vfm};

fn write<T: Element>(path: &std::path::Path, codec: Codec, rows: &[Vec<T>]) {
    let dtype = T::DTYPE;
    let mut w = MatrixWriter::create(path, WriterOptions::new(dtype, 1000).codec(codec)).unwrap();
    for (r, vals) in rows.iter().enumerate() {
        let cols: Vec<u32> = (0..vals.len() as u32).map(|c| c * 3).collect();
        w.push_row(r as u64, &cols, vals).unwrap();
    }
    w.finish().unwrap();
}

fn check<T: Element>(codec: Codec, rows: Vec<Vec<T>>, expected: ValueEncoding) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    write(&path, codec, &rows);
    let m = Matrix::open(&path).unwrap();
    assert!(
        m.chunks().iter().all(|c| c.values == expected),
        "{codec}: {:?}",
        m.chunks()
    );
    for (r, vals) in rows.iter().enumerate() {
        let row = m.row(r as u64).unwrap();
        let got = row.values().typed::<T>().unwrap();
        let same = got.len() == vals.len()
            && got
                .iter()
                .zip(vals)
                .all(|(a, b)| bytemuck::bytes_of(a) == bytemuck::bytes_of(b));
        assert!(same, "{codec} row {r}: {got:?} != {vals:?}");
    }
    assert!(m.verify().is_clean());
}

#[test]
fn whole_number_floats_use_i32_planes_and_come_back_exactly() {
    let f32s = vec![
        vec![1.0f32, 2.0, 3.0, 16_777_216.0, -1.0, 0.0],
        vec![i32::MIN as f32, 2_147_483_520.0, -7.0],
    ];
    let f64s = vec![vec![1.0f64, 1e9, -2_147_483_648.0, 2_147_483_647.0, 0.0]];
    for codec in [Codec::Zstd, Codec::Lz4] {
        check(codec, f32s.clone(), ValueEncoding::IntegralI32);
        check(codec, f64s.clone(), ValueEncoding::IntegralI32);
    }
}

#[test]
fn any_other_value_keeps_the_plain_planes() {
    for codec in [Codec::Zstd, Codec::Lz4] {
        check(codec, vec![vec![1.0f32, 2.5]], ValueEncoding::Planes);
        check(codec, vec![vec![1.0f32, -0.0]], ValueEncoding::Planes);
        check(codec, vec![vec![1.0f32, f32::NAN]], ValueEncoding::Planes);
        check(codec, vec![vec![1.0f64, 2_147_483_648.0]], ValueEncoding::Planes);
        check(codec, vec![vec![1i32, 2, 3]], ValueEncoding::Planes);
    }
    // The raw codec is always read in place.
    check(Codec::Raw, vec![vec![1.0f32, 2.0]], ValueEncoding::Planes);
}

#[test]
fn the_integral_flag_on_an_integer_chunk_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.vfm");
    write(&path, Codec::Zstd, &[vec![1i32, 2, 3]]);
    // Chunk 0's value encoding set to 1 (i32 planes), the catalog and meta page resealed.
    let mut v = Vfm::read(&path);
    v.set_entry_u8(0, entry::VALUE_ENCODING, 1);
    std::fs::write(&path, &v.bytes).unwrap();
    let err = Matrix::open(&path).unwrap_err();
    assert!(matches!(err, Error::Corrupt { what: "catalog", .. }), "{err}");
    assert!(err.to_string().contains("value encoding 1"), "{err}");
}
