"""HDF5 through `vecfmt convert`, checked by h5py, PyTables, anndata and pandas.

Each round trip: the library writes a file, vecfmt brings it to .vfm and back out to HDF5,
the library reads the result, and values (bit for bit), shape and labels are equal.
"""

import resource
import subprocess
import sys
import textwrap

import anndata as ad
import h5py
import hdf5plugin
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import tables

SEED = 20241122


def sample_csr(dtype, shape=(53, 41), density=0.15, seed=SEED):
    """A CSR matrix of `dtype` with an empty row and the awkward values of the dtype."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    m = sp.random(*shape, density=density, format="csr", random_state=seed, dtype=np.float64)
    if dt.kind == "f":
        m.data = (rng.standard_normal(m.nnz) * 1e3).astype(dt)
        specials = [-0.0, np.finfo(dt).max, np.finfo(dt).tiny, np.finfo(dt).smallest_subnormal, np.nan]
    else:
        info = np.iinfo(dt)
        m.data = rng.integers(info.min, info.max, m.nnz, dtype=dt, endpoint=True)
        m.data[m.data == 0] = 1
        specials = [info.min, info.max]
    for k, v in enumerate(specials):
        m.data[(k * 7 + 3) % m.nnz] = v
    m = m.astype(dt)
    m = sp.csr_matrix(m)
    lil = m.tolil()
    lil[2, :] = 0
    m = sp.csr_matrix(lil)
    m.eliminate_zeros()  # no stored +0.0 (a stored -0.0 stays: its bits are not zero)
    m.sort_indices()
    return m


def labels(n, prefix):
    return [f"{prefix}{i}-ü" for i in range(n)]


def same_csr(a, b):
    """Same shape, dtype, structure and value bits."""
    a, b = sp.csr_matrix(a), sp.csr_matrix(b)
    a.sort_indices()
    b.sort_indices()
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and a.data.tobytes() == b.data.tobytes()
    )


def same_bits(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def to_vfm(vecfmt, tmp_path, src, *extra):
    vfm = tmp_path / (src.name + ".vfm")
    vecfmt.run("convert", src, vfm, *extra)
    return vfm


def read_group(f, path):
    g = f[path]
    cls = sp.csc_matrix if g.attrs["encoding-type"] == "csc_matrix" else sp.csr_matrix
    return cls((g["data"][:], g["indices"][:], g["indptr"][:]), shape=tuple(g.attrs["shape"]))


def leftovers(tmp_path, keep):
    return sorted(p.name for p in tmp_path.iterdir() if p.name not in keep)


# ---- AnnData ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("x_format", ["csr", "csc"])
def test_h5ad_round_trip(vecfmt, tmp_path, dtype, x_format):
    m = sample_csr(dtype)
    obs, var = labels(m.shape[0], "cell"), labels(m.shape[1], "gene")
    x = m if x_format == "csr" else sp.csc_matrix(m)
    a = ad.AnnData(X=x, obs=pd.DataFrame(index=obs), var=pd.DataFrame(index=var))
    src = tmp_path / "in.h5ad"
    a.write_h5ad(src, compression="gzip")
    vfm = to_vfm(vecfmt, tmp_path, src)
    info = vecfmt.inspect(vfm)
    assert info["shape"] == list(m.shape) and info["nnz"] == m.nnz
    assert info["has_row_labels"] and info["has_col_labels"]

    out = tmp_path / "out.h5ad"
    vecfmt.run("convert", vfm, out, "--layout", x_format)
    b = ad.read_h5ad(out)
    assert isinstance(b.X, sp.csr_matrix if x_format == "csr" else sp.csc_matrix)
    assert same_csr(b.X, m)
    assert list(b.obs_names) == obs and list(b.var_names) == var

    backed = ad.read_h5ad(out, backed="r")
    assert backed.shape == m.shape
    assert same_csr(backed.X[:], m)
    assert same_csr(backed.X[5:9], m[5:9])
    backed.file.close()


def test_h5ad_without_labels_gets_default_names(vecfmt, tmp_path):
    m = sample_csr("float32")
    src = tmp_path / "in.h5"
    with h5py.File(src, "w") as f:
        g = f.create_group("m")
        for k in ("data", "indices", "indptr"):
            g.create_dataset(k, data=getattr(m, k))
        g.attrs["shape"] = np.array(m.shape)
    vfm = to_vfm(vecfmt, tmp_path, src)
    out = tmp_path / "out.h5ad"
    vecfmt.run("convert", vfm, out)
    b = ad.read_h5ad(out)
    assert list(b.obs_names) == [str(i) for i in range(m.shape[0])]
    assert list(b.var_names) == [str(j) for j in range(m.shape[1])]
    assert same_csr(b.X, m)


def test_h5ad_many_chunks_filtered_by_vecfmt(vecfmt, tmp_path):
    """vecfmt filters X's chunks itself (shuffle + deflate, on several threads) and writes
    them with direct chunk writes, and writes obs/var names as fixed-length UTF-8 strings:
    h5py sees the usual filters, anndata reads the file in memory and backed, PyTables reads
    the arrays through HDF5's own deflate. Sizes span many chunks (131,072 entries each, more
    than are filtered at once, so chunks are written as they come back from the threads) and
    a partial last one."""
    rng = np.random.default_rng(SEED)
    n_rows, n_cols, per_row = 3000, 200_000, 450
    indices = np.sort(rng.choice(n_cols, size=(n_rows, per_row), replace=True), axis=1)
    indices = np.unique(indices + np.arange(n_rows)[:, None] * n_cols)  # unique per row
    rows, cols = np.divmod(indices, n_cols)
    data = rng.integers(1, 1000, len(rows)).astype(np.float32)
    m = sp.csr_matrix((data, (rows, cols)), shape=(n_rows, n_cols))
    assert m.nnz > 10 * 131_072 and m.nnz % 131_072 != 0
    obs = [("é" * (i % 5)) + f"c{i}" for i in range(m.shape[0])]
    src = tmp_path / "in.npz"
    sp.save_npz(src, m)
    vfm = to_vfm(vecfmt, tmp_path, src)
    labelled = tmp_path / "labelled.h5ad"
    # obs names through an .h5ad source, var names left as the default 0..n-1.
    ad.AnnData(X=m, obs=pd.DataFrame(index=obs)).write_h5ad(labelled)
    vfm2 = to_vfm(vecfmt, tmp_path, labelled)
    for i, (inp, want_obs) in enumerate([(vfm, [str(k) for k in range(m.shape[0])]), (vfm2, obs)]):
        out = tmp_path / f"out{i}.h5ad"
        vecfmt.run("convert", inp, out)
        with h5py.File(out) as f:
            for k in ("data", "indices", "indptr"):
                d = f["X"][k]
                assert d.compression == "gzip" and d.compression_opts == 1 and d.shuffle, k
            assert np.array_equal(f["X/data"][:], m.data)
            idx = f["var/_index"]
            assert h5py.check_string_dtype(idx.dtype).encoding == "utf-8" and idx.compression == "gzip"
        with tables.open_file(str(out)) as t:
            assert np.array_equal(t.get_node("/X/indices").read(), m.indices)
            assert np.array_equal(t.get_node("/X/data").read(), m.data)
        b = ad.read_h5ad(out)
        assert same_csr(b.X, m)
        assert list(b.obs_names) == want_obs
        assert list(b.var_names) == [str(j) for j in range(m.shape[1])]
        backed = ad.read_h5ad(out, backed="r")
        assert list(backed.obs_names[:3]) == want_obs[:3]
        assert same_csr(backed.X[1000:1200], m[1000:1200])
        backed.file.close()


@pytest.mark.parametrize("level,want", [(None, 1), ("0", None), ("6", 6)])
def test_gzip_level_of_hdf5_outputs(vecfmt, tmp_path, level, want):
    """`--gzip-level N` is the deflate level of every dataset of an HDF5 or .h5ad output,
    after the shuffle filter (1 by default); 0 writes them without filters. The values are
    the source's at every level."""
    m = sample_csr("float64", shape=(300, 200))
    src = tmp_path / "in.npz"
    sp.save_npz(src, m)
    flag = [] if level is None else ["--gzip-level", level]
    csr, h5ad, dense = tmp_path / "csr.h5", tmp_path / "out.h5ad", tmp_path / "dense.h5"
    vecfmt.run("convert", src, csr, *flag)
    vecfmt.run("convert", src, h5ad, *flag)
    vecfmt.run("convert", src, dense, "--layout", "dense", *flag)
    with h5py.File(csr) as f, h5py.File(h5ad) as g, h5py.File(dense) as d:
        shuffled = [f["matrix"][k] for k in ("data", "indices", "indptr")]
        shuffled += [g["X"][k] for k in ("data", "indices", "indptr")] + [d["matrix"]]
        for ds in shuffled:
            assert (ds.compression, ds.compression_opts, ds.shuffle) == (
                ("gzip", want, True) if want else (None, None, False)
            ), ds.file.filename + ds.name
        for ds in (g["obs/_index"], g["var/_index"]):  # names: deflate without shuffle
            assert (ds.compression, ds.compression_opts) == (("gzip", want) if want else (None, None)), ds.name
        assert same_csr(read_group(f, "matrix"), m)
        assert same_csr(read_group(g, "X"), m)
        assert same_bits(d["matrix"][:], m.toarray())
    assert same_csr(ad.read_h5ad(h5ad).X, m)


def test_gzip_level_above_9_is_refused(vecfmt, tmp_path):
    src = tmp_path / "in.npz"
    sp.save_npz(src, sample_csr("float32"))
    for out in ("out.h5", "out.h5ad"):
        err = vecfmt.fail("convert", src, tmp_path / out, "--gzip-level", "10")
        assert "gzip level 10" in err and "0-9" in err and out in err, err
    # Not even a level for clap: a usage error.
    vecfmt.fail("convert", src, tmp_path / "out.h5", "--gzip-level", "256", code=2)
    assert leftovers(tmp_path, {"in.npz"}) == []


# ---- CSR/CSC groups: h5py, h5sparse, 10x -------------------------------------------------


@pytest.mark.parametrize("index_dtype", ["int64", "uint32", "int32"])
@pytest.mark.parametrize("dtype", ["float64", "uint64", "int32"])
def test_h5py_csr_group_round_trip(vecfmt, tmp_path, index_dtype, dtype):
    m = sample_csr(dtype)
    src = tmp_path / "in.h5"
    with h5py.File(src, "w") as f:
        g = f.create_group("X")
        g.create_dataset("data", data=m.data, compression="gzip")
        g.create_dataset("indices", data=m.indices.astype(index_dtype), compression="gzip")
        g.create_dataset("indptr", data=m.indptr.astype(index_dtype), compression="gzip")
        g.attrs["shape"] = np.array(m.shape)
    vfm = to_vfm(vecfmt, tmp_path, src)
    out = tmp_path / "out.h5"
    vecfmt.run("convert", vfm, out)
    with h5py.File(out) as f:
        g = f["matrix"]
        assert g.attrs["encoding-type"] == "csr_matrix" and g.attrs["encoding-version"] == "0.1.0"
        assert tuple(g.attrs["shape"]) == m.shape
        # h5sparse's attributes (h5sparse itself is not installed).
        assert g.attrs["h5sparse_format"] == "csr" and tuple(g.attrs["h5sparse_shape"]) == m.shape
        for k in ("data", "indices", "indptr"):
            d = g[k]
            assert d.chunks is not None and d.maxshape == (None,) and d.compression == "gzip" and d.shuffle, k
        assert same_csr(read_group(f, "matrix"), m)
        # anndata reads the group as an element too.
        assert same_csr(ad.io.read_elem(g), m)


def test_h5py_csc_group_out(vecfmt, tmp_path):
    m = sample_csr("float32")
    src = tmp_path / "in.h5ad"
    ad.AnnData(X=m).write_h5ad(src)
    vfm = to_vfm(vecfmt, tmp_path, src)
    out = tmp_path / "out.h5"
    vecfmt.run("convert", vfm, out, "--layout", "csc", "--dataset", "/counts/raw", "--memory", "64K")
    with h5py.File(out) as f:
        assert f["counts/raw"].attrs["h5sparse_format"] == "csc"
        c = read_group(f, "counts/raw")
    assert isinstance(c, sp.csc_matrix)
    assert same_csr(c, m)


def test_h5sparse_attrs_are_read(vecfmt, tmp_path):
    m = sample_csr("float64")
    src = tmp_path / "h5sparse.h5"
    with h5py.File(src, "w") as f:
        g = f.create_group("sparse/matrix")
        c = sp.csc_matrix(m)
        for k in ("data", "indices", "indptr"):
            g.create_dataset(k, data=getattr(c, k))
        g.attrs["h5sparse_format"] = "csc"
        g.attrs["h5sparse_shape"] = m.shape
    vfm = to_vfm(vecfmt, tmp_path, src)
    out = tmp_path / "out.h5"
    vecfmt.run("convert", vfm, out)
    with h5py.File(out) as f:
        assert same_csr(read_group(f, "matrix"), m)


def test_tenx_layout(vecfmt, tmp_path):
    m = sample_csr("int32", shape=(30, 12))  # features x barcodes
    feats, barcodes = labels(30, "ENSG"), [f"AAAC{i:04d}-1" for i in range(12)]
    src = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(src, "w") as f:
        c = sp.csc_matrix(m)
        g = f.create_group("matrix")
        g.create_dataset("data", data=c.data, compression="gzip")
        g.create_dataset("indices", data=c.indices.astype(np.int64), compression="gzip")
        g.create_dataset("indptr", data=c.indptr.astype(np.int64), compression="gzip")
        g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32))
        g.create_dataset("barcodes", data=np.array(barcodes, dtype="S"))
        ft = g.create_group("features")
        ft.create_dataset("id", data=np.array([s.encode() for s in feats]))
        ft.create_dataset("name", data=np.array([b"g"] * 30))
    vfm = to_vfm(vecfmt, tmp_path, src)
    assert vecfmt.row(vfm, 4)["label"] == feats[4]
    out = tmp_path / "out.h5ad"
    vecfmt.run("convert", vfm, out)
    b = ad.read_h5ad(out)
    assert list(b.obs_names) == feats and list(b.var_names) == barcodes
    assert same_csr(b.X, m)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("shape_as", ["dataset", "attribute"])
def test_unmarked_groups_follow_indptr(vecfmt, tmp_path, fmt, shape_as):
    """No format attribute: the axis indptr fits decides (h5py users saving scipy arrays)."""
    m = sample_csr("float64", shape=(23, 41))
    c = m if fmt == "csr" else sp.csc_matrix(m)
    src = tmp_path / "plain.h5"
    with h5py.File(src, "w") as f:
        g = f.create_group("m")
        for k in ("data", "indices", "indptr"):
            g.create_dataset(k, data=getattr(c, k))
        if shape_as == "dataset":
            g.create_dataset("shape", data=np.array(m.shape))
        else:
            g.attrs["shape"] = np.array(m.shape)
    vfm = to_vfm(vecfmt, tmp_path, src)
    out = tmp_path / "out.h5"
    vecfmt.run("convert", vfm, out)
    with h5py.File(out) as f:
        assert same_csr(read_group(f, "matrix"), m)


def test_tenx_v2_layout(vecfmt, tmp_path):
    m = sample_csr("int32", shape=(14, 9))
    genes, barcodes = [f"ENSG{i:05d}" for i in range(14)], [f"AC{i:03d}-1" for i in range(9)]
    src = tmp_path / "v2.h5"
    with h5py.File(src, "w") as f:
        c = sp.csc_matrix(m)
        g = f.create_group("GRCh38")
        for k in ("data", "indices", "indptr"):
            g.create_dataset(k, data=getattr(c, k))
        g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32))
        g.create_dataset("barcodes", data=np.array(barcodes, dtype="S"))
        g.create_dataset("genes", data=np.array(genes, dtype="S"))
        g.create_dataset("gene_names", data=np.array(["g"] * 14, dtype="S"))
    vfm = to_vfm(vecfmt, tmp_path, src)
    out = tmp_path / "out.h5ad"
    vecfmt.run("convert", vfm, out)
    b = ad.read_h5ad(out)
    assert list(b.obs_names) == genes and list(b.var_names) == barcodes
    assert same_csr(b.X, m)


# ---- dense: PyTables, h5py -------------------------------------------------------------------


def sample_dense(dtype, shape=(45, 23)):
    return sample_csr(dtype, shape=shape, density=0.3).toarray()


@pytest.mark.parametrize(
    "kind,dtype,filters",
    [
        ("carray", "float32", dict(complib="blosc:lz4", complevel=5)),
        ("carray", "float64", dict(complib="zlib", complevel=4, shuffle=True)),
        ("carray", "int64", dict(complib="blosc:zstd", complevel=3)),
        ("earray", "uint32", dict(complib="blosc:blosclz", complevel=5)),
        ("array", "int32", None),
    ],
)
def test_pytables_dense_round_trip(vecfmt, tmp_path, kind, dtype, filters):
    a = sample_dense(dtype)
    src = tmp_path / "in.h5"
    with tables.open_file(src, "w") as f:
        flt = tables.Filters(**filters) if filters else None
        if kind == "carray":
            f.create_carray("/", "m", obj=a, filters=flt, chunkshape=(7, 23))
        elif kind == "earray":
            e = f.create_earray("/", "m", atom=tables.Atom.from_dtype(a.dtype), shape=(0, a.shape[1]), filters=flt)
            e.append(a)
        else:
            f.create_array("/", "m", obj=a)
    vfm = to_vfm(vecfmt, tmp_path, src)
    assert vecfmt.inspect(vfm)["nnz"] == int(np.count_nonzero(a.view(f"u{a.itemsize}")))
    out = tmp_path / "out.h5"
    vecfmt.run("convert", vfm, out, "--layout", "dense")
    with tables.open_file(out) as f:
        node = f.root.matrix
        assert type(node).__name__ == "CArray"
        assert node.filters.complib == "zlib" and node.filters.shuffle
        assert same_bits(node.read(), a)


@pytest.mark.parametrize("dtype,wide", [("int16", "int32"), ("uint8", "uint32"), ("float16", "float32"), (">f8", "float64")])
def test_narrow_and_big_endian_dense_read_exactly(vecfmt, tmp_path, dtype, wide):
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        a = (sample_dense("int32") % 100).astype(dt)
    else:
        a = sample_dense("float64")
        a[np.abs(a) > 6e4] = 1.5  # float16 range
        a = a.astype(dt)
    src = tmp_path / "narrow.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("m", data=a, chunks=(8, 23), compression="gzip", shuffle=True)
    vfm = to_vfm(vecfmt, tmp_path, src)
    assert vecfmt.inspect(vfm)["dtype"] == {"int32": "i32", "uint32": "u32", "float32": "f32", "float64": "f64"}[wide]
    out = tmp_path / "out.h5"
    vecfmt.run("convert", vfm, out, "--layout", "dense")
    with h5py.File(out) as f:
        b = f["matrix"][:]
    # Widening is exact: the same numbers, in the wider dtype (HDF5's float16 conversion
    # gives NaN another payload than numpy's, so NaNs compare as NaNs).
    want = a.astype(wide)
    assert b.dtype == want.dtype and np.array_equal(b, want, equal_nan=True)
    assert np.array_equal(np.signbit(b), np.signbit(want))


def test_h5py_dense_with_labels(vecfmt, tmp_path):
    a = sample_dense("float64")
    rows, cols = labels(a.shape[0], "r"), labels(a.shape[1], "c")
    src = tmp_path / "in.h5ad"
    ad.AnnData(X=a, obs=pd.DataFrame(index=rows), var=pd.DataFrame(index=cols)).write_h5ad(src)
    vfm = to_vfm(vecfmt, tmp_path, src)  # dense X of an AnnData file
    out = tmp_path / "out.h5"
    vecfmt.run("convert", vfm, out, "--layout", "dense")
    with h5py.File(out) as f:
        assert same_bits(f["matrix"][:], a)
        assert [s.decode() for s in f["matrix_row_labels"][:]] == rows
        assert [s.decode() for s in f["matrix_col_labels"][:]] == cols
    # and back in: the labels next to the dataset are read.
    again = tmp_path / "again.vfm"
    vecfmt.run("convert", out, again)
    assert vecfmt.row(again, 3)["label"] == rows[3]


@pytest.mark.parametrize("writer", ["h5py-dense", "h5py-csr", "pytables-carray", "anndata-csr"])
def test_bool_input_round_trips_as_uint32(vecfmt, tmp_path, writer):
    """numpy bool in HDF5 (h5py: enum of int8 {FALSE, TRUE}; PyTables: 8-bit bitfield) comes
    in as u32 0/1 with a note, and goes back out as uint32 equal to the bool matrix."""
    m = sample_csr("float32") != 0  # a bool CSR: True where the sample has an entry
    dense = m.toarray()
    assert dense.dtype == np.bool_ and dense.any() and not dense.all()
    src = tmp_path / ("in.h5ad" if writer == "anndata-csr" else "in.h5")
    if writer == "h5py-dense":
        with h5py.File(src, "w") as f:
            f.create_dataset("m", data=dense, chunks=(8, 8), compression="gzip")
            t = f["m"].id.get_type()
            assert t.get_class() == h5py.h5t.ENUM and t.get_nmembers() == 2
    elif writer == "h5py-csr":
        with h5py.File(src, "w") as f:
            g = f.create_group("m")
            for k in ("data", "indices", "indptr"):
                g.create_dataset(k, data=getattr(m, k), compression="gzip")
            g.attrs["shape"] = np.array(m.shape)
    elif writer == "pytables-carray":
        with tables.open_file(src, "w") as f:
            f.create_carray("/", "m", obj=dense, filters=tables.Filters(complevel=4, complib="zlib"))
    else:
        ad.AnnData(X=sp.csr_matrix(m)).write_h5ad(src)
        with h5py.File(src) as f:
            assert f["X/data"].dtype == np.bool_
    vfm = tmp_path / "m.vfm"
    p = vecfmt.run("convert", src, vfm)
    assert "is bool; read as u32" in p.stderr
    info = vecfmt.inspect(vfm)
    assert info["dtype"] == "u32" and info["nnz"] == m.nnz and info["shape"] == list(m.shape)
    out = tmp_path / "out.h5"
    vecfmt.run("convert", vfm, out)
    with h5py.File(out) as f:
        back = read_group(f, "matrix")
    assert back.dtype == np.uint32
    assert np.array_equal(back.toarray(), dense.astype(np.uint32))


def test_dense_output_size_guard(vecfmt, tmp_path):
    src = tmp_path / "huge.h5"
    with h5py.File(src, "w") as f:
        g = f.create_group("m")
        g.create_dataset("data", data=np.array([1.0]))
        g.create_dataset("indices", data=np.array([7]))
        g.create_dataset("indptr", data=np.r_[np.zeros(2, dtype=np.int64), np.ones(99_999, dtype=np.int64)])
        g.attrs["shape"] = np.array([100_000, 100_000])
    vfm = to_vfm(vecfmt, tmp_path, src)
    err = vecfmt.fail("convert", vfm, tmp_path / "dense.h5", "--layout", "dense")
    assert "--force" in err and "dense" in err
    assert leftovers(tmp_path, {"huge.h5", vfm.name}) == []


# ---- pandas fixed ---------------------------------------------------------------------------


def pivot(coo, shape):
    m = sp.coo_matrix((coo["value"].to_numpy(), (coo["row"].to_numpy(), coo["col"].to_numpy())), shape=shape)
    return m.toarray()


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "uint64"])
def test_pandas_fixed_round_trip(vecfmt, tmp_path, dtype):
    a = sample_dense(dtype, shape=(31, 17))
    rows, cols = labels(31, "doc"), labels(17, "word")
    df = pd.DataFrame(a, index=rows, columns=cols)
    src = tmp_path / "wide.h5"
    df.to_hdf(src, key="counts", format="fixed")
    vfm = to_vfm(vecfmt, tmp_path, src)
    assert vecfmt.row(vfm, 0)["label"] == rows[0]
    out = tmp_path / "long.h5"
    vecfmt.run("convert", vfm, out, "--layout", "pandas")
    coo = pd.read_hdf(out, "matrix")
    assert list(coo.columns) == ["row", "col", "value"]
    assert coo["value"].dtype == np.dtype(dtype) and coo["row"].dtype == np.int64
    assert len(coo) == np.count_nonzero(a.view(f"u{a.itemsize}"))
    assert same_bits(pivot(coo, a.shape), a)
    assert list(pd.read_hdf(out, "matrix_row_labels").index) == rows
    assert list(pd.read_hdf(out, "matrix_col_labels").index) == cols
    # The long frame comes back in too.
    again = tmp_path / "again.vfm"
    vecfmt.run("convert", out, again)
    assert vecfmt.inspect(again)["shape"] == [31, 17]
    assert vecfmt.row(again, 0) == vecfmt.row(vfm, 0)


def test_pandas_range_index_frame(vecfmt, tmp_path):
    a = sample_dense("int64", shape=(20, 9))
    src = tmp_path / "wide.h5"
    pd.DataFrame(a).to_hdf(src, key="df", format="fixed", complib="blosc:lz4", complevel=5)
    vfm = to_vfm(vecfmt, tmp_path, src)
    info = vecfmt.inspect(vfm)
    assert not info["has_row_labels"] and not info["has_col_labels"]
    out = tmp_path / "long.h5"
    vecfmt.run("convert", vfm, out, "--layout", "pandas")
    assert same_bits(pivot(pd.read_hdf(out), a.shape), a)


def test_pandas_mixed_dtypes_are_refused(vecfmt, tmp_path):
    src = tmp_path / "mixed.h5"
    pd.DataFrame({"a": [1.5, 0.0], "b": [1, 2]}).to_hdf(src, key="df", format="fixed")
    err = vecfmt.fail("convert", src, tmp_path / "x.vfm")
    assert "different dtypes" in err and "mixed.h5" in err
    assert leftovers(tmp_path, {"mixed.h5"}) == []


# ---- bad inputs -----------------------------------------------------------------------------


def test_two_candidates_need_dataset(vecfmt, tmp_path):
    src = tmp_path / "two.h5"
    a = sample_dense("float32")
    with h5py.File(src, "w") as f:
        f.create_dataset("first", data=a)
        g = f.create_group("grp/sparse")
        m = sp.csr_matrix(a[::-1].copy())
        for k in ("data", "indices", "indptr"):
            g.create_dataset(k, data=getattr(m, k))
        g.attrs["shape"] = np.array(m.shape)
    err = vecfmt.fail("convert", src, tmp_path / "x.vfm")
    assert "two.h5" in err and "--dataset" in err
    assert "/first (dense dataset)" in err and "/grp/sparse (CSR group)" in err
    assert leftovers(tmp_path, {"two.h5"}) == []
    vecfmt.run("convert", src, tmp_path / "x.vfm", "--dataset", "/grp/sparse")
    vecfmt.run("convert", tmp_path / "x.vfm", tmp_path / "x.h5")
    with h5py.File(tmp_path / "x.h5") as f:
        assert same_csr(read_group(f, "matrix"), m)


def test_truncated_file(vecfmt, tmp_path):
    src = tmp_path / "full.h5ad"
    ad.AnnData(X=sample_csr("float32", shape=(300, 200))).write_h5ad(src, compression="gzip")
    cut = tmp_path / "cut.h5ad"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    err = vecfmt.fail("convert", cut, tmp_path / "x.vfm")
    assert "cut.h5ad" in err and "truncated" in err
    assert leftovers(tmp_path, {"full.h5ad", "cut.h5ad"}) == []


@pytest.mark.parametrize("dtype,word", [("complex128", "compound"), ("S4", "string")])
def test_unsupported_dtype(vecfmt, tmp_path, dtype, word):
    src = tmp_path / "odd.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("z", data=np.ones((3, 4), dtype=dtype))
    err = vecfmt.fail("convert", src, tmp_path / "x.vfm")
    assert "odd.h5" in err and "/z" in err and "unsupported dtype" in err and word in err
    err = vecfmt.fail("convert", src, tmp_path / "x.vfm", "--dataset", "/z")
    assert "unsupported dtype" in err


@pytest.mark.parametrize(
    "plugin,fid", [(hdf5plugin.Zstd(), "32015"), (hdf5plugin.Bitshuffle(), "32008"), (hdf5plugin.LZ4(), "32004")]
)
def test_missing_filter(vecfmt, tmp_path, plugin, fid):
    src = tmp_path / "plugin.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("m", data=sample_dense("float64"), chunks=(5, 23), **plugin)
    err = vecfmt.fail("convert", src, tmp_path / "x.vfm")
    assert "plugin.h5" in err and f"filter {fid}" in err and "does not include" in err
    assert leftovers(tmp_path, {"plugin.h5"}) == []


def test_not_hdf5(vecfmt, tmp_path):
    src = tmp_path / "text.h5"
    src.write_text("hello\n" * 100)
    err = vecfmt.fail("convert", src, tmp_path / "x.vfm")
    assert "text.h5" in err and "not an HDF5 file" in err


def test_bad_csr_structure(vecfmt, tmp_path):
    src = tmp_path / "bad.h5"
    with h5py.File(src, "w") as f:
        for name, indptr, indices in [("mono", [0, 2, 1, 3], [0, 1, 2]), ("range", [0, 1, 2, 3], [0, 9, 1])]:
            g = f.create_group(name)
            g.create_dataset("data", data=np.ones(3))
            g.create_dataset("indices", data=np.array(indices, dtype=np.int32))
            g.create_dataset("indptr", data=np.array(indptr, dtype=np.int32))
            g.attrs["shape"] = np.array([3, 4])
    assert "not monotone" in vecfmt.fail("convert", src, tmp_path / "x.vfm", "--dataset", "mono")
    assert "out of range" in vecfmt.fail("convert", src, tmp_path / "x.vfm", "--dataset", "range")
    assert leftovers(tmp_path, {"bad.h5"}) == []


# ---- memory -------------------------------------------------------------------------------


def write_big_csr(path, n_rows, per_row=100, n_cols=4_000_000, seed=SEED):
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        g = f.create_group("X")
        g.attrs["encoding-type"] = "csr_matrix"
        g.attrs["shape"] = np.array([n_rows, n_cols])
        kw = dict(chunks=(1 << 18,), compression="gzip", compression_opts=1)
        d = g.create_dataset("data", shape=(n_rows * per_row,), dtype="f4", **kw)
        i = g.create_dataset("indices", shape=(n_rows * per_row,), dtype="i8", **kw)
        step = 5_000
        for r0 in range(0, n_rows, step):
            k = step * per_row
            cols = np.sort(rng.choice(n_cols - per_row, size=(step, per_row), replace=True), axis=1)
            cols += np.arange(per_row)  # strictly increasing in each row
            i[r0 * per_row : r0 * per_row + k] = cols.reshape(-1)
            d[r0 * per_row : r0 * per_row + k] = rng.integers(1, 50, k).astype("f4")
        g.create_dataset("indptr", data=np.arange(0, n_rows * per_row + 1, per_row, dtype=np.int64))


def peak_rss_mb(vecfmt, *args):
    """Peak RSS of one `vecfmt` run, in MB (measured in a fresh process)."""
    probe = textwrap.dedent(
        f"""
        import resource, subprocess, sys
        p = subprocess.run({[str(vecfmt.binary), *map(str, args)]!r})
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        sys.exit(p.returncode)
        """
    )
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return int(p.stdout.strip()) / 1024


def test_large_csr_streams_within_a_small_budget(vecfmt, tmp_path):
    """A 16 M-entry gzip CSR (192 MB of data and indices) converts with --memory 16M in under
    half that, and peak RSS moves little from a 16x smaller input. (What it does move is
    glibc's heap: its mmap threshold rises as large blocks are freed, up to 32 MB, so some
    block-sized buffers land on the heap; with MALLOC_MMAP_THRESHOLD_ pinned the growth
    is about 6 MB.)"""
    small, big = tmp_path / "small.h5", tmp_path / "big.h5"
    write_big_csr(small, 10_000)
    write_big_csr(big, 160_000)
    rss_small = peak_rss_mb(vecfmt, "convert", small, tmp_path / "small.vfm", "--memory", "16M")
    rss_big = peak_rss_mb(vecfmt, "convert", big, tmp_path / "big.vfm", "--memory", "16M")
    assert vecfmt.inspect(tmp_path / "big.vfm")["nnz"] == 160_000 * 100
    assert rss_big < 96, f"peak RSS {rss_big:.1f} MB for 192 MB of input"
    assert rss_big - rss_small < 32, f"peak RSS grew from {rss_small:.1f} MB to {rss_big:.1f} MB with 16x the input"


def test_binary_needs_no_system_hdf5(vecfmt):
    """HDF5 and its filters are compiled in (hdf5-metno's static build)."""
    import shutil

    if shutil.which("ldd") is None:
        pytest.skip("no ldd on this machine")
    libs = subprocess.run(["ldd", str(vecfmt.binary)], capture_output=True, text=True).stdout
    assert "hdf5" not in libs.lower() and "blosc" not in libs.lower(), libs
