"""Writes the .npy, .npz and .mtx fixtures in this directory with the real numpy and scipy.

Pinned versions (as in tests/python/requirements.txt): numpy==2.4.6, scipy==1.17.1.
Run from the repository root:

    .venv/bin/python testdata/interop/npy/make_fixtures.py

The Rust tests of formats/vecfmt-npy and formats/vecfmt-mtx read these files without Python
and check them against expected.json, which this script writes too: for each fixture its
shape, the dtype vecfmt should read it as, and every nonzero entry as [row, col, repr(value)]
(Python's repr of a float is its shortest round-tripping decimal, so the values are exact).
Bad fixtures are listed with the words their error message must contain.
"""

import io
import json
import pathlib
import zipfile

import numpy as np
import scipy
import scipy.io
import scipy.sparse as sp

NUMPY = "2.4.6"
SCIPY = "1.17.1"
assert np.__version__ == NUMPY, f"numpy {np.__version__}, expected {NUMPY}"
assert scipy.__version__ == SCIPY, f"scipy {scipy.__version__}, expected {SCIPY}"

HERE = pathlib.Path(__file__).resolve().parent
expected = {}
bad = {}


def entries(dense):
    """Nonzero entries (by bits: -0.0 and NaN count) of a 2-D array, row-major."""
    dense = np.asarray(dense)
    out = []
    for (r, c), v in np.ndenumerate(dense):
        if np.asarray(v).reshape(1).view(np.uint8).any():
            out.append([r, c, repr(v.item()) if dense.dtype.kind == "f" else str(int(v))])
    return out


def expect(name, dense, dtype):
    expected[name] = {"shape": list(np.shape(dense)), "dtype": dtype, "entries": entries(dense)}


# ---- .npy ------------------------------------------------------------------------------
base = np.array(
    [[0.0, 1.5, 0.0, -2.25], [0.0, 0.0, 0.0, 0.0], [-0.0, np.nan, np.inf, 1e-300], [3.0, 0.0, 0.0, 7.125]]
)
np.save(HERE / "c_f64.npy", base)
expect("c_f64.npy", base, "f64")

ints = np.array([[0, -7, 0], [5, 0, 2147483647], [0, 0, 0], [-2147483648, 1, 0], [0, 0, 9]], dtype=np.int32)
np.save(HERE / "f_i32.npy", np.asfortranarray(ints))
assert np.load(HERE / "f_i32.npy").flags.f_contiguous
expect("f_i32.npy", ints, "i32")

u8 = np.array([[0, 255, 3], [1, 0, 0]], dtype=np.uint8)
np.save(HERE / "c_u8.npy", u8)
expect("c_u8.npy", u8.astype(np.uint32), "u32")

half = np.array([[0.5, 0, -65504], [0, 6e-08, 1]], dtype=np.float16)
np.save(HERE / "c_f16.npy", half)
expect("c_f16.npy", half.astype(np.float32), "f32")

be = np.array([[1.25, 0], [0, -3.5], [0, 0]], dtype=">f4")
np.save(HERE / "be_f32.npy", be)
expect("be_f32.npy", be.astype("<f4"), "f32")

u64 = np.array([[2**64 - 1, 0], [0, 2**40]], dtype=np.uint64)
np.save(HERE / "c_u64.npy", u64)
expect("c_u64.npy", u64, "u64")

np.save(HERE / "object.npy", np.array([[{"a": 1}, None]], dtype=object), allow_pickle=True)
bad["object.npy"] = "pickled object array"
np.save(HERE / "complex.npy", np.ones((2, 2), dtype=np.complex64))
bad["complex.npy"] = "unsupported dtype"
np.save(HERE / "one_d.npy", np.arange(5.0))
bad["one_d.npy"] = "expected a 2-D array"
raw = (HERE / "c_f64.npy").read_bytes()
(HERE / "truncated.npy").write_bytes(raw[: len(raw) - 20])
bad["truncated.npy"] = "truncated"

# ---- .npz (scipy.sparse.save_npz) --------------------------------------------------------
m = sp.csr_matrix(
    np.array([[0, 1.5, 0, 0, 2], [0, 0, 0, 0, 0], [-1, 0, 0, 0.25, 0], [0, 0, 0, 0, 1e30]], dtype=np.float32)
)
sp.save_npz(HERE / "csr_f32.npz", m, compressed=True)
expect("csr_f32.npz", m.toarray(), "f32")

arr = sp.csr_array(m.astype(np.float64))
arr.indices = arr.indices.astype(np.int64)
arr.indptr = arr.indptr.astype(np.int64)
sp.save_npz(HERE / "csr_array_i64idx.npz", arr, compressed=False)
with np.load(HERE / "csr_array_i64idx.npz") as z:
    assert z["indices"].dtype == np.int64 and "_is_array" in z
expect("csr_array_i64idx.npz", arr.toarray(), "f64")

# Unsorted column indices and a duplicate in row 0; scipy keeps them as given.
uns = sp.csr_matrix(
    (np.array([3, 4, 5, 6], dtype=np.int64), np.array([2, 0, 2, 1]), np.array([0, 3, 4])), shape=(2, 3)
)
assert not uns.has_canonical_format
sp.save_npz(HERE / "csr_unsorted.npz", uns)
expect("csr_unsorted.npz", uns.toarray(), "i64")

csc = sp.csc_matrix(np.array([[0, 7, 0], [-3, 0, 0], [0, 0, 0], [0, 1, 2]], dtype=np.int64))
sp.save_npz(HERE / "csc_i64.npz", csc, compressed=False)
expect("csc_i64.npz", csc.toarray(), "i64")

coo = sp.coo_matrix(
    (np.array([1.0, 2.0, 0.5, 4.0]), (np.array([0, 2, 0, 1]), np.array([1, 2, 1, 0]))), shape=(3, 3)
)
sp.save_npz(HERE / "coo_f64.npz", coo)
expect("coo_f64.npz", coo.toarray(), "f64")  # duplicates at (0, 1) are summed: 1.5


def save_raw_npz(path, **arrays):
    """An .npz written member by member, for inputs scipy itself would refuse to build."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in arrays.items():
            b = io.BytesIO()
            np.save(b, v)
            z.writestr(k + ".npy", b.getvalue())


good = dict(format=np.array(b"csr"), shape=np.array([2, 3]), data=np.array([1.0, 2.0, 3.0]))
save_raw_npz(HERE / "bad_indptr.npz", indices=np.array([0, 1, 2]), indptr=np.array([0, 2, 1]), **good)
bad["bad_indptr.npz"] = "not monotone"
save_raw_npz(HERE / "bad_index.npz", indices=np.array([0, 5, 2]), indptr=np.array([0, 2, 3]), **good)
bad["bad_index.npz"] = "out of range"
save_raw_npz(HERE / "bad_shape.npz", indices=np.array([0, 1, 2]), indptr=np.array([0, 1, 2, 3]), **good)
bad["bad_shape.npz"] = "shape mismatch"
raw = (HERE / "csr_f32.npz").read_bytes()
(HERE / "truncated.npz").write_bytes(raw[: len(raw) // 2])
bad["truncated.npz"] = "truncated"
np.savez(HERE / "not_sparse.npz", a=np.arange(3))
bad["not_sparse.npz"] = "not a scipy.sparse .npz"

# ---- .mtx (scipy.io.mmwrite) -------------------------------------------------------------
real = sp.coo_matrix(np.array([[0, 0.1, 0], [2.5e-7, 0, 0], [0, 0, -3e200]]))
scipy.io.mmwrite(HERE / "real_general.mtx", real)
expect("real_general.mtx", real.toarray(), "f64")

sym = sp.coo_matrix(np.array([[4, -1, 0], [-1, 0, 7], [0, 7, 2]], dtype=np.int64))
scipy.io.mmwrite(HERE / "integer_symmetric.mtx", sym, symmetry="symmetric")
assert "symmetric" in (HERE / "integer_symmetric.mtx").read_text().splitlines()[0]
expect("integer_symmetric.mtx", sym.toarray(), "i64")

pat = sp.coo_matrix(np.array([[0, 1, 1], [0, 0, 0], [1, 0, 0], [0, 0, 1]]))
scipy.io.mmwrite(HERE / "pattern_general.mtx", pat, field="pattern")
expect("pattern_general.mtx", pat.toarray().astype(np.float64), "f64")

dense = np.array([[1.5, 0.0], [0.0, -2.0], [3.0, 0.0]])
scipy.io.mmwrite(HERE / "array_real.mtx", dense)
assert "array" in (HERE / "array_real.mtx").read_text().splitlines()[0]
expect("array_real.mtx", dense, "f64")

(HERE / "bad_entry.mtx").write_text("%%MatrixMarket matrix coordinate real general\n2 2 2\n1 1 1.0\n3 1 2.0\n")
bad["bad_entry.mtx"] = "line 4"
(HERE / "short.mtx").write_text("%%MatrixMarket matrix coordinate real general\n2 2 3\n1 1 1.0\n")
bad["short.mtx"] = "truncated"

lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(expected.items())]
bad_lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(bad.items())]
text = '{"good": {\n' + ",\n".join(lines) + '\n}, "bad": {\n' + ",\n".join(bad_lines) + "\n}}\n"
assert json.loads(text) == {"good": expected, "bad": bad}
(HERE / "expected.json").write_text(text)
print(f"wrote {len(expected)} good and {len(bad)} bad fixtures to {HERE}")
