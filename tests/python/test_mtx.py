"""Matrix Market through `vecfmt convert`, checked by scipy.io.mmwrite / mmread.

scipy writes a .mtx, vecfmt brings it to .vfm and back out to .mtx, scipy reads the result:
values (bit for bit as float64 or int64), shape and sparsity are equal.
"""

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

SEED = 7


def sample(dtype, shape=(60, 45), density=0.08):
    rng = np.random.default_rng(SEED)
    m = sp.random(*shape, density=density, format="coo", rng=rng)
    if np.dtype(dtype).kind == "f":
        m.data = (rng.standard_normal(m.nnz) * 10.0 ** rng.integers(-300, 300, m.nnz)).astype(dtype)
    else:
        m.data = rng.integers(-(2**62), 2**62, m.nnz).astype(dtype)
    return m


def through_vfm(vecfmt, tmp_path, src, *extra):
    vfm = tmp_path / "m.vfm"
    vecfmt.run("convert", src, vfm)
    out = tmp_path / "out.mtx"
    vecfmt.run("convert", vfm, out, *extra)
    return vfm, out


def assert_same(a, b):
    a, b = sp.csr_array(a), sp.csr_array(b)
    a.sort_indices()
    b.sort_indices()
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert a.data.tobytes() == b.data.tobytes()


@pytest.mark.parametrize("dtype,field", [(np.float64, "real"), (np.int64, "integer")])
def test_general_round_trip(vecfmt, tmp_path, dtype, field):
    m = sample(dtype)
    src = tmp_path / "in.mtx"
    scipy.io.mmwrite(src, m, symmetry="general")
    assert f"coordinate {field} general" in src.read_text().splitlines()[0]
    vfm, out = through_vfm(vecfmt, tmp_path, src)
    assert vecfmt.inspect(vfm)["dtype"] == ("f64" if field == "real" else "i64")
    back = scipy.io.mmread(out)
    assert f"coordinate {field} general" in out.read_text().splitlines()[0]
    assert_same(m, back)


@pytest.mark.parametrize("field", ["real", "integer", "pattern"])
def test_symmetric_input_expands_to_both_triangles(vecfmt, tmp_path, field):
    rng = np.random.default_rng(SEED)
    lower = sp.random(40, 40, density=0.1, format="coo", rng=rng)
    lower = sp.tril(lower).tocoo()
    lower.data = rng.integers(1, 1000, lower.nnz).astype(np.float64 if field != "integer" else np.int64)
    full = (lower + sp.tril(lower, k=-1).T).tocoo()
    src = tmp_path / "sym.mtx"
    scipy.io.mmwrite(src, full, field=field if field == "pattern" else None, symmetry="symmetric")
    assert "symmetric" in src.read_text().splitlines()[0]
    _, out = through_vfm(vecfmt, tmp_path, src)
    back = scipy.io.mmread(out)
    expected = scipy.io.mmread(src)
    assert_same(expected, back)
    assert np.array_equal(back.toarray(), back.toarray().T)


def test_pattern_layout(vecfmt, tmp_path):
    m = sample(np.float64)
    src = tmp_path / "in.mtx"
    scipy.io.mmwrite(src, m)
    _, out = through_vfm(vecfmt, tmp_path, src, "--layout", "pattern")
    assert "coordinate pattern general" in out.read_text().splitlines()[0]
    back = scipy.io.mmread(out)
    expected = m.copy()
    expected.data = np.ones_like(expected.data)
    assert_same(expected, back)


def test_float32_values_survive_exactly(vecfmt, tmp_path):
    a = np.zeros((30, 20), dtype=np.float32)
    rng = np.random.default_rng(SEED)
    a[rng.integers(0, 30, 100), rng.integers(0, 20, 100)] = rng.standard_normal(100).astype(np.float32) / 3
    a[0, 0] = np.finfo(np.float32).tiny
    a[0, 1] = np.finfo(np.float32).max
    src = tmp_path / "f32.npy"
    np.save(src, a)
    out = tmp_path / "f32.mtx"
    vecfmt.run("convert", src, out)
    back = scipy.io.mmread(out)
    # Matrix Market has one real field; float64 holds every float32 exactly.
    assert back.toarray().astype(np.float32).tobytes() == a.tobytes()
    assert np.array_equal(back.toarray(), a.astype(np.float64))
    # And back into vecfmt as float32, checked lossless.
    vfm = tmp_path / "f32.vfm"
    vecfmt.run("convert", out, vfm, "--dtype", "f32")
    npy = tmp_path / "f32_back.npy"
    vecfmt.run("convert", vfm, npy)
    assert np.load(npy).tobytes() == a.tobytes()


def test_dense_array_files_are_read(vecfmt, tmp_path):
    a = np.array([[1.5, 0.0, 2.0], [0.0, 0.0, -1e-300]])
    src = tmp_path / "dense.mtx"
    scipy.io.mmwrite(src, a)
    assert "array" in src.read_text().splitlines()[0]
    vfm, out = through_vfm(vecfmt, tmp_path, src)
    assert vecfmt.inspect(vfm)["nnz"] == 3
    assert np.array_equal(scipy.io.mmread(out).toarray(), a)


BAD = {
    "range.mtx": ("%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1 1.0\n4 1 2.0\n", "line 4"),
    "value.mtx": ("%%MatrixMarket matrix coordinate integer general\n3 3 1\n1 1 2.5\n", "line 3"),
    "truncated.mtx": ("%%MatrixMarket matrix coordinate real general\n3 3 5\n1 1 1.0\n2 2 2.0\n", "truncated"),
    "banner.mtx": ("%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1 0\n", "complex"),
    "notmm.mtx": ("1 2 3\n", "not a Matrix Market file"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_name_file_and_line(vecfmt, tmp_path, name):
    text, problem = BAD[name]
    src = tmp_path / name
    src.write_text(text)
    out = tmp_path / "out.vfm"
    err = vecfmt.fail("convert", src, out)
    assert str(src) in err and problem in err, err
    assert not out.exists()


def test_unknown_layout_lists_candidates(vecfmt, tmp_path):
    src = tmp_path / "in.mtx"
    scipy.io.mmwrite(src, sample(np.float64))
    out = tmp_path / "out.mtx"
    err = vecfmt.fail("convert", src, out, "--layout", "csc")
    assert str(out) in err and "unknown layout" in err and "coordinate, pattern, symmetric" in err
    assert not out.exists()


def symmetric_sample(dtype, n=50, density=0.1):
    """A random symmetric matrix (both triangles stored), with a diagonal."""
    rng = np.random.default_rng(SEED)
    lower = sp.tril(sp.random(n, n, density=density, format="coo", rng=rng)).tocoo()
    if np.dtype(dtype).kind == "f":
        lower.data = (rng.standard_normal(lower.nnz) * 10.0 ** rng.integers(-300, 300, lower.nnz)).astype(dtype)
    else:
        lower.data = rng.integers(-(2**62), 2**62, lower.nnz).astype(dtype)
    return (lower + sp.tril(lower, k=-1).T).tocoo()


def entries(path):
    """The (i, j) of every entry line of a coordinate .mtx file."""
    lines = [l for l in path.read_text().splitlines() if l and not l.startswith("%")]
    return [tuple(int(w) for w in l.split()[:2]) for l in lines[1:]]


@pytest.mark.parametrize("dtype,field", [(np.float64, "real"), (np.int64, "integer")])
def test_symmetric_output_is_the_lower_triangle_and_reads_back_whole(vecfmt, tmp_path, dtype, field):
    full = symmetric_sample(dtype)
    src = tmp_path / "full.mtx"
    scipy.io.mmwrite(src, full, symmetry="general")
    _, out = through_vfm(vecfmt, tmp_path, src, "--layout", "symmetric")
    assert out.read_text().splitlines()[0] == f"%%MatrixMarket matrix coordinate {field} symmetric"
    written = entries(out)
    assert all(i >= j for i, j in written)
    assert len(written) == sp.tril(full).nnz
    back = scipy.io.mmread(out)
    assert back.dtype == full.dtype
    assert_same(full, back)


@pytest.mark.parametrize("field", ["real", "integer", "pattern"])
def test_scipy_symmetric_files_round_trip(vecfmt, tmp_path, field):
    full = symmetric_sample(np.int64 if field == "integer" else np.float64)
    src = tmp_path / "sym.mtx"
    scipy.io.mmwrite(src, full, field=field if field == "pattern" else None, symmetry="symmetric")
    assert src.read_text().splitlines()[0].endswith(f"{field} symmetric")
    layout = "symmetric-pattern" if field == "pattern" else "symmetric"
    _, out = through_vfm(vecfmt, tmp_path, src, "--layout", layout)
    assert out.read_text().splitlines()[0] == f"%%MatrixMarket matrix coordinate {field} symmetric"
    # The same lower triangle scipy wrote, in row order, and the same matrix read back.
    assert sorted(entries(out)) == sorted(entries(src))
    assert_same(scipy.io.mmread(src), scipy.io.mmread(out))


@pytest.mark.parametrize("change", ["value", "extra", "sign"])
def test_a_matrix_that_is_not_symmetric_is_refused(vecfmt, tmp_path, change):
    full = symmetric_sample(np.float64).tolil()
    i, j = next((i, j) for i, j in zip(*full.nonzero()) if i > j)
    if change == "value":
        full[i, j] = full[i, j] * 2
    elif change == "extra":
        # An entry above the diagonal without its mirror (lil drops an assigned zero).
        full[0, full.shape[1] - 1] = 1.0
        full[full.shape[0] - 1, 0] = 0.0
    else:
        full[i, j] = -full[i, j]
    src = tmp_path / "in.mtx"
    scipy.io.mmwrite(src, full.tocoo(), symmetry="general")
    vfm = tmp_path / "m.vfm"
    vecfmt.run("convert", src, vfm)
    out = tmp_path / "out.mtx"
    err = vecfmt.fail("convert", vfm, out, "--layout", "symmetric")
    assert str(out) in err and "not symmetric" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mtx", "m.vfm"]
    # In full, it is written.
    vecfmt.run("convert", vfm, out)
    assert_same(scipy.io.mmread(src), scipy.io.mmread(out))


def test_cooccur_counts_are_written_symmetric_by_default(vecfmt, tmp_path):
    rng = np.random.default_rng(SEED)
    words = [f"w{k}" for k in range(200)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n".join(" ".join(rng.choice(words[: rng.integers(5, 200)], rng.integers(3, 25))) for _ in range(1500))
        + "\n"
    )
    vfm = tmp_path / "co.vfm"
    vecfmt.run("cooccur", corpus, "-o", vfm)
    assert vecfmt.inspect(vfm)["metadata"]["vecfmt:cooccur"]["symmetric"] is True
    out = tmp_path / "co.mtx"
    p = vecfmt.run("convert", vfm, out)
    assert "metadata says the matrix is symmetric" in p.stderr
    assert out.read_text().splitlines()[0] == "%%MatrixMarket matrix coordinate real symmetric"
    full = tmp_path / "full.mtx"
    vecfmt.run("convert", vfm, full, "--layout", "coordinate")
    assert "general" in full.read_text().splitlines()[0]
    a, b = scipy.io.mmread(out), scipy.io.mmread(full)
    assert a.nnz == b.nnz and len(entries(out)) < len(entries(full))
    assert_same(a, b)
    # And the counts through .npz agree (float32 counts, exact in float64).
    npz = tmp_path / "co.npz"
    vecfmt.run("convert", vfm, npz)
    assert_same(sp.load_npz(npz).astype(np.float64), a)
