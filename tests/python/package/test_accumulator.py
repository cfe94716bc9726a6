"""vecfmt.Accumulator against numpy/scipy references.

Results are read back with the CLI (`vecfmt convert` to .npz, `vecfmt get --json` for
labels), so these tests do not depend on the reading side of the package.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import scipy.sparse

import vecfmt


@pytest.fixture(scope="module")
def cli(request):
    """The vecfmt CLI (the interop suite's `vecfmt` fixture, renamed: `vecfmt` is the
    package here)."""
    return request.getfixturevalue("vecfmt")


def read_csr(cli, path, tmp_path) -> scipy.sparse.csr_matrix:
    out = tmp_path / f"{path.stem}-readback.npz"
    out.unlink(missing_ok=True)
    cli.run("convert", path, out)
    return scipy.sparse.load_npz(out).tocsr()


def read_labelled(cli, path) -> dict:
    """{(row label, col label): value} of a matrix labelled on both axes."""
    n_rows = cli.inspect(path)["shape"][0]
    out = {}
    for r in range(n_rows):
        row = cli.row(path, r)
        for c, v in zip(row["col_labels"], row["values"]):
            out[(row["label"], c)] = v
    return out


def reference(batches, shape, dtype) -> scipy.sparse.csr_matrix:
    r = np.concatenate([b[0] for b in batches])
    c = np.concatenate([b[1] for b in batches])
    v = np.concatenate([b[2] for b in batches]).astype(np.float64 if dtype.kind == "f" else np.int64)
    return scipy.sparse.coo_matrix((v, (r, c)), shape=shape).tocsr()


def assert_same(got, want):
    assert got.shape == want.shape
    assert (got != want).nnz == 0, f"{(got != want).nnz} cells differ"


def random_batches(rng, n_batches, size, n_rows, n_cols, dtype):
    out = []
    for _ in range(n_batches):
        # Zipf-like rows (a few hot rows take most updates), uniform columns.
        r = np.minimum(rng.zipf(1.3, size) - 1, n_rows - 1).astype(np.int64)
        c = rng.integers(0, n_cols, size)
        if dtype.kind == "f":
            v = rng.integers(1, 8, size) / 4  # quarters: every sum is exact in f32 and f64
        else:
            v = rng.integers(-5, 100, size)
        out.append((r, c, v.astype(dtype)))
    return out


@pytest.mark.parametrize("dtype", ["f32", "f64", "i64"])
def test_matches_reference_with_evictions_and_reloads(cli, tmp_path, dtype):
    np_dtype = np.dtype({"f32": "float32", "f64": "float64", "i64": "int64"}[dtype])
    rng = np.random.default_rng(7)
    n_rows, n_cols = 20_000, 50_000
    batches = random_batches(rng, 8, 100_000, n_rows, n_cols, np_dtype)
    path = tmp_path / "m.vfm"
    acc = vecfmt.Accumulator(path, dtype=dtype, memory="4M", checkpoint=None)
    for i, (r, c, v) in enumerate(batches):
        acc.add(r, c, v)
        if i % 3 == 2:
            acc.commit()
    stats = acc.stats
    assert stats["evictions"] > 0 and stats["reloads"] > 0, stats
    assert stats["commits"] == 2 and stats["memory_budget"] == 4 << 20
    acc.finish()
    assert acc.closed
    rows = max(int(b[0].max()) for b in batches) + 1
    cols = max(int(b[1].max()) for b in batches) + 1
    got = read_csr(cli, path, tmp_path)
    assert got.dtype == np_dtype
    assert_same(got, reference(batches, (rows, cols), np_dtype))


@pytest.mark.parametrize("threads", [None, 1, 3])
def test_a_large_batch_cut_among_threads_matches_the_reference(cli, tmp_path, threads):
    rng = np.random.default_rng(11)
    batches = random_batches(rng, 2, 300_000, 20_000, 50_000, np.dtype("int64"))
    path = tmp_path / "p.vfm"
    with vecfmt.Accumulator(path, dtype="i64", memory="4M", threads=threads) as acc:
        for b in batches:
            acc.add(*b)
        assert acc.stats["evictions"] > 0
    shape = (max(int(b[0].max()) for b in batches) + 1, max(int(b[1].max()) for b in batches) + 1)
    assert_same(read_csr(cli, path, tmp_path), reference(batches, shape, np.dtype("int64")))


def test_scalars_broadcast_and_default_value(cli, tmp_path):
    path = tmp_path / "s.vfm"
    with vecfmt.Accumulator(path, dtype="i64", memory="16M") as acc:
        acc.add(3, np.array([0, 1, 1]))  # values default to 1
        acc.add(np.array([0, 1]), 2, 5)
        acc.add(0, 0, np.array([7]))
        acc.add(np.int32(2), np.uint64(4), np.int16(9))  # numpy scalars
        acc.add([1, 1], [0, 0], [2, 3])  # lists of ints
    want = np.zeros((4, 5), dtype=np.int64)
    want[3, 0] += 1
    want[3, 1] += 2
    want[0, 2] += 5
    want[1, 2] += 5
    want[0, 0] += 7
    want[2, 4] += 9
    want[1, 0] += 5
    np.testing.assert_array_equal(read_csr(cli, path, tmp_path).toarray(), want)


def test_any_int_dtype_strides_and_byte_order_are_read_as_values(cli, tmp_path):
    """Strided views, big-endian and small integer dtypes are converted, never misread."""
    base_r = np.arange(40, dtype=np.int64)
    base_c = np.arange(40, dtype=np.int64)[::-1].copy()
    vals = np.arange(1, 41, dtype=np.float64)
    path = tmp_path / "v.vfm"
    with vecfmt.Accumulator(path, dtype="f64", memory="16M") as acc:
        acc.add(base_r[::2], base_c[::2], vals[::2])  # every other update
        acc.add(base_r[1::4].astype(">i4"), base_c[1::4].astype(np.uint16), vals[1::4].astype(">f8"))
        acc.add(base_r[3::4].astype(np.int8), base_c[3::4].astype(np.uint8), vals[3::4].astype(np.float32))
        acc.add(np.asfortranarray(base_r[:4]), base_c[:4], vals[:4])
        # Unaligned arrays (as an unpickled buffer can give) are copied, never read in place.
        raw = bytearray(8 * 3 * 5 + 1)
        ur, uc, uv = (np.frombuffer(raw, dtype=t, count=5, offset=1 + 40 * k)
                      for k, t in enumerate([np.int64, np.int64, np.float64]))
        assert not (ur.flags.aligned or uc.flags.aligned or uv.flags.aligned)
        ur[:], uc[:], uv[:] = base_r[5:10], base_c[5:10], vals[5:10]
        acc.add(ur, uc, uv)
    want = np.zeros((40, 40))
    want[base_r, base_c] = vals
    want[base_r[:4], base_c[:4]] += vals[:4]
    want[base_r[5:10], base_c[5:10]] += vals[5:10]
    np.testing.assert_array_equal(read_csr(cli, path, tmp_path).toarray(), want)


def test_labels_on_both_axes(cli, tmp_path):
    path = tmp_path / "l.vfm"
    want: dict = {}

    def add(rows, cols, values):
        acc.add(rows, cols, values)
        n = max(len(x) if not isinstance(x, (str, float, int)) else 1 for x in (rows, cols, values))
        rs = [rows] * n if isinstance(rows, str) else list(rows)
        cs = [cols] * n if isinstance(cols, str) else list(cols)
        vs = [values] * n if isinstance(values, (int, float)) else list(values)
        for r, c, v in zip(rs, cs, vs):
            want[(r, c)] = want.get((r, c), 0) + v

    with vecfmt.Accumulator(path, row_labels=True, col_labels=True, memory="16M") as acc:
        add(["cat", "dog", "cat"], ["purr", "bark", "purr"], np.array([1.5, 2.0, 0.25]))
        add(np.array(["emu", "cat"]), ("wing", "bark"), np.array([1.0, 3.0]))  # numpy str array, tuple
        add("dog", ["bark", "wag", "run"], 0.5)  # one label for the batch
        acc.commit()
        add(["ünïcode", "cat"], "purr", 2.0)
    assert read_labelled(cli, path) == pytest.approx(want)


def test_labelled_rows_take_int_cols_and_known_int_row_ids(cli, tmp_path):
    path = tmp_path / "lr.vfm"
    with vecfmt.Accumulator(path, row_labels=True, memory="16M") as acc:
        acc.add(["a", "b"], np.array([5, 6]), 1.0)
        acc.add(np.array([1, 0]), np.array([6, 0]), 2.0)  # ids of labels that exist
        with pytest.raises(vecfmt.InvalidInputError, match="row id 2 .*out of range"):
            acc.add(np.array([0, 2]), np.array([1, 1]), 1.0)  # no label has id 2 yet
    got = read_csr(cli, path, tmp_path).toarray()
    want = np.zeros((2, 7))
    want[0, 5], want[1, 6], want[0, 0] = 1, 3, 2
    np.testing.assert_array_equal(got, want)
    assert cli.inspect(path)["has_row_labels"] and not cli.inspect(path)["has_col_labels"]


def test_mode_a_adds_to_a_finished_and_to_an_unfinished_file(cli, tmp_path):
    path = tmp_path / "a.vfm"
    rng = np.random.default_rng(3)
    batches = random_batches(rng, 3, 20_000, 500, 3000, np.dtype("int64"))
    with vecfmt.Accumulator(path, dtype="i64", memory="8M") as acc:
        acc.add(*batches[0])
    # Last month's file, finished: its dtype is kept without being named.
    acc = vecfmt.Accumulator(path, mode="a", memory="8M", checkpoint=None)
    assert acc.dtype == np.int64
    acc.add(*batches[1])
    acc.commit()
    acc.close()  # left unfinished, at its last commit
    with vecfmt.Accumulator(path, mode="a", dtype="i64", memory="8M") as acc:
        acc.add(*batches[2])
    shape = (max(int(b[0].max()) for b in batches) + 1, max(int(b[1].max()) for b in batches) + 1)
    assert_same(read_csr(cli, path, tmp_path), reference(batches, shape, np.dtype("int64")))
    with pytest.raises(vecfmt.DTypeError):
        vecfmt.Accumulator(path, mode="a", dtype="f32")


def test_mode_a_keeps_labels(cli, tmp_path):
    path = tmp_path / "al.vfm"
    with vecfmt.Accumulator(path, row_labels=True, col_labels=True, memory="8M") as acc:
        acc.add(["x", "y"], ["p", "q"], 1.0)
    with vecfmt.Accumulator(path, mode="a", memory="8M") as acc:
        acc.add(["y", "z"], ["q", "p"], 2.0)
    assert read_labelled(cli, path) == {("x", "p"): 1.0, ("y", "q"): 3.0, ("z", "p"): 2.0}


def test_mode_a_creates_a_missing_file_and_mode_x_refuses_an_existing_one(cli, tmp_path):
    path = tmp_path / "x.vfm"
    with vecfmt.Accumulator(path, mode="a", memory="8M") as acc:
        acc.add(0, 1, 2.0)
    before = path.read_bytes()
    with pytest.raises(vecfmt.OutputExistsError) as e:
        vecfmt.Accumulator(path, mode="x")
    assert isinstance(e.value, FileExistsError) and str(path) in str(e.value)
    assert path.read_bytes() == before
    with vecfmt.Accumulator(path, mode="w", memory="8M") as acc:  # "w" replaces
        acc.add(1, 0, 4.0)
    np.testing.assert_array_equal(read_csr(cli, path, tmp_path).toarray(), [[0], [4]])  # the old (0, 1) is gone
    with pytest.raises(ValueError, match="mode"):
        vecfmt.Accumulator(tmp_path / "y.vfm", mode="r")


def test_integer_overflow_raises(tmp_path):
    acc = vecfmt.Accumulator(tmp_path / "o.vfm", dtype="i32", memory="8M")
    big = 2**31 - 1
    with pytest.raises(vecfmt.DTypeError, match="i32"):
        acc.add(0, 0, 2**31)  # a value beyond the dtype: refused before it is added
    acc.add(np.array([0, 0]), np.array([0, 0]), np.array([big, 1]))  # the sum overflows
    with pytest.raises(vecfmt.DTypeError, match="overflow"):
        acc.commit()
    acc.close()

    acc = vecfmt.Accumulator(tmp_path / "o64.vfm", dtype="i64", memory="8M")
    acc.add(np.zeros(3, np.int64), np.zeros(3, np.int64), np.full(3, 2**62))
    with pytest.raises(vecfmt.DTypeError, match="overflow"):
        acc.finish()


def test_four_threads_add_at_once_and_the_sum_is_exact(cli, tmp_path):
    path = tmp_path / "t.vfm"
    n_rows, n_cols = 3000, 5000
    acc = vecfmt.Accumulator(path, dtype="i64", memory="8M", checkpoint=0.05)
    barrier = threading.Barrier(4)
    errors = []

    def work(seed):
        try:
            rng = np.random.default_rng(seed)
            barrier.wait()
            for _ in range(6):
                r = rng.integers(0, n_rows, 20_000)
                c = rng.integers(0, n_cols, 20_000)
                acc.add(r, c, 1)
                time.sleep(0.02)  # so that the checkpoint falls between adds
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert acc.stats["commits"] >= 1  # the checkpoint committed while threads were adding
    acc.finish()
    batches = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        for _ in range(6):
            batches.append((rng.integers(0, n_rows, 20_000), rng.integers(0, n_cols, 20_000), np.ones(20_000, np.int64)))
    got = read_csr(cli, path, tmp_path)
    assert got.sum() == 4 * 6 * 20_000
    assert_same(got, reference(batches, got.shape, np.dtype("int64")))


def test_the_gil_is_released_while_adding(tmp_path):
    acc = vecfmt.Accumulator(tmp_path / "g.vfm", memory="64M", checkpoint=None)
    n = 3_000_000
    rng = np.random.default_rng(0)
    r = rng.integers(0, 100_000, n, dtype=np.int32)
    c = rng.integers(0, 1_000_000, n, dtype=np.int32)
    ticks = 0
    running = threading.Event()
    stop = threading.Event()

    def ticker():
        nonlocal ticks
        running.set()
        while not stop.is_set():
            ticks += 1
            time.sleep(0.0005)

    t = threading.Thread(target=ticker)
    t.start()
    running.wait()
    start_ticks = ticks
    t0 = time.perf_counter()
    acc.add(r, c, 1.0)
    took = time.perf_counter() - t0
    during = ticks - start_ticks
    stop.set()
    t.join()
    acc.close()
    # Holding the GIL for the whole add would allow one or two ticks (the switch interval
    # is 5 ms); released, the ticker runs every millisecond or so.
    assert took > 0.02, f"the add was too short to tell ({took:.3f} s)"
    assert during >= max(5, took * 50), f"{during} ticks in {took:.3f} s"


def test_checkpoint_commits_automatically(tmp_path):
    acc = vecfmt.Accumulator(tmp_path / "c.vfm", memory="8M", checkpoint="0.05s")
    acc.add(0, 0, 1.0)
    time.sleep(0.1)
    acc.add(0, 1, 1.0)
    assert acc.stats["commits"] >= 1
    acc.close()
    never = vecfmt.Accumulator(tmp_path / "n.vfm", memory="8M", checkpoint=None)
    never.add(0, 0, 1.0)
    time.sleep(0.06)
    never.add(0, 0, 1.0)
    assert never.stats["commits"] == 0
    never.close()
    with pytest.raises(vecfmt.InvalidInputError, match="duration"):
        vecfmt.Accumulator(tmp_path / "b.vfm", checkpoint="soon")
    with pytest.raises(vecfmt.InvalidInputError, match="size"):
        vecfmt.Accumulator(tmp_path / "b.vfm", memory="lots")


def test_closed_accumulator_refuses_more_work(tmp_path):
    acc = vecfmt.Accumulator(tmp_path / "z.vfm", memory="8M")
    acc.add(0, 0, 1.0)
    acc.finish()
    for call in (lambda: acc.add(0, 0, 1.0), acc.commit, acc.finish):
        with pytest.raises(ValueError, match="closed"):
            call()
    acc.close()  # closing twice is fine
    assert acc.stats["commits"] >= 1


@pytest.mark.parametrize("method", ["add", "commit", "finish", "close"])
def test_a_panic_in_vecfmt_is_a_runtime_error_and_the_file_keeps_its_last_commit(cli, tmp_path, monkeypatch, method):
    # PyO3 raises a panic as PanicException, a BaseException that `except Exception` misses.
    path = tmp_path / "p.vfm"
    acc = vecfmt.Accumulator(path, memory="8M", dtype="f64", n_rows=4, n_cols=4, checkpoint=None)
    acc.add([1, 2], [2, 3], [3.0, 4.0])
    acc.commit()
    acc.add(1, 2, 10.0)  # after the commit: not in the file
    monkeypatch.setenv("VECFMT_TEST_ACCUMULATOR_PANIC", method)
    call = {"add": lambda: acc.add(0, 0, 1.0), "commit": acc.commit, "finish": acc.finish, "close": acc.close}[method]
    try:
        call()
    except Exception as e:  # noqa: BLE001 - the point: an Exception, not a BaseException
        caught = e
    else:
        pytest.fail("no error")
    assert type(caught) is RuntimeError, type(caught)
    assert str(path) in str(caught) and f"a panic in Accumulator.{method}" in str(caught), caught
    monkeypatch.delenv("VECFMT_TEST_ACCUMULATOR_PANIC")
    assert acc.closed
    with pytest.raises(ValueError, match="closed"):
        acc.add(0, 0, 1.0)
    got = read_csr(cli, path, tmp_path).toarray()
    want = np.zeros((4, 4))
    want[1, 2], want[2, 3] = 3.0, 4.0
    np.testing.assert_array_equal(got, want)


# Bad input: each case raises and writes nothing. Every bad batch starts with valid updates,
# so a batch added in part would show in the result.
BAD = [
    ("mismatched lengths", dict(rows=np.array([0, 1, 2]), cols=np.array([0, 1]), values=1.0), vecfmt.InvalidInputError),
    ("values of another length", dict(rows=np.array([0, 1]), cols=np.array([0, 1]), values=np.ones(3)), vecfmt.InvalidInputError),
    ("float ids", dict(rows=np.array([0.0, 1.0]), cols=np.array([0, 1]), values=1.0), TypeError),
    ("a float id", dict(rows=1.0, cols=np.array([0, 1]), values=1.0), TypeError),
    ("a list of float ids", dict(rows=[0, 1.5], cols=[0, 1], values=1.0), TypeError),
    ("negative ids", dict(rows=np.array([0, 1, -1]), cols=np.array([0, 1, 2]), values=1.0), vecfmt.InvalidInputError),
    ("a negative col id", dict(rows=np.array([0, 1]), cols=-3, values=1.0), vecfmt.InvalidInputError),
    ("ids past n_rows", dict(rows=np.array([0, 1, 10]), cols=np.array([0, 1, 2]), values=1.0), vecfmt.InvalidInputError),
    ("bool ids", dict(rows=np.array([True, False]), cols=np.array([0, 1]), values=1.0), TypeError),
    ("a 2-D array", dict(rows=np.zeros((2, 2), np.int64), cols=np.array([0, 1]), values=1.0), vecfmt.InvalidInputError),
    ("labels without labels", dict(rows=["cat", "dog"], cols=np.array([0, 1]), values=1.0), vecfmt.LabelError),
    ("NaN into an integer matrix", dict(rows=np.array([0, 1]), cols=np.array([0, 1]), values=np.array([1.0, np.nan])), vecfmt.DTypeError),
    ("a fraction into an integer matrix", dict(rows=np.array([0, 1]), cols=np.array([0, 1]), values=np.array([1.0, 2.5])), vecfmt.DTypeError),
    ("a value past the dtype", dict(rows=np.array([0, 1]), cols=np.array([0, 1]), values=np.array([1, 2**40])), vecfmt.DTypeError),
    ("string values", dict(rows=np.array([0, 1]), cols=np.array([0, 1]), values=np.array(["1", "2"])), TypeError),
]


@pytest.mark.parametrize("case, kwargs, exc", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_and_writes_nothing(cli, tmp_path, case, kwargs, exc):
    path = tmp_path / "bad.vfm"
    acc = vecfmt.Accumulator(path, dtype="i32", memory="8M", n_rows=5, checkpoint=None)
    acc.add(np.array([2, 3]), np.array([2, 3]), np.array([10, 20]))
    with pytest.raises(exc) as e:
        acc.add(**kwargs)
    assert str(e.value), "the error says what was wrong"
    acc.finish()
    want = np.zeros((5, 4), np.int32)
    want[2, 2], want[3, 3] = 10, 20
    np.testing.assert_array_equal(read_csr(cli, path, tmp_path).toarray(), want)


def test_labels_on_an_axis_of_a_file_without_labels_name_the_file(tmp_path):
    path = tmp_path / "nl.vfm"
    acc = vecfmt.Accumulator(path, memory="8M")
    with pytest.raises(vecfmt.LabelError, match="nl.vfm.*no labels") as e:
        acc.add(0, "cat", 1.0)
    assert isinstance(e.value, KeyError)
    acc.close()
    with vecfmt.Accumulator(path, memory="8M") as acc:
        acc.add(3, 4, 1.0)
    with pytest.raises(vecfmt.LabelError, match="nl.vfm.*ids, not labels"):
        vecfmt.Accumulator(path, mode="a", row_labels=True)
