"""Parquet interop: pandas and pyarrow write, `vecfmt convert` brings the file to .vfm and back
out, pandas and pyarrow read the result. Values (bit-identical), shape and labels must match.

Layouts: COO long format (row, col, value [+ row_label, col_label]) and the list layout
(row, indices: list, values: list [+ label]); hive-partitioned datasets as pyarrow and pandas
write them (plus Spark's side files).
"""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest


def convert(vecfmt, src, dst, *flags):
    vecfmt.run("convert", src, dst, *flags)
    assert dst.exists()


def coo_dict(rows, cols, vals):
    """{(row, col): value}, duplicates summed in the values' own dtype."""
    out = {}
    for r, c, v in zip(rows, cols, vals):
        key = (r.item() if hasattr(r, "item") else r, c.item() if hasattr(c, "item") else c)
        out[key] = out[key] + v if key in out else v
    return out


def bits(x):
    """A value's bits, so -0.0 differs from 0.0 and NaN equals NaN."""
    x = np.asarray(x)
    return x.tobytes() if x.dtype.kind == "f" else x.tolist()


def assert_same_entries(got: dict, want: dict):
    assert got.keys() == want.keys()
    for k in want:
        assert bits(got[k]) == bits(want[k]), (k, got[k], want[k])


def no_leftovers(directory, expected):
    """Only the expected files: no temporary files and no partial outputs."""
    names = sorted(p.name for p in directory.iterdir())
    assert names == sorted(expected), names


def random_coo(rng, n_rows, n_cols, nnz, value_dtype):
    flat = rng.choice(n_rows * n_cols, size=nnz, replace=False)
    rows, cols = np.divmod(flat, n_cols)
    if np.dtype(value_dtype).kind == "f":
        vals = (rng.standard_normal(nnz) * 100).astype(value_dtype)
        vals[::7] = -0.0
    else:
        info = np.iinfo(value_dtype)
        vals = rng.integers(max(info.min, -(2**40)), min(info.max, 2**40), nnz, dtype=value_dtype, endpoint=True)
    return rows, cols, vals


# (row type, col type, value type, the .vfm dtype vecfmt stores, the Parquet type it writes back)
TYPES = [
    ("int64", "int32", "float32", "f32", "float32"),
    ("uint16", "int8", "float64", "f64", "float64"),
    ("int32", "uint64", "int64", "i64", "int64"),
    ("uint32", "uint32", "uint32", "u32", "uint32"),
    ("int8", "int16", "int16", "i32", "int32"),
    ("uint64", "uint8", "uint64", "u64", "uint64"),
]


@pytest.mark.parametrize("row_t,col_t,val_t,vfm_dtype,back_t", TYPES)
def test_coo_any_column_types_unsorted_round_trip(vecfmt, tmp_path, row_t, col_t, val_t, vfm_dtype, back_t):
    rng = np.random.default_rng(abs(hash((row_t, col_t, val_t))) % 2**32)
    rows, cols, vals = random_coo(rng, 100, 120, 900, val_t)
    order = rng.permutation(len(rows))  # unsorted on purpose
    df = pd.DataFrame({"row": rows[order].astype(row_t), "col": cols[order].astype(col_t), "value": vals[order]})
    src = tmp_path / "in.parquet"
    df.to_parquet(src, index=False)

    vfm = tmp_path / "m.vfm"
    convert(vecfmt, src, vfm)
    info = vecfmt.inspect(vfm)
    assert info["dtype"] == vfm_dtype
    assert info["shape"] == [int(rows.max()) + 1, int(cols.max()) + 1]
    assert info["nnz"] == len(rows)

    out = tmp_path / "out.parquet"
    convert(vecfmt, vfm, out)
    back = pd.read_parquet(out)
    assert list(back.columns) == ["row", "col", "value"]
    assert back["value"].dtype == np.dtype(back_t)
    # int32 indices while the shape allows them, as scipy uses.
    assert back["row"].dtype == np.int32 and back["col"].dtype == np.int32
    # Written sorted by row, then column.
    assert (np.diff(back["row"] * 10**6 + back["col"]) > 0).all()
    want = coo_dict(rows, cols, vals.astype(back_t))
    assert_same_entries(coo_dict(back["row"], back["col"], back["value"].to_numpy()), want)
    meta = pq.read_metadata(out).metadata
    assert json.loads(meta[b"vecfmt.shape"]) == info["shape"]
    no_leftovers(tmp_path, ["in.parquet", "m.vfm", "out.parquet"])


def test_float16_values_widen_exactly_to_f32(vecfmt, tmp_path):
    vals = np.array([0.5, -1.25, 65504.0, 6e-8], dtype=np.float16)
    t = pa.table({"i": pa.array([0, 1, 1, 3], pa.int32()), "j": pa.array([1, 0, 2, 2], pa.int32()), "v": vals})
    pq.write_table(t, tmp_path / "h.parquet")
    convert(vecfmt, tmp_path / "h.parquet", tmp_path / "m.vfm")
    assert vecfmt.inspect(tmp_path / "m.vfm")["dtype"] == "f32"
    convert(vecfmt, tmp_path / "m.vfm", tmp_path / "out.parquet")
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert back["value"].to_numpy().tolist() == vals.astype(np.float32).tolist()


def test_duplicates_are_summed(vecfmt, tmp_path):
    df = pd.DataFrame({"row": [2, 0, 2, 2, 0], "col": [1, 3, 1, 0, 3], "value": [1.5, 2.0, 0.25, 7.0, -2.0]})
    df.to_parquet(tmp_path / "d.parquet", index=False)
    convert(vecfmt, tmp_path / "d.parquet", tmp_path / "m.vfm")
    convert(vecfmt, tmp_path / "m.vfm", tmp_path / "out.parquet")
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert back.to_dict("list") == {"row": [0, 2, 2], "col": [3, 0, 1], "value": [0.0, 7.0, 1.75]}


@pytest.mark.parametrize("names", [("i", "j", "v"), ("row", "col", "data"), ("soma_dim_0", "soma_dim_1", "soma_data")])
def test_common_column_names_are_recognised(vecfmt, tmp_path, names):
    df = pd.DataFrame({names[0]: [0, 4, 2], names[1]: [5, 1, 5], names[2]: np.array([1.0, 2.0, 3.0], np.float32)})
    df.to_parquet(tmp_path / "n.parquet", index=False)
    convert(vecfmt, tmp_path / "n.parquet", tmp_path / "m.vfm")
    assert vecfmt.inspect(tmp_path / "m.vfm")["shape"] == [5, 6]
    r = vecfmt.row(tmp_path / "m.vfm", 4)
    assert (r["cols"], r["values"]) == ([1], [2.0])


def test_column_flags_override_the_names(vecfmt, tmp_path):
    df = pd.DataFrame({"src": [3, 1], "dst": [0, 2], "weight": [0.5, 4.0], "value": ["not", "this"]})
    df.to_parquet(tmp_path / "e.parquet", index=False)
    flags = ["--row-col", "src", "--col-col", "dst", "--value-col", "weight"]
    convert(vecfmt, tmp_path / "e.parquet", tmp_path / "m.vfm", *flags)
    assert vecfmt.inspect(tmp_path / "m.vfm")["shape"] == [4, 3]
    r = vecfmt.row(tmp_path / "m.vfm", 3)
    assert (r["cols"], r["values"]) == ([0], [0.5])


def test_string_and_dictionary_labels(vecfmt, tmp_path):
    rng = np.random.default_rng(7)
    words = [f"w{k}" for k in range(40)]
    ctx = [f"c{k}é" for k in range(25)]
    n = 500
    pairs = {(words[rng.integers(40)], ctx[rng.integers(25)]) for _ in range(n)}
    pairs = sorted(pairs, key=lambda p: rng.random())  # unsorted
    df = pd.DataFrame(
        {
            "row": [p[0] for p in pairs],  # plain strings
            "col": pd.Categorical([p[1] for p in pairs]),  # dictionary-encoded
            "value": np.arange(len(pairs), dtype=np.float64) / 8,
        }
    )
    src = tmp_path / "labels.parquet"
    df.to_parquet(src, index=False)
    assert pa.types.is_dictionary(pq.read_schema(src).field("col").type)

    vfm = tmp_path / "m.vfm"
    convert(vecfmt, src, vfm)
    info = vecfmt.inspect(vfm)
    row_labels = list(pd.unique(df["row"]))  # ids in order of first appearance
    col_labels = list(pd.unique(df["col"].astype(str)))
    assert info["shape"] == [len(row_labels), len(col_labels)]
    assert info["has_row_labels"] and info["has_col_labels"]
    for k in (0, 5, len(row_labels) - 1):
        assert vecfmt.row(vfm, k)["label"] == row_labels[k]

    out = tmp_path / "out.parquet"
    convert(vecfmt, vfm, out)
    back = pd.read_parquet(out)
    assert list(back.columns) == ["row", "col", "value", "row_label", "col_label"]
    want = {(r, c): v for r, c, v in zip(df["row"], df["col"].astype(str), df["value"])}
    got = {(r, c): v for r, c, v in zip(back["row_label"], back["col_label"], back["value"])}
    assert_same_entries(got, want)
    assert [row_labels[i] for i in back["row"]] == list(back["row_label"])
    assert [col_labels[j] for j in back["col"]] == list(back["col_label"])
    meta = pq.read_metadata(out).metadata
    assert json.loads(meta[b"vecfmt.row_labels"]) == row_labels
    assert json.loads(meta[b"vecfmt.col_labels"]) == col_labels

    # And back again: the labels survive a second round, from vecfmt's own Parquet.
    vfm2 = tmp_path / "m2.vfm"
    convert(vecfmt, out, vfm2)
    assert vecfmt.inspect(vfm2)["shape"] == info["shape"]
    assert vecfmt.row(vfm2, 3) == vecfmt.row(vfm, 3)


def add_spark_side_files(directory):
    (directory / "_SUCCESS").write_bytes(b"")
    (directory / "._SUCCESS.crc").write_bytes(b"\x00crc")
    for f in list(directory.rglob("*.parquet")):
        (f.parent / f".{f.name}.crc").write_bytes(b"\x00crc")


def test_hive_partitioned_pyarrow_dataset(vecfmt, tmp_path):
    rng = np.random.default_rng(11)
    rows, cols, vals = random_coo(rng, 60, 50, 700, np.float32)
    t = pa.table({"row": rows.astype(np.int32), "col": cols.astype(np.int64), "value": vals, "bucket": rows % 4})
    data = tmp_path / "data"
    ds.write_dataset(
        t, data, format="parquet", partitioning=ds.partitioning(pa.schema([("bucket", pa.int64())]), flavor="hive")
    )
    add_spark_side_files(data)
    assert len(list(data.glob("bucket=*/*.parquet"))) == 4

    convert(vecfmt, data, tmp_path / "m.vfm")
    assert vecfmt.inspect(tmp_path / "m.vfm")["shape"] == [int(rows.max()) + 1, int(cols.max()) + 1]
    convert(vecfmt, tmp_path / "m.vfm", tmp_path / "out.parquet")
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert_same_entries(coo_dict(back["row"], back["col"], back["value"].to_numpy()), coo_dict(rows, cols, vals))


def test_pandas_partition_cols_on_the_row_index(vecfmt, tmp_path):
    """`df.to_parquet(dir, partition_cols=["row"])` moves the row index into row=K/ directories."""
    rng = np.random.default_rng(12)
    rows, cols, vals = random_coo(rng, 9, 30, 120, np.int64)
    df = pd.DataFrame({"row": rows, "col": cols, "value": vals})
    data = tmp_path / "data"
    df.to_parquet(data, partition_cols=["row"], index=False)
    add_spark_side_files(data)
    assert "row" not in pq.read_schema(next(data.rglob("*.parquet"))).names

    convert(vecfmt, data, tmp_path / "m.vfm")
    info = vecfmt.inspect(tmp_path / "m.vfm")
    assert info["shape"] == [int(rows.max()) + 1, int(cols.max()) + 1] and info["dtype"] == "i64"
    convert(vecfmt, tmp_path / "m.vfm", tmp_path / "out.parquet")
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert_same_entries(coo_dict(back["row"], back["col"], back["value"].to_numpy()), coo_dict(rows, cols, vals))


def test_row_groups_filters_statistics_and_zstd(vecfmt, tmp_path):
    """A larger matrix: several row groups, sorted by row, zstd, with statistics, so a row
    filter reads one row group."""
    rng = np.random.default_rng(3)
    n_rows, per_row = 6000, 100
    rows = np.repeat(np.arange(n_rows), per_row)
    cols = (rng.integers(0, 4_000_000 // per_row, rows.size) + np.tile(np.arange(per_row), n_rows) * (4_000_000 // per_row))
    vals = rng.integers(1, 20, rows.size).astype(np.float32)
    src = tmp_path / "big.parquet"
    pd.DataFrame({"row": rows, "col": cols, "value": vals}).to_parquet(src, index=False)

    convert(vecfmt, src, tmp_path / "m.vfm")
    out = tmp_path / "out.parquet"
    convert(vecfmt, tmp_path / "m.vfm", out)

    md = pq.ParquetFile(out).metadata
    assert md.num_rows == rows.size
    assert md.num_row_groups > 1
    ranges = []
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        for c in range(rg.num_columns):
            assert rg.column(c).compression == "ZSTD"
        st = rg.column(0).statistics
        assert st is not None and st.has_min_max
        ranges.append((st.min, st.max))
    # Whole rows per group, in order: groups never share a row.
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:])), ranges

    k = 4321
    got = pd.read_parquet(out, filters=[("row", "==", k)])
    assert (got["row"] == k).all() and len(got) == per_row
    sel = rows == k
    assert_same_entries(coo_dict(got["row"], got["col"], got["value"].to_numpy()), coo_dict(rows[sel], cols[sel], vals[sel]))
    # The statistics let pyarrow skip every other row group.
    frag = next(ds.dataset(out).get_fragments())
    assert len(frag.split_by_row_group(ds.field("row") == k)) == 1


def test_list_layout_round_trip(vecfmt, tmp_path):
    rng = np.random.default_rng(5)
    n_rows, n_cols = 50, 300
    recs = []
    for r in sorted(rng.choice(n_rows, 30, replace=False)):
        idx = rng.choice(n_cols, rng.integers(0, 12), replace=False)  # unsorted within a record
        recs.append((int(r), idx.astype(np.int32), rng.standard_normal(len(idx)), f"vec{r}"))
    t = pa.table(
        {
            "row": pa.array([r[0] for r in recs], pa.int64()),
            "indices": pa.array([r[1] for r in recs], pa.list_(pa.int32())),
            "values": pa.array([r[2] for r in recs], pa.list_(pa.float64())),
            "label": [r[3] for r in recs],
        }
    )
    src = tmp_path / "list.parquet"
    pq.write_table(t, src)

    vfm = tmp_path / "m.vfm"
    convert(vecfmt, src, vfm)
    info = vecfmt.inspect(vfm)
    assert info["shape"][0] == recs[-1][0] + 1 and info["has_row_labels"]
    r0 = recs[0]
    got = vecfmt.row(vfm, r0[0])
    assert got["label"] == r0[3] and got["cols"] == sorted(r0[1].tolist())

    out = tmp_path / "out.parquet"
    convert(vecfmt, vfm, out, "--layout", "list")
    back = pq.read_table(out)
    assert back.schema.field("indices").type.value_type == pa.int32()
    assert back.schema.field("values").type.value_type == pa.float64()
    back = back.to_pandas()
    want = {r[0]: (r[1], r[2], r[3]) for r in recs if len(r[1])}
    assert list(back["row"]) == sorted(want)  # one record per non-empty row, sorted
    for row, idx, v, label in zip(back["row"], back["indices"], back["values"], back["label"]):
        w_idx, w_v, w_label = want[row]
        order = np.argsort(w_idx)
        assert idx.tolist() == w_idx[order].tolist() and bits(v) == bits(w_v[order]) and label == w_label
    # Rows without records keep their labels through the metadata.
    meta = pq.read_metadata(out).metadata
    labels = json.loads(meta[b"vecfmt.row_labels"])
    assert len(labels) == info["shape"][0] and labels[r0[0]] == r0[3]

    # The list file reads back into the same matrix; and COO -> list -> COO is the identity.
    convert(vecfmt, out, tmp_path / "m2.vfm")
    for r in (recs[0][0], recs[-1][0]):
        assert vecfmt.row(tmp_path / "m2.vfm", r) == vecfmt.row(vfm, r)
    convert(vecfmt, tmp_path / "m2.vfm", tmp_path / "coo.parquet", "--layout", "coo")
    coo = pd.read_parquet(tmp_path / "coo.parquet")
    assert len(coo) == sum(len(r[1]) for r in recs)


def test_shape_and_metadata_from_key_value_metadata_survive(vecfmt, tmp_path):
    """Empty trailing rows and columns survive through vecfmt.shape; .vfm metadata through
    vecfmt.metadata."""
    t = pa.table({"row": pa.array([0, 2], pa.int64()), "col": pa.array([1, 0], pa.int64()), "value": [1.0, 2.0]})
    t = t.replace_schema_metadata({"vecfmt.shape": "[10, 20]", "vecfmt.metadata": json.dumps({"corpus": "x", "n": 3})})
    pq.write_table(t, tmp_path / "s.parquet")
    convert(vecfmt, tmp_path / "s.parquet", tmp_path / "m.vfm")
    info = vecfmt.inspect(tmp_path / "m.vfm")
    assert info["shape"] == [10, 20] and info["metadata"] == {"corpus": "x", "n": 3}
    convert(vecfmt, tmp_path / "m.vfm", tmp_path / "out.parquet")
    schema_meta = pq.read_schema(tmp_path / "out.parquet").metadata
    assert json.loads(schema_meta[b"vecfmt.shape"]) == [10, 20]
    assert json.loads(schema_meta[b"vecfmt.metadata"]) == {"corpus": "x", "n": 3}
    convert(vecfmt, tmp_path / "out.parquet", tmp_path / "m2.vfm")
    assert vecfmt.inspect(tmp_path / "m2.vfm")["shape"] == [10, 20]


def test_labels_over_32_mib_survive_and_pyarrow_reads_the_file(vecfmt, tmp_path):
    """Labels whose JSON is over 32 MiB go into the footer in parts of at most 32 MiB (pyarrow
    refuses a single footer string over 100 MB): pandas and pyarrow still open the file, the
    parts join to every label, and the labels of empty rows and columns survive a
    .vfm -> Parquet -> .vfm round trip."""
    import anndata as ad
    import scipy.sparse as sp

    n_rows, n_cols = 20, 900_000
    cols = [f"gene-{j:07d}-ensembl-transcript-variant-é" for j in range(n_cols)]  # 44 bytes of JSON each
    rows = [f"cell-{i}" for i in range(n_rows)]
    m = sp.csr_matrix(
        (np.arange(1, 31, dtype=np.float32), (np.arange(30) % 19, np.arange(30) * 29_989)), shape=(n_rows, n_cols)
    )
    assert m.getnnz(axis=1)[19] == 0  # row 19 and most columns are empty
    src = tmp_path / "in.h5ad"
    ad.AnnData(X=m, obs=pd.DataFrame(index=rows), var=pd.DataFrame(index=cols)).write_h5ad(src)
    vfm = tmp_path / "m.vfm"
    convert(vecfmt, src, vfm)
    for layout in ("coo", "list"):
        check_big_labels(vecfmt, tmp_path / layout, vfm, layout, m, rows, cols)


def check_big_labels(vecfmt, tmp_path, vfm, layout, m, rows, cols):
    import anndata as ad

    tmp_path.mkdir()
    out = tmp_path / "m.parquet"
    convert(vecfmt, vfm, out, "--layout", layout)

    meta = pq.read_metadata(out).metadata
    assert b"vecfmt.col_labels" not in meta
    n_parts = int(meta[b"vecfmt.col_labels.parts"])
    assert n_parts >= 2
    parts = [meta[f"vecfmt.col_labels.{k}".encode()] for k in range(n_parts)]
    assert max(len(p) for p in parts) <= 32 << 20 and sum(len(p) for p in parts) > 32 << 20
    assert [c for p in parts for c in json.loads(p)] == cols
    assert json.loads(meta[b"vecfmt.row_labels.0"]) == rows
    df = pd.read_parquet(out)
    assert len(df) == (m.nnz if layout == "coo" else np.count_nonzero(m.getnnz(axis=1)))
    assert pq.read_table(out).num_rows == len(df)

    back = tmp_path / "back.vfm"
    convert(vecfmt, out, back)
    again = tmp_path / "back.h5ad"
    convert(vecfmt, back, again)
    a = ad.read_h5ad(again)
    assert list(a.obs_names) == rows and list(a.var_names) == cols
    assert (a.X != m).nnz == 0


def bad(tmp_path, name, table=None, raw=None):
    p = tmp_path / name
    if table is not None:
        pq.write_table(table, p)
    else:
        p.write_bytes(raw)
    return p


@pytest.mark.parametrize(
    "name,make,needles",
    [
        (
            "cols.parquet",
            lambda: pa.table({"a": [0], "b": [1], "c": [2.0]}),
            ["a (Int64), b (Int64), c (Float64)", "row/col/value, i/j/v, row/col/data, soma_dim_0/soma_dim_1/soma_data", "--row-col"],
        ),
        ("neg.parquet", lambda: pa.table({"row": [0, -3], "col": [1, 1], "value": [1.0, 1.0]}), ["negative index (-3)", "record 1"]),
        ("negcol.parquet", lambda: pa.table({"row": [0, 3], "col": pa.array([1, -1], pa.int8()), "value": [1.0, 1.0]}), ["negative index (-1)"]),
        ("null.parquet", lambda: pa.table({"row": [0, 1], "col": [1, 1], "value": [1.0, None]}), ["null", "record 1"]),
        ("nullrow.parquet", lambda: pa.table({"row": [None, 1], "col": [1, 1], "value": [1.0, 2.0]}), ["null", "record 0"]),
        ("str.parquet", lambda: pa.table({"row": [0], "col": [1], "value": ["x"]}), ["not numeric"]),
        ("bool.parquet", lambda: pa.table({"row": [0], "col": [1], "value": [True]}), ["not numeric"]),
        ("floatidx.parquet", lambda: pa.table({"row": [0.0], "col": [1], "value": [1.0]}), ["indices must be integers or strings"]),
        (
            "listlen.parquet",
            lambda: pa.table({"row": [0], "indices": pa.array([[1, 2]], pa.list_(pa.int32())), "values": pa.array([[1.0]])}),
            ["2 indices but 1 values"],
        ),
    ],
)
def test_bad_tables_fail_cleanly(vecfmt, tmp_path, name, make, needles):
    p = bad(tmp_path, name, table=make())
    for out in ("out.vfm", "out.parquet"):
        err = vecfmt.fail("convert", p, tmp_path / out)
        assert name in err
        for n in needles:
            assert n in err, err
        no_leftovers(tmp_path, [name])


def test_corrupt_truncated_and_empty_inputs_fail_cleanly(vecfmt, tmp_path):
    good = tmp_path / "good.parquet"
    pd.DataFrame({"row": np.arange(5000) // 10, "col": np.arange(5000) % 10, "value": np.ones(5000)}).to_parquet(good)
    data = good.read_bytes()
    for name, raw in [
        ("truncated.parquet", data[: len(data) // 2]),
        ("tail-cut.parquet", data[:-3]),
        ("noise.parquet", bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8))),
        ("empty.parquet", b""),
    ]:
        p = bad(tmp_path, name, raw=raw)
        err = vecfmt.fail("convert", p, tmp_path / "out.vfm")
        assert name in err and "Parquet" in err, err
    # Damaged data pages (the footer intact): an error or, if the damage is in values, a file;
    # never a crash and never a partial output.
    footer = int.from_bytes(data[-8:-4], "little")
    for pos in range(100, len(data) - footer - 8, 1500):
        b = bytearray(data)
        b[pos] ^= 0xFF
        p = bad(tmp_path, "flipped.parquet", raw=bytes(b))
        res = vecfmt._call(["convert", p, tmp_path / "flip.vfm"])
        assert res.returncode in (0, 1), res.stderr
        assert "panicked" not in res.stderr
        if res.returncode:
            assert "flipped.parquet" in res.stderr and not (tmp_path / "flip.vfm").exists()
        (tmp_path / "flip.vfm").unlink(missing_ok=True)
    empty_dir = tmp_path / "emptydir"
    empty_dir.mkdir()
    (empty_dir / "_SUCCESS").write_bytes(b"")
    err = vecfmt.fail("convert", empty_dir, tmp_path / "out.vfm", "--from", "parquet")
    assert "no Parquet data files" in err
    assert not (tmp_path / "out.vfm").exists()
    assert not list(tmp_path.glob(".*tmp"))


def test_unknown_layout_lists_the_candidates(vecfmt, tmp_path):
    pd.DataFrame({"row": [0], "col": [0], "value": [1.0]}).to_parquet(tmp_path / "a.parquet")
    convert(vecfmt, tmp_path / "a.parquet", tmp_path / "m.vfm")
    err = vecfmt.fail("convert", tmp_path / "m.vfm", tmp_path / "o.parquet", "--layout", "csr")
    assert "coo, list" in err
    assert not (tmp_path / "o.parquet").exists()


def peak_rss_of(vecfmt, *args) -> int:
    """Runs vecfmt in a fresh Python process and returns the child's peak RSS in bytes."""
    import subprocess
    import sys

    code = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "assert p.returncode == 0, p.stderr\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    p = subprocess.run([sys.executable, "-c", code, str(vecfmt.binary), *map(str, args)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return int(p.stdout) * 1024


def test_memory_stays_bounded_below_the_data_size(vecfmt, tmp_path):
    """4,000,000 entries (80 MB as in-memory triplets) convert both ways with --memory 8M,
    batch by batch, in less memory than the data itself takes."""
    n_rows, per_row = 40_000, 100
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), per_row)
    cols = np.tile(np.arange(per_row, dtype=np.int64) * 37, n_rows) + rows % 37
    vals = (rows % 11 + 1).astype(np.float32)
    src = tmp_path / "big.parquet"
    pq.write_table(pa.table({"row": rows, "col": cols, "value": vals}), src)  # pyarrow's own row groups
    as_triplets = rows.size * (8 + 8 + 4)

    rss_in = peak_rss_of(vecfmt, "convert", src, tmp_path / "big.vfm", "--memory", "8M")
    rss_out = peak_rss_of(vecfmt, "convert", tmp_path / "big.vfm", tmp_path / "out.parquet", "--memory", "8M")
    assert rss_in < as_triplets and rss_out < as_triplets, (rss_in, rss_out, as_triplets)

    md = pq.read_metadata(tmp_path / "out.parquet")
    assert md.num_rows == rows.size and md.num_row_groups > 1
    got = pd.read_parquet(tmp_path / "out.parquet", filters=[("row", "==", 32345)])
    assert got["col"].tolist() == cols[rows == 32345].tolist()
    assert got["value"].tolist() == vals[rows == 32345].tolist()


def test_unsorted_input_converts_under_a_small_budget(vecfmt, tmp_path):
    """Shuffled records come as triplets, which convert sorts out of core: with --memory 8M
    the peak RSS stays the same whether the input has 0.5 or 2 million entries."""
    rng = np.random.default_rng(9)
    peaks = []
    for n_rows in (5_000, 20_000):
        per_row = 100
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), per_row)
        cols = np.tile(np.arange(per_row, dtype=np.int64) * 41, n_rows) + rows % 41
        vals = (rows % 13 + cols % 7).astype(np.float64)
        p = rng.permutation(rows.size)
        src = tmp_path / f"shuffled{n_rows}.parquet"
        pq.write_table(pa.table({"row": rows[p], "col": cols[p], "value": vals[p]}), src, row_group_size=250_000)
        vfm = tmp_path / f"m{n_rows}.vfm"
        peaks.append(peak_rss_of(vecfmt, "convert", src, vfm, "--memory", "8M"))
        assert vecfmt.inspect(vfm)["nnz"] == rows.size
        for k in (0, n_rows // 2, n_rows - 1):
            r = vecfmt.row(vfm, k)
            assert r["cols"] == cols[rows == k].tolist() and r["values"] == vals[rows == k].tolist()
    assert peaks[1] < peaks[0] * 1.25 + (8 << 20), peaks


# --- `convert --shape`: inputs that do not carry their shape -------------------------------


def pyarrow_list_table(rng, n_rows, n_cols, per_row):
    """The list layout as pyarrow users write it: row, indices: list<int32>, values:
    list<float>; no vecfmt metadata. The widest index stays below n_cols - 1."""
    idx = [np.sort(rng.choice(n_cols - 1000, per_row, replace=False)).astype(np.int32) for _ in range(n_rows)]
    vals = [rng.standard_normal(per_row).astype(np.float32) for _ in range(n_rows)]
    t = pa.table(
        {
            "row": pa.array(np.arange(n_rows), pa.int64()),
            "indices": pa.array(idx, pa.list_(pa.int32())),
            "values": pa.array(vals, pa.list_(pa.float32())),
        }
    )
    return t, idx, vals


def test_shape_flag_gives_pyarrow_lists_their_shape(vecfmt, tmp_path):
    import scipy.sparse as sp

    rng = np.random.default_rng(20)
    t, idx, vals = pyarrow_list_table(rng, 200, 4_000_000, 30)
    src = tmp_path / "lists.parquet"
    pq.write_table(t, src)
    assert b"vecfmt.shape" not in (pq.read_metadata(src).metadata or {})
    widest = max(int(i.max()) for i in idx)
    assert widest < 4_000_000 - 1

    # Without --shape the widest index decides; with it, the shape is the one stated.
    convert(vecfmt, src, tmp_path / "inferred.vfm")
    assert vecfmt.inspect(tmp_path / "inferred.vfm")["shape"] == [200, widest + 1]
    vfm, npz = tmp_path / "m.vfm", tmp_path / "m.npz"
    convert(vecfmt, src, vfm, "--shape", "200,4000000")
    assert vecfmt.inspect(vfm)["shape"] == [200, 4_000_000]
    convert(vecfmt, src, npz, "--shape", "200,4000000")
    m = sp.load_npz(npz)
    assert m.shape == (200, 4_000_000)
    for r in (0, 117, 199):
        row = m.getrow(r)
        assert row.indices.tolist() == idx[r].tolist() and bits(row.data) == bits(vals[r])

    # Parquet output has no shape field: the shape goes into vecfmt.shape and comes back.
    out = tmp_path / "out.parquet"
    convert(vecfmt, src, out, "--shape", "200,4000000", "--layout", "list")
    assert json.loads(pq.read_metadata(out).metadata[b"vecfmt.shape"]) == [200, 4_000_000]
    convert(vecfmt, out, tmp_path / "back.npz")
    assert sp.load_npz(tmp_path / "back.npz").shape == (200, 4_000_000)
    # ... and the same shape stated again agrees with it; another one is refused.
    convert(vecfmt, out, tmp_path / "again.vfm", "--shape", "200,4000000")
    err = vecfmt.fail("convert", out, tmp_path / "no.vfm", "--shape", "200,5000000")
    assert "out.parquet" in err and "200 x 5000000" in err and "200 x 4000000" in err, err
    assert not (tmp_path / "no.vfm").exists()


def test_shape_flag_on_a_pandas_coo_frame(vecfmt, tmp_path):
    import scipy.sparse as sp

    rng = np.random.default_rng(21)
    rows, cols, vals = random_coo(rng, 50, 3000, 400, "float64")
    order = rng.permutation(len(rows))
    df = pd.DataFrame({"row": rows[order], "col": cols[order], "value": vals[order]})
    src = tmp_path / "coo.parquet"
    df.to_parquet(src, index=False)
    npz = tmp_path / "m.npz"
    convert(vecfmt, src, npz, "--shape", "80,10000")
    m = sp.load_npz(npz).tocoo()
    assert m.shape == (80, 10_000)
    assert_same_entries(coo_dict(m.row, m.col, m.data), coo_dict(rows, cols, vals))


@pytest.mark.parametrize("layout", ["coo", "list"])
def test_index_past_the_stated_shape_is_an_error_and_leaves_nothing(vecfmt, tmp_path, layout):
    if layout == "coo":
        df = pd.DataFrame({"row": [0, 3, 1], "col": [5, 70, 2], "value": [1.0, 2.0, 3.0]})
        df.to_parquet(tmp_path / "in.parquet", index=False)
    else:
        t = pa.table(
            {
                "row": pa.array([0, 3], pa.int64()),
                "indices": pa.array([[5], [2, 70]], pa.list_(pa.int32())),
                "values": pa.array([[1.0], [2.0, 3.0]], pa.list_(pa.float64())),
            }
        )
        pq.write_table(t, tmp_path / "in.parquet")
    for out in ("m.vfm", "m.npz"):
        err = vecfmt.fail("convert", tmp_path / "in.parquet", tmp_path / out, "--shape", "4,64")
        assert "in.parquet" in err and "row 3, column 70" in err and "64" in err, err
        no_leftovers(tmp_path, ["in.parquet"])


def test_shape_flag_against_a_carried_shape(vecfmt, tmp_path):
    """.npz carries its shape: the same one is accepted, another is an error naming both."""
    import scipy.sparse as sp

    sp.save_npz(tmp_path / "m.npz", sp.random(10, 20, density=0.2, format="csr", random_state=1))
    convert(vecfmt, tmp_path / "m.npz", tmp_path / "same.vfm", "--shape", "10,20")
    err = vecfmt.fail("convert", tmp_path / "m.npz", tmp_path / "m.vfm", "--shape", "10,30")
    assert "m.npz" in err and "10 x 30" in err and "10 x 20" in err, err
    no_leftovers(tmp_path, ["m.npz", "same.vfm"])


# --- labelled Parquet output: dictionary-encoded label columns ------------------------------


@pytest.mark.parametrize("n_labels", [1, 3, 700])
def test_label_columns_are_categoricals_in_pandas_and_dictionaries_in_pyarrow(vecfmt, tmp_path, n_labels):
    rng = np.random.default_rng(n_labels)
    n_rows, n_cols = n_labels, max(3 * n_labels, 5)
    # The largest case has several row groups, each with a dictionary of its own.
    rows, cols, vals = random_coo(rng, n_rows, n_cols, min(n_rows * n_cols, 700_000), "float32")
    words = [f"wörd{k}" for k in range(n_rows)]
    ctx = [f"ctx{k}" for k in range(n_cols)]
    src = pd.DataFrame(
        {
            "row": pd.Categorical([words[r] for r in rows], categories=words),
            "col": pd.Categorical([ctx[c] for c in cols], categories=ctx),
            "value": vals,
        }
    )
    src.to_parquet(tmp_path / "in.parquet", index=False)
    vfm = tmp_path / "m.vfm"
    convert(vecfmt, tmp_path / "in.parquet", vfm)
    info = vecfmt.inspect(vfm)
    row_labels = [vecfmt.row(vfm, k)["label"] for k in range(info["shape"][0])]

    out = tmp_path / "out.parquet"
    convert(vecfmt, vfm, out)
    t = pq.read_table(out)
    for name in ("row_label", "col_label"):
        assert pa.types.is_dictionary(t.schema.field(name).type), t.schema
        assert t.schema.field(name).type.value_type == pa.string()
    back = pd.read_parquet(out)
    assert isinstance(back["row_label"].dtype, pd.CategoricalDtype)
    assert isinstance(back["col_label"].dtype, pd.CategoricalDtype)
    assert [row_labels[i] for i in back["row"]] == back["row_label"].astype(str).tolist()
    want = {(words[r], ctx[c]): v for r, c, v in zip(rows, cols, vals)}
    got = {(r, c): v for r, c, v in zip(back["row_label"], back["col_label"], back["value"].to_numpy())}
    assert_same_entries(got, want)
    # Every column chunk of the label columns is dictionary-encoded, with min/max statistics.
    pf = pq.ParquetFile(out)
    assert pf.metadata.num_row_groups > 1 or n_labels < 700
    for g in range(pf.metadata.num_row_groups):
        group = pf.read_row_group(g)
        for k in (3, 4):
            c = pf.metadata.row_group(g).column(k)
            assert c.has_dictionary_page and "RLE_DICTIONARY" in c.encodings, c
            labels = group.column(k).to_pylist()
            assert (c.statistics.min, c.statistics.max) == (min(labels), max(labels))
    # And vecfmt reads its own output back to the same matrix.
    convert(vecfmt, out, tmp_path / "m2.vfm")
    for k in (0, info["shape"][0] - 1):
        assert vecfmt.row(tmp_path / "m2.vfm", k) == vecfmt.row(vfm, k)


def test_list_layout_label_is_categorical(vecfmt, tmp_path):
    t = pa.table(
        {
            "row": pa.array([0, 2, 5], pa.int64()),
            "indices": pa.array([[1], [0, 3], [2]], pa.list_(pa.int32())),
            "values": pa.array([[1.0], [2.0, 3.0], [4.0]], pa.list_(pa.float64())),
            "label": ["a", "c", "f"],
        }
    )
    pq.write_table(t, tmp_path / "in.parquet")
    convert(vecfmt, tmp_path / "in.parquet", tmp_path / "m.vfm")
    convert(vecfmt, tmp_path / "m.vfm", tmp_path / "out.parquet", "--layout", "list")
    back = pd.read_parquet(tmp_path / "out.parquet")
    assert isinstance(back["label"].dtype, pd.CategoricalDtype)
    assert back["label"].astype(str).tolist() == ["a", "c", "f"]
    assert pa.types.is_dictionary(pq.read_table(tmp_path / "out.parquet").schema.field("label").type)
