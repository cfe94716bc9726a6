"""Writes the HDF5 fixtures of vecfmt-hdf5 with the real Python libraries.

Pinned versions (asserted below; tests/python/requirements.txt pins the same):
    numpy 2.4.6, scipy 1.17.1, h5py 3.16.0, tables 3.11.1, pandas 2.3.3, anndata 0.12.19,
    hdf5plugin 7.1.0

Run from the repository root:
    .venv/bin/python testdata/interop/hdf5/make_fixtures.py

Every good fixture holds the same 6 x 5 matrix M (see `base`): M[i, j] = 10 * i + j + 1 where
(i + 2 * j) % 3 == 0, else 0; row labels r0..r5, column labels c0..c4 where the layout has
labels. formats/vecfmt-hdf5/tests/fixtures.rs reads them without Python and checks the values.
"""

import importlib.metadata
import pathlib
import warnings

import anndata
import h5py
import hdf5plugin
import numpy as np
import pandas as pd
import scipy
import scipy.sparse as sp
import tables

PINS = {
    "numpy": "2.4.6",
    "scipy": "1.17.1",
    "h5py": "3.16.0",
    "tables": "3.11.1",
    "pandas": "2.3.3",
    "anndata": "0.12.19",
    "hdf5plugin": "7.1.0",
}
for dist, want in PINS.items():
    have = importlib.metadata.version(dist)
    assert have == want, f"{dist} {have} != pinned {want}"

OUT = pathlib.Path(__file__).resolve().parent
ROWS = [f"r{i}" for i in range(6)]
COLS = [f"c{j}" for j in range(5)]


def base(dtype=np.float64) -> np.ndarray:
    m = np.zeros((6, 5), dtype=dtype)
    for i in range(6):
        for j in range(5):
            if (i + 2 * j) % 3 == 0:
                m[i, j] = 10 * i + j + 1
    return m


def csr_group(f, name, m, index_dtype, data_dtype, compression="gzip", attrs=None, shape_dataset=False):
    c = sp.csr_matrix(m.astype(data_dtype))
    g = f.create_group(name)
    g.create_dataset("data", data=c.data, compression=compression)
    g.create_dataset("indices", data=c.indices.astype(index_dtype), compression=compression)
    g.create_dataset("indptr", data=c.indptr.astype(index_dtype), compression=compression)
    for k, v in (attrs or {}).items():
        g.attrs[k] = v
    if shape_dataset:
        g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32))
    return g


def main():
    warnings.simplefilter("ignore")
    m = base()

    # anndata: X as CSR (gzip) and as CSC, obs/var names as labels.
    a = anndata.AnnData(
        X=sp.csr_matrix(m.astype(np.float32)),
        obs=pd.DataFrame(index=ROWS),
        var=pd.DataFrame(index=COLS),
    )
    a.write_h5ad(OUT / "anndata_csr.h5ad", compression="gzip")
    a.X = sp.csc_matrix(a.X)
    a.write_h5ad(OUT / "anndata_csc.h5ad")

    # h5py CSR groups (gzip) with int64 and uint32 indices; the anndata attributes give the shape.
    with h5py.File(OUT / "h5py_csr_int64.h5", "w") as f:
        csr_group(f, "m", m, np.int64, np.float64, attrs={"shape": np.array(m.shape)})
    with h5py.File(OUT / "h5py_csr_uint32.h5", "w") as f:
        csr_group(f, "m", m, np.uint32, np.int32, attrs={"encoding-type": "csr_matrix", "shape": np.array(m.shape)})

    # h5sparse attributes (h5sparse itself is not installed: this is its layout).
    with h5py.File(OUT / "h5sparse.h5", "w") as f:
        csr_group(f, "m", m, np.int32, np.float32, attrs={"h5sparse_format": "csr", "h5sparse_shape": m.shape})

    # 10x Genomics: /matrix is features x barcodes, CSC, with a shape dataset.
    with h5py.File(OUT / "tenx.h5", "w") as f:
        c = sp.csc_matrix(m.astype(np.int32))
        g = f.create_group("matrix")
        g.create_dataset("data", data=c.data, compression="gzip")
        g.create_dataset("indices", data=c.indices.astype(np.int64), compression="gzip")
        g.create_dataset("indptr", data=c.indptr.astype(np.int64), compression="gzip")
        g.create_dataset("shape", data=np.array(m.shape, dtype=np.int32))
        g.create_dataset("barcodes", data=np.array(COLS, dtype="S"))
        feats = g.create_group("features")
        feats.create_dataset("id", data=np.array(ROWS, dtype="S"))
        feats.create_dataset("name", data=np.array(["gene"] * 6, dtype="S"))

    # PyTables dense arrays: CArray with blosc:lz4 and with zlib+shuffle, EArray, Array.
    with tables.open_file(OUT / "pytables_carray_blosc_lz4.h5", "w") as f:
        f.create_carray("/", "m", obj=m.astype(np.float32), filters=tables.Filters(complevel=5, complib="blosc:lz4"))
    with tables.open_file(OUT / "pytables_carray_zlib.h5", "w") as f:
        f.create_carray("/", "m", obj=m.astype(np.int16), filters=tables.Filters(complevel=4, complib="zlib", shuffle=True))
    with tables.open_file(OUT / "pytables_earray.h5", "w") as f:
        e = f.create_earray("/", "m", atom=tables.Float64Atom(), shape=(0, 5), filters=tables.Filters(complevel=1, complib="blosc:zstd"))
        e.append(m)
    with tables.open_file(OUT / "pytables_array.h5", "w") as f:
        f.create_array("/", "m", obj=m.astype(np.uint8))

    # h5py dense, gzip + shuffle, chunked by 4 rows.
    with h5py.File(OUT / "h5py_dense_gzip.h5", "w") as f:
        f.create_dataset("m", data=m, chunks=(4, 5), compression="gzip", shuffle=True)

    # bool: h5py stores numpy bool as the enum of int8 {FALSE: 0, TRUE: 1}; PyTables as an
    # 8-bit bitfield. vecfmt reads both as u32 0/1: M's pattern (M != 0).
    b = m != 0
    with h5py.File(OUT / "h5py_bool_dense.h5", "w") as f:
        f.create_dataset("m", data=b, chunks=(4, 5), compression="gzip")
    with h5py.File(OUT / "h5py_bool_csr.h5", "w") as f:
        csr_group(f, "m", b, np.int32, np.bool_, attrs={"shape": np.array(b.shape)})
    with tables.open_file(OUT / "pytables_bool_carray.h5", "w") as f:
        c = f.create_carray("/", "m", obj=b, chunkshape=(2, 5), filters=tables.Filters(complevel=4, complib="zlib"))
        assert c.atom.kind == "bool"

    # pandas fixed frames: labelled float64, and int64 with the default RangeIndex.
    pd.DataFrame(m, index=ROWS, columns=COLS).to_hdf(OUT / "pandas_wide.h5", key="df", format="fixed")
    pd.DataFrame(m.astype(np.int64)).to_hdf(OUT / "pandas_wide_int.h5", key="df", format="fixed")

    # Bad inputs.
    with h5py.File(OUT / "bad_two_candidates.h5", "w") as f:
        f.create_dataset("a", data=m)
        f.create_dataset("b", data=m)
    with h5py.File(OUT / "bad_complex.h5", "w") as f:
        f.create_dataset("z", data=m.astype(np.complex128))
    with h5py.File(OUT / "bad_strings.h5", "w") as f:
        f.create_dataset("s", data=np.array([["a", "b"], ["c", "d"]], dtype="S1"))
    with h5py.File(OUT / "bad_zstd_filter.h5", "w") as f:
        f.create_dataset("m", data=m, chunks=(3, 5), **hdf5plugin.Zstd())
    src = (OUT / "h5py_dense_gzip.h5").read_bytes()
    (OUT / "bad_truncated.h5").write_bytes(src[: len(src) // 2])
    (OUT / "bad_not_hdf5.h5").write_bytes(b"this is a text file, not HDF5\n" * 4)
    with h5py.File(OUT / "bad_csr_unsorted_dups.h5", "w") as f:
        # Row 0 holds columns 3, 1, 3 (unsorted, 3 twice: summed to 5 + 7 = 12).
        g = f.create_group("m")
        g.attrs["shape"] = np.array([2, 4])
        g.create_dataset("data", data=np.array([5.0, 2.0, 7.0, 1.0]))
        g.create_dataset("indices", data=np.array([3, 1, 3, 0], dtype=np.int32))
        g.create_dataset("indptr", data=np.array([0, 3, 4], dtype=np.int32))
    with h5py.File(OUT / "bad_csr_indptr.h5", "w") as f:
        g = f.create_group("m")
        g.attrs["shape"] = np.array([3, 4])
        g.create_dataset("data", data=np.array([1.0, 2.0, 3.0]))
        g.create_dataset("indices", data=np.array([0, 1, 2], dtype=np.int32))
        g.create_dataset("indptr", data=np.array([0, 3, 2, 3], dtype=np.int32))  # 3 then 2
    with h5py.File(OUT / "bad_csr_index_range.h5", "w") as f:
        g = f.create_group("m")
        g.attrs["shape"] = np.array([2, 4])
        g.create_dataset("data", data=np.array([1.0, 2.0]))
        g.create_dataset("indices", data=np.array([0, 9], dtype=np.int32))
        g.create_dataset("indptr", data=np.array([0, 1, 2], dtype=np.int32))
    with h5py.File(OUT / "bad_csr_shape.h5", "w") as f:
        g = f.create_group("m")
        g.attrs["shape"] = np.array([3, 4])
        g.create_dataset("data", data=np.array([1.0, 2.0]))
        g.create_dataset("indices", data=np.array([0, 1], dtype=np.int32))
        g.create_dataset("indptr", data=np.array([0, 1, 2], dtype=np.int32))
    for p in sorted(OUT.glob("*.h5*")):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
