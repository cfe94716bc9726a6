"""`vecfmt.open` checked against scipy, anndata and pandas reading the same data.

The committed interop fixtures are brought to `.vfm` with the CLI (`vecfmt convert`), and
files the accumulator writes with `vecfmt build`; the real library reads the original, and
`vecfmt.Matrix` must give the same numbers, bit for bit, and the same labels.
"""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import vecfmt
from vecfmt._matrix import _write_csr

anndata = pytest.importorskip("anndata")

V1 = ["f32_raw_labels", "f64_zstd", "i32_lz4", "u64_raw_wide", "i64_zstd_sparse_rows", "u32_lz4_empty"]


@pytest.fixture(scope="session")
def converted(cli, testdata, tmp_path_factory):
    """`.vfm` files made with `vecfmt convert` from the interop fixtures, by fixture name."""
    out = tmp_path_factory.mktemp("converted")
    made = {}
    for rel in [
        "npy/csr_f32.npz",
        "npy/csr_array_i64idx.npz",
        "npy/coo_f64.npz",
        "npy/csc_i64.npz",
        "npy/csr_unsorted.npz",
        "hdf5/anndata_csr.h5ad",
        "hdf5/anndata_csc.h5ad",
        "parquet/coo_sorted.parquet",
        "parquet/coo_unsorted_labels.parquet",
    ]:
        src = testdata / "interop" / rel
        dst = out / (src.name + ".vfm")
        cli.run("convert", src, dst)
        made[src.name] = (src, dst)
    return made


def same_bits(a, b) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def assert_same_csr(ours, theirs):
    """Equal CSR matrices: shape, row offsets and column indices as numbers, values bit for
    bit in the same dtype."""
    theirs = sp.csr_array(theirs)
    theirs.sum_duplicates()
    theirs.sort_indices()
    assert isinstance(ours, sp.csr_array)
    assert ours.shape == theirs.shape
    assert np.array_equal(ours.indptr, theirs.indptr)
    assert np.array_equal(ours.indices, theirs.indices)
    assert same_bits(ours.data, theirs.data)


def assert_rows_match(m, reference):
    """Each `m.row(i)` equals row i of the scipy matrix `reference`, bit for bit."""
    ref = sp.csr_array(reference)
    ref.sum_duplicates()
    ref.sort_indices()
    for i in range(m.shape[0]):
        idx, val = m.row(i)
        lo, hi = ref.indptr[i], ref.indptr[i + 1]
        assert np.array_equal(idx, ref.indices[lo:hi])
        assert same_bits(val, ref.data[lo:hi])


# ---- agreement with scipy, anndata and pandas --------------------------------------------


@pytest.mark.parametrize(
    "name", ["csr_f32.npz", "csr_array_i64idx.npz", "coo_f64.npz", "csc_i64.npz", "csr_unsorted.npz"]
)
def test_matches_scipy_npz(converted, name):
    src, vfm = converted[name]
    ref = sp.load_npz(src)
    with vecfmt.open(vfm) as m:
        assert m.shape == ref.shape
        assert m.dtype == ref.dtype
        canon = sp.csr_array(ref)
        canon.sum_duplicates()
        assert m.nnz == canon.nnz
        assert_same_csr(m.to_scipy(), ref)
        assert_rows_match(m, ref)


@pytest.mark.parametrize("name", ["anndata_csr.h5ad", "anndata_csc.h5ad"])
def test_matches_anndata(converted, name):
    src, vfm = converted[name]
    ref = anndata.read_h5ad(src)
    with vecfmt.open(vfm) as m:
        a = m.to_anndata()
        assert list(a.obs_names) == list(ref.obs_names)
        assert list(a.var_names) == list(ref.var_names)
        assert_same_csr(a.X, ref.X)
        assert_same_csr(m.to_scipy(), ref.X)
        # Labels both ways, against anndata's names.
        assert m.row_labels.tolist() == list(ref.obs_names)
        assert m.col_labels.tolist() == list(ref.var_names)
        dense = ref.X.toarray()
        for i, name in enumerate(ref.obs_names):
            assert m.row_labels[i] == name
            assert m.row_labels.index(name) == i
            assert m.row_labels.get_loc(name) == i
            idx, val = m.row_by_label(name)
            assert same_bits(val, dense[i, idx])
            assert np.count_nonzero(dense[i]) == len(idx)
        for j, name in enumerate(ref.var_names):
            assert m.col_labels.index(name) == j
        # A block by labels, in the order asked.
        names = list(ref.obs_names)[::-2]
        assert_same_csr(m[names], ref[names].X)


def test_matches_pandas_coo_with_labels(converted):
    src, vfm = converted["coo_unsorted_labels.parquet"]
    # Repeated (row, col) pairs are summed, as scipy's COO -> CSR does.
    ref = pd.read_parquet(src).astype({"row": str, "col": str})
    ref = ref.groupby(["row", "col"], as_index=False, sort=False)["value"].sum()
    with vecfmt.open(vfm) as m:
        df = m.to_pandas()
        assert isinstance(df["row_label"].dtype, pd.CategoricalDtype)
        assert isinstance(df["col_label"].dtype, pd.CategoricalDtype)
        assert len(df) == len(ref) == m.nnz
        got = {(r, c): v for r, c, v in zip(df["row_label"].astype(str), df["col_label"].astype(str), df["value"])}
        want = {(r, c): v for r, c, v in zip(ref["row"].astype(str), ref["col"].astype(str), ref["value"])}
        assert got == want
        assert df["value"].dtype == ref["value"].dtype
        # Label -> id -> label, on both axes.
        for r, c, v in zip(ref["row"].astype(str), ref["col"].astype(str), ref["value"]):
            i, j = m.row_labels.get_loc(r), m.col_labels.get_loc(c)
            assert m.row_labels[i] == r and m.col_labels[j] == c
            idx, val = m.row_by_label(r)
            assert val[list(idx).index(j)] == v
        # Categories are the labels in id order; codes are the ids.
        assert list(df["row_label"].cat.categories) == m.row_labels.tolist()
        assert np.array_equal(df["row_label"].cat.codes.to_numpy(), df["row"].to_numpy())


def test_to_pandas_equals_pandas_reading_the_converted_parquet(cli, converted, tmp_path):
    """The frame equals what pandas reads from `vecfmt convert` to Parquet, column for column."""
    for name in ["coo_sorted.parquet", "coo_unsorted_labels.parquet", "anndata_csr.h5ad"]:
        _, vfm = converted[name]
        out = tmp_path / (name + ".out.parquet")
        cli.run("convert", vfm, out)
        ref = pd.read_parquet(out)
        with vecfmt.open(vfm) as m:
            df = m.to_pandas()
        assert list(df.columns) == list(ref.columns)
        for col in ["row", "col"]:
            assert np.array_equal(df[col].to_numpy(), ref[col].to_numpy())
        assert same_bits(df["value"].to_numpy(), ref["value"].to_numpy())
        for col in ["row_label", "col_label"]:
            if col in ref:
                assert df[col].astype(str).tolist() == ref[col].astype(str).tolist()


def test_matches_pandas_sorted_coo(converted):
    src, vfm = converted["coo_sorted.parquet"]
    ref = pd.read_parquet(src).sort_values(["row", "col"], kind="stable")
    with vecfmt.open(vfm) as m:
        df = m.to_pandas()
        assert "row_label" not in df and "col_label" not in df
        assert np.array_equal(df["row"].to_numpy(), ref["row"].to_numpy())
        assert np.array_equal(df["col"].to_numpy(), ref["col"].to_numpy())
        assert same_bits(df["value"].to_numpy(), ref["value"].to_numpy())


@pytest.mark.parametrize("name", [n for n in V1 if n != "i64_zstd_sparse_rows"])
def test_v1_fixtures_match_the_cli_npz(cli, testdata, tmp_path, name):
    """Every committed v1 file (each dtype and codec): rows and blocks equal what scipy reads
    from the CLI's .npz of the same file."""
    src = testdata / "v1" / f"{name}.vfm"
    out = tmp_path / f"{name}.npz"
    cli.run("convert", src, out)
    ref = sp.load_npz(out)
    with vecfmt.open(src) as m:
        info = cli.inspect(src)
        assert list(m.shape) == info["shape"] and m.nnz == info["nnz"]
        assert m.dtype == ref.dtype
        assert m.metadata == (info["metadata"] or {})
        assert_same_csr(m.to_scipy(), ref)
        assert_rows_match(m, ref)
        blocks = [(first, b) for first, b in m.iter_blocks(rows=7)]
        assert [f for f, _ in blocks] == list(range(0, m.shape[0], 7))
        assert_same_csr(sp.vstack([b for _, b in blocks], format="csr"), ref)


def test_rows_spread_over_2_to_the_40(cli, testdata, tmp_path):
    """2^40 rows: rows by id and by fancy index, checked against pandas reading the CLI's
    Parquet (COO keeps only the stored entries); to_scipy is refused, not attempted."""
    src = testdata / "v1" / "i64_zstd_sparse_rows.vfm"
    out = tmp_path / "sparse_rows.parquet"
    cli.run("convert", src, out)
    ref = pd.read_parquet(out)
    with vecfmt.open(src) as m:
        assert m.shape[0] == 2**40
        rows = sorted(set(ref["row"].tolist()))
        for r in rows:
            sel = ref[ref["row"] == r]
            idx, val = m.row(r)
            assert np.array_equal(idx, sel["col"].to_numpy())
            assert same_bits(val, sel["value"].to_numpy())
        block = m[rows]
        assert block.shape == (len(rows), m.shape[1])
        assert same_bits(block.data, ref["value"].to_numpy())
        assert m[-1].shape == (1, m.shape[1])
        with pytest.raises(vecfmt.MemoryBudgetError, match="sparse_rows.vfm"):
            m.to_scipy()
        with pytest.raises(MemoryError):
            m.to_pandas()


def test_files_the_accumulator_writes(cli, tmp_path):
    """`vecfmt build` (the accumulator) sums triplets into a file; the reader gives the sums."""
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 50, 3000)
    cols = rng.integers(0, 40, 3000)
    vals = rng.integers(1, 5, 3000)
    tsv = tmp_path / "updates.tsv"
    tsv.write_text("".join(f"w{r}\tc{c}\t{v}\n" for r, c, v in zip(rows, cols, vals)))
    vfm = tmp_path / "built.vfm"
    cli.run("build", tsv, "-o", vfm, "--row-labels", "--col-labels", "--dtype", "i64", "--memory", "64M")
    want: dict[tuple[str, str], int] = {}
    for r, c, v in zip(rows, cols, vals):
        want[(f"w{r}", f"c{c}")] = want.get((f"w{r}", f"c{c}"), 0) + int(v)
    with vecfmt.open(vfm) as m:
        assert m.dtype == np.int64 and m.nnz == len(want)
        got = {}
        for r_label in m.row_labels:
            idx, val = m.row_by_label(r_label)
            for j, v in zip(idx, val):
                got[(r_label, m.col_labels[int(j)])] = int(v)
        assert got == want
        df = m.to_pandas()
        assert dict(zip(zip(df["row_label"].astype(str), df["col_label"].astype(str)), df["value"])) == want


# ---- rows ------------------------------------------------------------------------------


def small(tmp_path, codec="raw", labels=True, dtype=np.float32, chunk_bytes=None, name="small.vfm"):
    """A 6 x 8 matrix with an empty row, written by the package's own helper."""
    dense = np.zeros((6, 8), dtype=dtype)
    dense[0, [1, 5]] = [3, 1]
    dense[2, [0, 2, 7]] = [2, 9, 4]
    dense[3, 6] = 5
    dense[5, [3, 4]] = [7, 7]
    kw = {}
    if labels:
        kw = dict(
            row_labels=["cat", "dog", "fish", "bird", "ant", "eel"],
            col_labels=[f"f{j}" for j in range(8)],
        )
    path = _write_csr(tmp_path / name, sp.csr_array(dense), codec=codec, chunk_bytes=chunk_bytes, **kw)
    return path, dense


@pytest.mark.parametrize("codec", ["raw", "zstd", "lz4"])
def test_row_views(tmp_path, codec):
    path, dense = small(tmp_path, codec, chunk_bytes=64)
    with vecfmt.open(path) as m:
        for i in range(6):
            idx, val = m.row(i)
            assert idx.dtype == np.uint32 and val.dtype == np.float32
            assert np.array_equal(idx, np.flatnonzero(dense[i]))
            assert same_bits(val, dense[i][dense[i] != 0])
            assert not idx.flags.writeable and not val.flags.writeable
        idx, val = m.row(-1)
        assert idx.tolist() == [3, 4]
        idx2, val2 = m.row_by_label("eel")
        assert idx2.tolist() == [3, 4] and val2.tolist() == [7, 7]


def test_raw_rows_are_zero_copy_views_of_the_map(tmp_path):
    path, _ = small(tmp_path, "raw")
    with vecfmt.open(path) as m:
        a, _ = m.row(2)
        b, _ = m.row(2)
        # Two reads of a row are the same memory: the map, not copies.
        assert a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
        assert type(a.base).__name__ == "_MapOwner"
        assert a.base is b.base


def test_compressed_rows_view_the_decoded_chunk(tmp_path):
    path, _ = small(tmp_path, "zstd")
    with vecfmt.open(path) as m:
        a, v = m.row(2)
        assert type(a.base).__name__ == "_ChunkOwner" and v.base is a.base


@pytest.mark.parametrize("codec", ["raw", "zstd"])
def test_views_are_read_only(tmp_path, codec):
    path, _ = small(tmp_path, codec)
    with vecfmt.open(path) as m:
        idx, val = m.row(0)
        with pytest.raises(ValueError, match="read-only"):
            val[0] = 1
        with pytest.raises(ValueError, match="read-only"):
            idx[0] = 1
        with pytest.raises(ValueError):
            val.setflags(write=True)
        with pytest.raises(ValueError):
            val.flags.writeable = True
        assert m.row(0)[1].tolist() == [3, 1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint32, np.uint64])
def test_every_dtype(tmp_path, dtype):
    path, dense = small(tmp_path, dtype=dtype)
    with vecfmt.open(path) as m:
        assert m.dtype == np.dtype(dtype)
        assert m.row(2)[1].dtype == np.dtype(dtype)
        assert m.to_scipy().dtype == np.dtype(dtype)
        assert np.array_equal(m.to_scipy().toarray(), dense)
        top = m.top(2, 2)
        assert [(c, v) for c, _, v in top] == [(2, 9), (7, 4)]


def test_properties(tmp_path):
    path = _write_csr(
        tmp_path / "p.vfm",
        sp.csr_array(np.eye(3, 5, dtype=np.float64)),
        metadata={"corpus": "c1", "window": 10, "nested": {"a": [1, 2]}},
    )
    with vecfmt.open(pathlib.Path(path), cache=1 << 20) as m:
        assert m.shape == (3, 5) and m.nnz == 3 and m.dtype == np.float64
        assert m.metadata == {"corpus": "c1", "window": 10, "nested": {"a": [1, 2]}}
        assert m.path == path
        assert m.row_labels is None and m.col_labels is None
        assert "3 x 5" in repr(m)
    assert m.closed and "closed" in repr(m)


def test_cache_sizes(tmp_path):
    path, _ = small(tmp_path, "zstd")
    for cache in [0, 1 << 20, "1M", "256M", "1.5G", "64KiB"]:
        with vecfmt.open(path, cache=cache) as m:
            assert m.row(2)[0].tolist() == [0, 2, 7]
    with pytest.raises(ValueError):
        vecfmt.open(path, cache="lots")
    with pytest.raises(ValueError):
        vecfmt.open(path, cache=-1)
    with pytest.raises(TypeError):
        vecfmt.open(path, cache=object())


# ---- labels ----------------------------------------------------------------------------


def test_labels_are_a_sequence(tmp_path):
    path, _ = small(tmp_path)
    names = ["cat", "dog", "fish", "bird", "ant", "eel"]
    with vecfmt.open(path) as m:
        labels = m.row_labels
        assert len(labels) == 6
        assert list(labels) == names and labels.tolist() == names
        assert [labels[i] for i in range(-6, 6)] == names + names
        assert labels[1:4] == names[1:4]
        assert labels[::-2] == names[::-2]
        assert labels[4:1:-1] == names[4:1:-1]
        assert labels[10:] == []
        assert "fish" in labels and "whale" not in labels and 3 not in labels
        assert labels.index("bird") == 3 and labels.count("bird") == 1 and labels.count("x") == 0
        with pytest.raises(ValueError):
            labels.index("whale")
        with pytest.raises(ValueError):
            labels.index("cat", 1)
        with pytest.raises(KeyError):
            labels.get_loc("whale")
        with pytest.raises(vecfmt.LabelError, match="small.vfm"):
            labels.get_loc("whale")
        with pytest.raises(IndexError):
            labels[6]
        with pytest.raises(TypeError):
            labels["cat"]
        assert list(reversed(labels)) == names[::-1]
        assert m.col_labels[7] == "f7" and len(m.col_labels) == 8
        assert "Labels" in repr(labels)


def test_many_labels_iterate_in_pieces(tmp_path):
    n = 70_000
    names = [f"word{i}" for i in range(n)]
    path = _write_csr(tmp_path / "wide.vfm", sp.csr_array((n, 3), dtype=np.float32), row_labels=names)
    with vecfmt.open(path) as m:
        assert list(m.row_labels) == names
        assert m.row_labels.get_loc("word69999") == 69999
        assert m[["word5", "word69999"]].shape == (2, 3)


# ---- indexing --------------------------------------------------------------------------


def test_every_indexing_form(tmp_path):
    path, dense = small(tmp_path, chunk_bytes=64)
    ref = sp.csr_array(dense)
    with vecfmt.open(path) as m:
        cases = {
            "int": (m[2], dense[[2]]),
            "negative": (m[-1], dense[[5]]),
            "numpy int": (m[np.int64(3)], dense[[3]]),
            "slice": (m[1:4], dense[1:4]),
            "open slice": (m[:], dense),
            "negative slice": (m[-3:], dense[-3:]),
            "stepped": (m[::2], dense[::2]),
            "reversed": (m[::-1], dense[::-1]),
            "empty slice": (m[4:2], dense[4:2]),
            "list": (m[[5, 0, 2]], dense[[5, 0, 2]]),
            "repeats": (m[[2, 2, -6]], dense[[2, 2, 0]]),
            "int32 array": (m[np.array([1, 3], dtype=np.int32)], dense[[1, 3]]),
            "uint64 array": (m[np.array([4, 0], dtype=np.uint64)], dense[[4, 0]]),
            "mask": (m[np.array([True, False, True, False, False, True])], dense[[0, 2, 5]]),
            "empty list": (m[[]], dense[[]]),
            "empty object array": (m[np.array([], dtype=object)], dense[[]]),
            "label": (m["fish"], dense[[2]]),
            "labels": (m[["eel", "cat"]], dense[[5, 0]]),
            "label array": (m[np.array(["dog", "bird"])], dense[[1, 3]]),
        }
        for what, (got, want) in cases.items():
            assert isinstance(got, sp.csr_array), what
            assert got.shape == want.shape, what
            assert same_bits(got.toarray(), want), what
            got.check_format(full_check=True)
        assert same_bits(m[1:4].data, ref[1:4].data)


def test_bad_indexes(tmp_path):
    path, _ = small(tmp_path)
    with vecfmt.open(path) as m:
        for key in [6, -7, [0, 6], np.array([-7]), 2**70]:
            with pytest.raises(IndexError):
                m[key]
        with pytest.raises(vecfmt.RowIndexError, match=r"small\.vfm.*row 6 is out of range"):
            m[6]
        with pytest.raises(vecfmt.RowIndexError):
            m.row(6)
        with pytest.raises(IndexError):
            m.row(-7)
        for key in [1.5, object(), [1.5], np.array([0.0]), None, True, (1, 2), [[0, 1]], b"cat"]:
            with pytest.raises(TypeError):
                m[key]
        with pytest.raises(TypeError):
            m.row(1.5)
        with pytest.raises(TypeError):
            m.row("cat")
        with pytest.raises(vecfmt.LabelError, match="whale"):
            m["whale"]
        with pytest.raises(KeyError):
            m[["cat", "whale"]]
        with pytest.raises(vecfmt.LabelError):
            m.row_by_label("whale")
        with pytest.raises(IndexError):
            m[np.array([True, False])]
        with pytest.raises(TypeError, match="iter_blocks"):
            iter(m)
        with pytest.raises(TypeError):
            "cat" in m


def test_labels_on_a_file_without_labels(tmp_path):
    path, _ = small(tmp_path, labels=False)
    with vecfmt.open(path) as m:
        assert m.row_labels is None
        with pytest.raises(vecfmt.LabelError, match=r"small\.vfm: the matrix has no row labels"):
            m["cat"]
        with pytest.raises(vecfmt.LabelError):
            m.row_by_label("cat")
        with pytest.raises(vecfmt.LabelError):
            m.top("cat", 3)
        assert m.top(0, 5) == [(1, None, 3.0), (5, None, 1.0)]


def test_iter_blocks_covers_every_row_once(tmp_path):
    rng = np.random.default_rng(3)
    dense = (rng.random((103, 50)) < 0.1) * rng.integers(1, 9, (103, 50))
    ref = sp.csr_array(dense.astype(np.float64))
    path = _write_csr(tmp_path / "b.vfm", ref, codec="zstd", chunk_bytes=512)
    with vecfmt.open(path) as m:
        for rows in [1, 10, 103, 1000, None]:
            blocks = list(m.iter_blocks(rows=rows))
            firsts = [f for f, _ in blocks]
            sizes = [b.shape[0] for _, b in blocks]
            assert firsts == list(np.cumsum([0] + sizes[:-1]))
            assert sum(sizes) == 103
            if rows is not None:
                assert max(sizes) <= rows
            assert_same_csr(sp.vstack([b for _, b in blocks], format="csr"), ref)
        with pytest.raises(ValueError):
            list(m.iter_blocks(rows=0))


def test_top(tmp_path):
    vals = np.array([[5, 0, 9, 9, -1, np.nan, 2, 0]], dtype=np.float64)
    path = _write_csr(
        tmp_path / "t.vfm", sp.csr_array(vals), row_labels=["r"], col_labels=[f"c{j}" for j in range(8)]
    )
    with vecfmt.open(path) as m:
        assert m.top(0, 3) == [(2, "c2", 9.0), (3, "c3", 9.0), (0, "c0", 5.0)]
        assert m.top("r", 100)[-1][0] == 5  # NaN last
        assert [c for c, _, _ in m.top("r", 100)] == [2, 3, 0, 6, 4, 5]
        assert m.top(0, 0) == []
        with pytest.raises(ValueError):
            m.top(0, -1)


def test_to_scipy_limit_and_force(tmp_path):
    path, dense = small(tmp_path)
    with vecfmt.open(path) as m:
        with pytest.raises(vecfmt.MemoryBudgetError, match=r"small\.vfm.*over the limit of 10 bytes"):
            m.to_scipy(limit=10)
        with pytest.raises(MemoryError):
            m.to_anndata(limit="10")
        with pytest.raises(MemoryError):
            m.to_pandas(limit=10)
        assert np.array_equal(m.to_scipy(limit=10, force=True).toarray(), dense)
        assert np.array_equal(m.to_scipy(limit="1K").toarray(), dense)


def test_to_anndata_without_labels(tmp_path):
    path, dense = small(tmp_path, labels=False)
    with vecfmt.open(path) as m:
        a = m.to_anndata()
    assert list(a.obs_names) == [str(i) for i in range(6)]
    assert np.array_equal(a.X.toarray(), dense)


def test_to_pandas_categoricals(tmp_path):
    path, dense = small(tmp_path)
    with vecfmt.open(path) as m:
        df = m.to_pandas()
    r, c = np.nonzero(dense)
    assert df["row"].tolist() == r.tolist() and df["col"].tolist() == c.tolist()
    assert df["value"].dtype == np.float32 and same_bits(df["value"].to_numpy(), dense[r, c])
    assert df["row_label"].dtype == "category" and df["col_label"].dtype == "category"
    assert df["row_label"].tolist() == [["cat", "dog", "fish", "bird", "ant", "eel"][i] for i in r]
    assert df["col_label"].tolist() == [f"f{j}" for j in c]


# ---- bad files -------------------------------------------------------------------------


def test_missing_file(tmp_path):
    missing = tmp_path / "nowhere" / "missing.vfm"
    with pytest.raises(FileNotFoundError) as e:
        vecfmt.open(missing)
    assert str(missing) in str(e.value)
    assert e.value.filename == str(missing)
    with pytest.raises(FileNotFoundError):
        vecfmt.verify(missing)


def test_not_a_vfm_file(tmp_path):
    p = tmp_path / "notes.vfm"
    p.write_text("hello, this is not a matrix\n" * 200)
    with pytest.raises(vecfmt.DamagedFileError, match="notes.vfm"):
        vecfmt.open(p)


def flip(path: pathlib.Path, offset: int, n: int = 8):
    with path.open("r+b") as f:
        f.seek(offset)
        b = bytearray(f.read(n))
        f.seek(offset)
        f.write(bytes(x ^ 0xFF for x in b))


def test_damaged_chunk(tmp_path, testdata):
    """A flipped byte in a chunk: the file opens, reading that chunk raises
    DamagedFileError naming the file, verify reports it, other chunks still read."""
    for codec in ["raw", "zstd"]:
        rng = np.random.default_rng(1)
        ref = sp.csr_array(((rng.random((200, 300)) < 0.05) * rng.random((200, 300))).astype(np.float32))
        path = pathlib.Path(_write_csr(tmp_path / f"d_{codec}.vfm", ref, codec=codec, chunk_bytes=2048))
        with vecfmt.open(path) as m:
            first_block = m[0:5].toarray()
        size = path.stat().st_size
        # The first chunk starts right after the superblock (two 4 KiB meta pages).
        flip(path, 8192 + 64)
        assert path.stat().st_size == size
        with vecfmt.open(path) as m:
            with pytest.raises(vecfmt.DamagedFileError, match=f"d_{codec}.vfm"):
                m[0:5]
            with pytest.raises(vecfmt.DamagedFileError):
                m.row(0)
            report = m.verify()
            assert not report.is_clean and len(report.problems) >= 1
            assert f"d_{codec}.vfm" in report.problems[0]
            assert np.array_equal(m[199].toarray(), ref[[199]].toarray())
        report = vecfmt.verify(path)
        assert not report and "problem" in repr(report)
        assert first_block.shape == (5, 300)
    clean = tmp_path / "clean.vfm"
    shutil.copy(testdata / "v1" / "i32_lz4.vfm", clean)
    assert vecfmt.verify(clean).is_clean


def test_damaged_superblock(tmp_path, testdata):
    p = tmp_path / "both_pages.vfm"
    shutil.copy(testdata / "v1" / "f32_raw_labels.vfm", p)
    flip(p, 16, 32)
    flip(p, 4096 + 16, 32)
    with pytest.raises(vecfmt.DamagedFileError, match="both_pages.vfm"):
        vecfmt.open(p)
    t = tmp_path / "short.vfm"
    t.write_bytes((testdata / "v1" / "f32_raw_labels.vfm").read_bytes()[:5000])
    with pytest.raises(vecfmt.DamagedFileError, match="short.vfm"):
        vecfmt.open(t)


def test_closed_matrix_raises(tmp_path):
    path, _ = small(tmp_path)
    m = vecfmt.open(path)
    labels = m.row_labels
    m.close()
    m.close()
    for call in [lambda: m.row(0), lambda: m[0], lambda: m.shape, lambda: len(labels), lambda: m.to_scipy()]:
        with pytest.raises(ValueError, match="closed"):
            call()
