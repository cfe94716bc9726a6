"""numpy .npy and scipy.sparse .npz through `vecfmt convert`, checked by numpy and scipy.

Each round trip: the library writes a file, vecfmt brings it to .vfm and back out, the library
reads the result, and values (bit for bit), shape and type are equal.
"""

import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

SEED = 20240611


def sample_dense(dtype, shape=(37, 23), density=0.3, seed=SEED):
    """A dense array of `dtype`, mostly zeros, with the awkward values the dtype has."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        a = rng.standard_normal(shape).astype(dt) * dt.type(1e3)
        specials = [np.nan, np.inf, -np.inf, -0.0, np.finfo(dt).max, np.finfo(dt).tiny, np.finfo(dt).smallest_subnormal]
    elif dt.kind == "b":
        a = rng.integers(0, 2, shape).astype(dt)
        specials = [True]
    else:
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, shape, dtype=dt.newbyteorder("="), endpoint=True).astype(dt)
        specials = [info.min, info.max, 1]
    a[rng.random(shape) > density] = 0
    a[1, :] = 0  # an empty row
    flat = a.reshape(-1)
    for k, v in enumerate(specials):
        flat[(k * 7 + 3) % flat.size] = v
    return a


def same_bits(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def through_vfm(vecfmt, tmp_path, src, out_name, *extra):
    vfm = tmp_path / (src.name + ".vfm")
    vecfmt.run("convert", src, vfm, *extra)
    out = tmp_path / out_name
    vecfmt.run("convert", vfm, out)
    return vfm, out


# ---- .npy ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["<f4", "<f8", "<i4", "<i8", "<u4", "<u8", ">f8", ">i4"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_round_trip_bit_for_bit(vecfmt, tmp_path, dtype, order):
    a = sample_dense(dtype)
    src = tmp_path / "in.npy"
    np.save(src, np.asarray(a, order=order))
    assert np.load(src).flags.f_contiguous == (order == "F")
    vfm, out = through_vfm(vecfmt, tmp_path, src, "out.npy")
    info = vecfmt.inspect(vfm)
    assert info["shape"] == list(a.shape)
    assert info["nnz"] == int(np.count_nonzero(a.reshape(-1).view(f"u{a.itemsize}")))
    b = np.load(out)
    # vecfmt writes little-endian C order: the same numbers, bit for bit.
    assert same_bits(a.astype(a.dtype.newbyteorder("<")), b)


@pytest.mark.parametrize(
    "dtype,wide", [("i1", np.int32), ("<i2", np.int32), ("u1", np.uint32), ("<u2", np.uint32), ("?", np.uint32)]
)
def test_npy_narrow_dtypes_widen_exactly(vecfmt, tmp_path, dtype, wide):
    a = sample_dense(dtype)
    src = tmp_path / "narrow.npy"
    np.save(src, a)
    vfm = tmp_path / "narrow.vfm"
    err = vecfmt.run("convert", src, vfm).stderr
    assert "widened" in err and str(src) in err
    out = tmp_path / "wide.npy"
    vecfmt.run("convert", vfm, out)
    b = np.load(out)
    assert b.dtype == wide
    assert np.array_equal(b, a.astype(wide))


def test_npy_float16_needs_dtype(vecfmt, tmp_path):
    a = sample_dense("<f2")
    src = tmp_path / "half.npy"
    np.save(src, a)
    vfm = tmp_path / "half.vfm"
    err = vecfmt.fail("convert", src, vfm)
    assert str(src) in err and "float16" in err and "--dtype f32" in err
    assert not vfm.exists()
    vecfmt.run("convert", src, vfm, "--dtype", "f32")
    out = tmp_path / "half32.npy"
    vecfmt.run("convert", vfm, out)
    assert same_bits(np.load(out), a.astype(np.float32))


def test_dtype_change_is_checked(vecfmt, tmp_path):
    src = tmp_path / "f.npy"
    np.save(src, np.array([[0.0, 2.0], [3.0, 0.0]]))
    out = tmp_path / "i.npy"
    vecfmt.run("convert", src, out, "--dtype", "i32")
    b = np.load(out)
    assert b.dtype == np.int32 and b.tolist() == [[0, 2], [3, 0]]
    np.save(src, np.array([[0.0, 2.5]]))
    err = vecfmt.fail("convert", src, out.with_name("j.npy"), "--dtype", "i32")
    assert str(src) in err and "2.5" in err and "--allow-lossy" in err
    assert not out.with_name("j.npy").exists()
    vecfmt.run("convert", src, out.with_name("j.npy"), "--dtype", "i32", "--allow-lossy")
    assert np.load(out.with_name("j.npy")).tolist() == [[0, 2]]


def test_npy_output_size_guard(vecfmt, tmp_path):
    mtx = tmp_path / "huge.mtx"
    mtx.write_text("%%MatrixMarket matrix coordinate real general\n2000000 2000000 1\n1 1 1.5\n")
    out = tmp_path / "huge.npy"
    err = vecfmt.fail("convert", mtx, out)
    assert str(out) in err and "--force" in err and "over the limit" in err
    assert not out.exists()


# ---- .npz ------------------------------------------------------------------------------


def sample_sparse(dtype=np.float64, shape=(120, 300), density=0.05, seed=SEED):
    rng = np.random.default_rng(seed)
    m = sp.random(*shape, density=density, format="csr", dtype=np.float64, rng=rng)
    if np.dtype(dtype).kind == "f":
        m.data = (m.data * 1e3 - 500).astype(dtype)
    else:
        m.data = rng.integers(1, 10**6, m.nnz).astype(dtype)
    return m.astype(dtype)


def assert_same_sparse(a, b):
    a, b = sp.csr_array(a), sp.csr_array(b)
    a.sort_indices()
    b.sort_indices()
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert a.data.tobytes() == b.data.tobytes()


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("compressed", [True, False])
@pytest.mark.parametrize("index", [np.int32, np.int64])
def test_npz_layouts_round_trip(vecfmt, tmp_path, fmt, compressed, index):
    m = sample_sparse(np.float32).asformat(fmt)
    if fmt == "coo":
        m.row, m.col = m.row.astype(index), m.col.astype(index)
    else:
        m.indices, m.indptr = m.indices.astype(index), m.indptr.astype(index)
    src = tmp_path / "in.npz"
    sp.save_npz(src, m, compressed=compressed)
    _, out = through_vfm(vecfmt, tmp_path, src, "out.npz")
    back = sp.load_npz(out)
    assert isinstance(back, sp.csr_matrix)
    assert back.indices.dtype == np.int32
    assert_same_sparse(m, back)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint32, np.uint64])
def test_npz_every_dtype_and_csr_array(vecfmt, tmp_path, dtype):
    m = sp.csr_array(sample_sparse(dtype))
    src = tmp_path / "in.npz"
    sp.save_npz(src, m)
    vfm = tmp_path / "m.vfm"
    vecfmt.run("convert", src, vfm)
    out = tmp_path / "out.npz"
    vecfmt.run("convert", vfm, out, "--layout", "csr_array")
    back = sp.load_npz(out)
    assert isinstance(back, sp.csr_array)
    assert_same_sparse(m, back)
    # numpy sees a plain save_npz archive, deflated.
    with np.load(out) as z:
        assert sorted(z.files) == ["_is_array", "data", "format", "indices", "indptr", "shape"]
        assert z["format"].item() == b"csr" and z["shape"].tolist() == list(m.shape)


def test_npz_int64_indices_when_columns_need_them(vecfmt, tmp_path):
    n_cols = 3_000_000_000
    m = sp.csr_matrix(
        (np.array([1.5, -2.0, 4.0]), np.array([0, 2_999_999_999, 2_147_483_648]), np.array([0, 2, 2, 3])),
        shape=(3, n_cols),
    )
    src = tmp_path / "wide.npz"
    sp.save_npz(src, m)
    _, out = through_vfm(vecfmt, tmp_path, src, "out.npz")
    back = sp.load_npz(out)
    assert back.indices.dtype == np.int64 and back.indptr.dtype == np.int64
    assert_same_sparse(m, back)


def test_npz_unsorted_and_duplicate_indices_are_summed_with_a_note(vecfmt, tmp_path):
    m = sp.csr_matrix(
        (np.array([3, 4, 5, 6], dtype=np.int64), np.array([2, 0, 2, 1]), np.array([0, 3, 4])), shape=(2, 3)
    )
    src = tmp_path / "dups.npz"
    sp.save_npz(src, m)
    vfm = tmp_path / "dups.vfm"
    err = vecfmt.run("convert", src, vfm).stderr
    assert "note" in err and str(src) in err and "duplicate" in err
    out = tmp_path / "dups_out.npz"
    vecfmt.run("convert", vfm, out)
    back = sp.load_npz(out)
    assert back.has_canonical_format
    assert back.toarray().tolist() == [[4, 0, 8], [0, 6, 0]]


def test_coo_duplicates_are_summed(vecfmt, tmp_path):
    m = sp.coo_matrix((np.array([1.0, 2.0, 0.25]), (np.array([0, 1, 0]), np.array([1, 0, 1]))), shape=(2, 2))
    src = tmp_path / "coo.npz"
    sp.save_npz(src, m)
    _, out = through_vfm(vecfmt, tmp_path, src, "out.npz")
    assert sp.load_npz(out).toarray().tolist() == [[0, 1.25], [2.0, 0]]


def test_labels_are_dropped_with_a_note(vecfmt, testdata, tmp_path):
    src = testdata / "v1" / "f32_raw_labels.vfm"
    assert vecfmt.inspect(src)["has_row_labels"]
    out = tmp_path / "labelled.npz"
    err = vecfmt.run("convert", src, out).stderr
    assert "labels are not written" in err
    assert sp.load_npz(out).shape == tuple(vecfmt.inspect(src)["shape"])


# ---- bad input ----------------------------------------------------------------------------


def save_members(path, **arrays):
    """A .npz member by member, for inputs scipy itself refuses to build."""
    np.savez(path, **arrays)


def bad_inputs(tmp_path):
    d = tmp_path
    np.save(d / "object.npy", np.array([[{"a": 1}, None]], dtype=object), allow_pickle=True)
    np.save(d / "complex.npy", np.ones((2, 2), dtype=np.complex128))
    np.save(d / "good.npy", np.eye(30))
    raw = (d / "good.npy").read_bytes()
    (d / "truncated.npy").write_bytes(raw[: len(raw) // 2])
    ok = dict(format=np.array(b"csr"), shape=np.array([2, 3]), data=np.array([1.0, 2.0, 3.0]))
    save_members(d / "range.npz", indices=np.array([0, 3, 2]), indptr=np.array([0, 2, 3]), **ok)
    save_members(d / "indptr.npz", indices=np.array([0, 1, 2]), indptr=np.array([0, 2, 1]), **ok)
    save_members(d / "shape.npz", indices=np.array([0, 1, 2]), indptr=np.array([0, 1, 2, 3]), **ok)
    sp.save_npz(d / "good.npz", sample_sparse())
    raw = (d / "good.npz").read_bytes()
    (d / "truncated.npz").write_bytes(raw[: len(raw) - 200])
    sp.save_npz(d / "dia.npz", sp.eye(4, format="dia"))
    return {
        "object.npy": "pickled object array",
        "complex.npy": "unsupported dtype",
        "truncated.npy": "truncated",
        "range.npz": "out of range",
        "indptr.npz": "not monotone",
        "shape.npz": "shape mismatch",
        "truncated.npz": "truncated",
        "dia.npz": "unsupported scipy.sparse format",
    }


def test_bad_inputs_fail_cleanly(vecfmt, tmp_path):
    for name, problem in bad_inputs(tmp_path).items():
        src = tmp_path / name
        for out in (tmp_path / (name + ".vfm"), tmp_path / (name + ".out.npz")):
            err = vecfmt.fail("convert", src, out)
            assert str(src) in err and problem in err, (name, err)
            assert not out.exists(), name
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_unknown_layout_lists_candidates(vecfmt, tmp_path):
    src = tmp_path / "a.npy"
    np.save(src, np.eye(3))
    out = tmp_path / "a.npz"
    err = vecfmt.fail("convert", src, out, "--layout", "csc")
    assert str(out) in err and "unknown layout" in err and "csr, csr_array" in err
    assert not out.exists()


# ---- memory ------------------------------------------------------------------------------

PEAK_RSS = textwrap.dedent(
    """
    import resource, subprocess, sys
    p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
    sys.stderr.write(p.stderr)
    print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    """
)


def peak_rss_mib(*cmd):
    """Runs a command in a fresh process and returns (exit code, its peak RSS in MiB)."""
    p = subprocess.run([sys.executable, "-c", PEAK_RSS, *map(str, cmd)], capture_output=True, text=True, timeout=120)
    code, kib = p.stdout.split()
    return int(code), int(kib) / 1024, p.stderr


@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_larger_than_the_budget_streams_in_bounded_memory(vecfmt, tmp_path, order):
    shape = (25_000, 2_000)  # 200 MB of float32
    a = np.lib.format.open_memmap(
        tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=shape, fortran_order=order == "F"
    )
    rng = np.random.default_rng(SEED)
    rows = rng.integers(0, shape[0], 200_000)
    cols = rng.integers(0, shape[1], 200_000)
    a[rows, cols] = rng.random(200_000, dtype=np.float32) + 1
    a.flush()
    del a
    size_mib = (tmp_path / "big.npy").stat().st_size / 2**20
    assert size_mib > 190
    out = tmp_path / "big.vfm"
    code, peak, err = peak_rss_mib(vecfmt.binary, "convert", tmp_path / "big.npy", out, "--memory", "64M")
    assert code == 0, err
    nnz = vecfmt.inspect(out)["nnz"]
    assert 190_000 < nnz <= 200_000
    # The budget plus the binary and its thread stacks; far below the file's size.
    assert peak < 64 + 48, f"peak RSS {peak:.0f} MiB converting a {size_mib:.0f} MiB .npy with --memory 64M"


def test_npz_csr_larger_than_the_budget_streams_in_bounded_memory(vecfmt, tmp_path):
    n_rows, per, n_cols = 100_000, 50, 1_000_000  # 5 M entries, 38 MiB stored
    rng = np.random.default_rng(SEED)
    indptr = np.arange(n_rows + 1, dtype=np.int32) * per
    indices = np.sort(rng.integers(0, n_cols, (n_rows, per), dtype=np.int32), axis=1).reshape(-1)
    data = rng.random(n_rows * per, dtype=np.float32) + 1
    src = tmp_path / "big.npz"
    sp.save_npz(src, sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols)), compressed=False)
    size_mib = src.stat().st_size / 2**20
    out = tmp_path / "big.vfm"
    code, peak, err = peak_rss_mib(vecfmt.binary, "convert", src, out, "--memory", "16M")
    assert code == 0, err
    assert vecfmt.inspect(out)["shape"] == [n_rows, n_cols]
    assert peak < 16 + 24, f"peak RSS {peak:.0f} MiB converting a {size_mib:.0f} MiB .npz with --memory 16M"
