"""Writes the Parquet fixtures that vecfmt-parquet's Rust tests read (without Python).

Run from the repository root with the pinned environment:

    .venv/bin/python testdata/interop/parquet/make_fixtures.py

Pinned versions (asserted below): pyarrow 26.0.1, pandas 2.3.3, numpy 2.4.6.

Each fixture's expected matrix is written to expected.json as
{name: {"shape": [r, c], "dtype": "...", "row_labels": [...] | null, "col_labels": ... ,
"entries": [[row, col, value(, float64 bits)], ...]}}, computed here with pandas, independently of vecfmt.
String labels get ids in order of first appearance (vecfmt's documented rule), which is
what pandas.unique returns.
"""

import json
import pathlib
import shutil
import struct

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

PINNED = {"pyarrow": "26.0.1", "pandas": "2.3.3", "numpy": "2.4.6"}
for mod, want in [(pa, PINNED["pyarrow"]), (pd, PINNED["pandas"]), (np, PINNED["numpy"])]:
    assert mod.__version__ == want, f"{mod.__name__} {mod.__version__} != pinned {want}"

HERE = pathlib.Path(__file__).resolve().parent
expected = {}


def entries(rows, cols, vals):
    """[row, col, value] triples; float values get a fourth item, the bits of the value as a
    float64, because JSON parsers need not round-trip decimal floats exactly."""
    out = []
    for r, c, v in zip(rows, cols, vals):
        v = v.item() if hasattr(v, "item") else v
        e = [int(r), int(c), v]
        if isinstance(v, float):
            e.append(struct.unpack("<Q", struct.pack("<d", v))[0])
        out.append(e)
    return out


# 1. COO sorted by row, as pandas writes it (snappy, int64 row, int32 col, float32 value).
#    No metadata: the shape is max index + 1 (the empty trailing row is not recoverable).
df = pd.DataFrame(
    {
        "row": np.array([0, 0, 1, 3, 3, 3], dtype=np.int64),
        "col": np.array([1, 5, 0, 2, 4, 7], dtype=np.int32),
        "value": np.array([1.5, -2.0, 3.25, 4.0, 0.5, 1e-3], dtype=np.float32),
    }
)
df.to_parquet(HERE / "coo_sorted.parquet", index=False)
expected["coo_sorted.parquet"] = {
    "shape": [4, 8],
    "dtype": "f32",
    "row_labels": None,
    "col_labels": None,
    "rows_mode": True,
    "entries": entries(df.row, df.col, df.value.astype(np.float64)),
}

# 2. COO, unsorted, with string row labels and dictionary-encoded (categorical) column labels,
#    int64 counts, zstd; one (row, col) pair appears twice, which vecfmt sums.
rows = ["dog", "cat", "dog", "emu", "cat", "dog"]
cols = ["bark", "purr", "run", "run", "purr", "bark"]
vals = np.array([3, 7, 1, 2, 5, 4], dtype=np.int64)
df = pd.DataFrame({"row": rows, "col": pd.Categorical(cols), "value": vals})
df.to_parquet(HERE / "coo_unsorted_labels.parquet", index=False, compression="zstd")
row_labels = list(pd.unique(pd.Series(rows)))
col_labels = list(pd.unique(pd.Series(cols)))
summed = df.assign(r=[row_labels.index(x) for x in rows], c=[col_labels.index(x) for x in cols])
summed = summed.groupby(["r", "c"], as_index=False)["value"].sum()
expected["coo_unsorted_labels.parquet"] = {
    "shape": [len(row_labels), len(col_labels)],
    "dtype": "i64",
    "row_labels": row_labels,
    "col_labels": col_labels,
    "rows_mode": False,
    "entries": entries(summed.r, summed.c, summed.value),
}

# 3. COO with the i/j/v names, small integer index types (uint16, int8) and uint8 values.
df = pd.DataFrame(
    {
        "i": np.array([2, 0, 1], dtype=np.uint16),
        "j": np.array([0, 3, 3], dtype=np.int8),
        "v": np.array([9, 8, 7], dtype=np.uint8),
    }
)
df.to_parquet(HERE / "coo_ijv_small_types.parquet", index=False)
expected["coo_ijv_small_types.parquet"] = {
    "shape": [3, 4],
    "dtype": "u32",
    "row_labels": None,
    "col_labels": None,
    "rows_mode": False,
    "entries": sorted(entries(df.i, df.j, df.v)),
}

# 4. List layout: one record per vector, int32 indices (unsorted within a record), float64
#    values, a label per vector.
table = pa.table(
    {
        "row": pa.array([0, 2, 3], pa.int64()),
        "indices": pa.array([[4, 1], [], [0, 2, 9]], pa.list_(pa.int32())),
        "values": pa.array([[0.25, -1.0], [], [1e300, 2.0, -0.0]], pa.list_(pa.float64())),
        "label": pa.array(["a", "c", "d"]),
    }
)
pq.write_table(table, HERE / "list_layout.parquet")
expected["list_layout.parquet"] = {
    "shape": [4, 10],
    "dtype": "f64",
    # Row 1 has no record, so no label: vecfmt labels it with its index.
    "row_labels": ["a", "1", "c", "d"],
    "col_labels": None,
    "rows_mode": True,
    "entries": entries([0, 0, 3, 3, 3], [1, 4, 0, 2, 9], [-1.0, 0.25, 1e300, 2.0, -0.0]),
}

# 5. A hive-partitioned dataset as pyarrow.dataset.write_dataset writes it (part=K/ dirs), with
#    a Spark-style _SUCCESS marker and .crc side files that readers skip.
hive = HERE / "hive"
shutil.rmtree(hive, ignore_errors=True)
rng = np.random.default_rng(4)
n = 40
r = rng.integers(0, 12, n).astype(np.int32)
c = rng.integers(0, 30, n).astype(np.int64)
key = np.unique(r * 100 + c, return_index=True)[1]  # distinct (row, col) pairs only
r, c = r[key], c[key]
v = rng.standard_normal(len(r))
t = pa.table({"row": r, "col": c, "value": v, "part": (r % 3).astype(np.int32)})
ds.write_dataset(
    t,
    hive,
    format="parquet",
    partitioning=ds.partitioning(pa.schema([("part", pa.int32())]), flavor="hive"),
)
(hive / "_SUCCESS").write_bytes(b"")
(hive / "._SUCCESS.crc").write_bytes(b"crc")
order = np.lexsort((c, r))
expected["hive"] = {
    "shape": [int(r.max()) + 1, int(c.max()) + 1],
    "dtype": "f64",
    "row_labels": None,
    "col_labels": None,
    "rows_mode": False,
    "entries": entries(r[order], c[order], v[order]),
}

# Bad inputs: each must give a clear error naming the file.
bad = HERE / "bad"
shutil.rmtree(bad, ignore_errors=True)
bad.mkdir()
pd.DataFrame({"row": [0, -1], "col": [0, 1], "value": [1.0, 2.0]}).to_parquet(bad / "negative_index.parquet", index=False)
pq.write_table(
    pa.table({"row": pa.array([0, 1]), "col": pa.array([0, 1]), "value": pa.array([1.0, None])}),
    bad / "null_value.parquet",
)
pd.DataFrame({"row": [0, 1], "col": [0, 1], "value": ["x", "y"]}).to_parquet(bad / "string_values.parquet", index=False)
pd.DataFrame({"a": [0, 1], "b": [0, 1], "c": [1.0, 2.0]}).to_parquet(bad / "unknown_columns.parquet", index=False)
whole = (HERE / "coo_sorted.parquet").read_bytes()
(bad / "truncated.parquet").write_bytes(whole[: len(whole) // 2])

(HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
print("wrote", ", ".join(sorted(expected)), "and bad/*")
