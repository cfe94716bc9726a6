"""vecfmt.dask on a LocalCluster of worker processes: the result equals one process's,
the distributed vocabulary equals one pass's, a killed worker's task is rerun and counted
once, and bad input names its shard and file and leaves no output."""

import os
import pathlib

import numpy as np
import pytest
import scipy.sparse as sp

import vecfmt

distributed = pytest.importorskip("distributed")
import vecfmt.dask  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """Three files (one gzipped) cut from the sample corpus: about 300 KB."""
    import gzip

    d = tmp_path_factory.mktemp("corpus")
    lines = (REPO / "testdata" / "sample" / "corpus.txt").read_text().splitlines(keepends=True)[:6000]
    paths = []
    for k in range(3):
        part = "".join(lines[k * 2000:(k + 1) * 2000])
        if k == 1:
            p = d / f"part{k}.txt.gz"
            p.write_bytes(gzip.compress(part.encode()))
        else:
            p = d / f"part{k}.txt"
            p.write_text(part)
        paths.append(str(p))
    return paths


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


def load(cli, path, tmp_path):
    out = tmp_path / (os.path.basename(path) + ".npz")
    cli.run("convert", path, out, "--force")
    return sp.load_npz(out)


def labels(cli, path):
    info = cli.inspect(path)
    return info["shape"], info.get("has_row_labels")


def assert_bit_equal(cli, a, b, tmp_path):
    x, y = load(cli, a, tmp_path), load(cli, b, tmp_path)
    assert x.shape == y.shape and x.dtype == y.dtype
    assert np.array_equal(x.indptr, y.indptr) and np.array_equal(x.indices, y.indices)
    assert x.data.tobytes() == y.data.tobytes()
    for w in ["the", "wolf", "cat"]:
        assert cli.run("get", a, "--label", w).stdout == cli.run("get", b, "--label", w).stdout


@pytest.mark.parametrize("shards", [1, 3, 8])
def test_equals_one_process(client, small_corpus, tmp_path, cli, shards):
    one = tmp_path / "one.vfm"
    vecfmt.cooccur(small_corpus, one, window=5, min_count=3, memory="64M", threads=1)
    out = tmp_path / "dask.vfm"
    s = vecfmt.dask.cooccur(small_corpus, out, client, shards=shards, memory_per_task="32M", window=5,
                            min_count=3)
    assert s["shards"] == shards and set(s["phases"]) == {"vocab", "count", "merge"}
    assert_bit_equal(cli, out, one, tmp_path)
    # The working directory is gone.
    assert [n for n in os.listdir(tmp_path) if "vecfmt-dask" in n] == []


def test_distributed_vocabulary_equals_one_pass(client, small_corpus, tmp_path):
    for min_count, max_vocab in [(1, None), (4, None), (2, 500), (5, 137)]:
        single = tmp_path / f"single-{min_count}-{max_vocab}.tsv"
        opts = dict(min_count=min_count, max_vocab=max_vocab)
        vecfmt.cooccur(small_corpus, tmp_path / "x.vfm", window=2, memory="32M", save_vocab=single,
                       overwrite=True, **opts)
        parts = []
        futures = [client.submit(vecfmt.vocab_part, small_corpus, str(tmp_path / f"v{k}.tsv"), shard=(k, 4))
                   for k in range(1, 5)]
        for f in futures:
            parts.append(f.result()["output"])
        merged = tmp_path / f"merged-{min_count}-{max_vocab}.tsv"
        vecfmt.vocab_merge(parts, merged, **opts)
        assert merged.read_bytes() == single.read_bytes()


def test_given_vocabulary_and_a_task_run_twice(client, small_corpus, tmp_path, cli):
    vocab = tmp_path / "vocab.tsv"
    one = tmp_path / "one.vfm"
    vecfmt.cooccur(small_corpus, one, window=3, min_count=2, memory="64M", threads=1, save_vocab=vocab)
    # A count task run twice (a duplicate the scheduler started elsewhere) leaves one part.
    part = tmp_path / "part.vfm"
    a = vecfmt.dask._count_task(small_corpus, 2, 3, str(vocab), str(part), "32M", {"window": 3})
    b = vecfmt.dask._count_task(small_corpus, 2, 3, str(vocab), str(part), "32M", {"window": 3})
    assert a == b == str(part)
    out = tmp_path / "dask.vfm"
    vecfmt.dask.cooccur(small_corpus, out, client, shards=3, memory_per_task="32M", window=3, vocab=vocab)
    assert_bit_equal(cli, out, one, tmp_path)


def test_a_killed_worker_is_replaced_and_the_result_is_exact(small_corpus, tmp_path, cli, monkeypatch):
    marker = tmp_path / "killed-once"
    monkeypatch.setenv(vecfmt.dask.FAULT_ENV, f"count:2:{marker}")
    one = tmp_path / "one.vfm"
    vecfmt.cooccur(small_corpus, one, window=4, min_count=2, memory="64M", threads=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as cluster, distributed.Client(cluster) as c:
        out = tmp_path / "dask.vfm"
        vecfmt.dask.cooccur(small_corpus, out, c, shards=4, memory_per_task="32M", window=4, min_count=2)
    assert marker.exists(), "the fault was not injected"
    cli.run("verify", out)
    assert_bit_equal(cli, out, one, tmp_path)


def test_build_with_a_python_fn(client, tmp_path, cli):
    rng = np.random.default_rng(3)
    batches = [(rng.integers(0, 40, 500), rng.integers(0, 3000, 500), rng.random(500)) for _ in range(6)]
    ref = sp.coo_array(
        (np.concatenate([b[2] for b in batches]),
         (np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches]))),
        shape=(40, 3000),
    ).tocsr()
    ref.sum_duplicates()

    def fn(k):
        yield batches[k]

    out = tmp_path / "built.vfm"
    s = vecfmt.dask.build(range(len(batches)), fn, out, client, memory_per_task="32M", dtype="f64",
                          n_rows=40, n_cols=3000, fan_in=2)
    assert s["partitions"] == 6 and s["merge_levels"] >= 2
    got = load(cli, out, tmp_path)
    assert got.shape == ref.shape
    assert np.allclose(got.toarray(), ref.toarray(), rtol=1e-12, atol=0)


def test_build_with_labels_from_a_bag(client, tmp_path, cli):
    db = pytest.importorskip("dask.bag")
    words = ["cat", "dog", "wolf", "mouse"]
    bag = db.from_sequence(range(8), npartitions=4)

    def fn(items):
        for i in items:
            yield [words[i % 4]], np.array([i]), np.array([1.0])

    out = tmp_path / "labelled.vfm"
    s = vecfmt.dask.build(bag, fn, out, client, memory_per_task="32M", row_labels=True, n_cols=8)
    assert s["nnz"] == 8
    info = cli.inspect(out)
    assert info["shape"] == [4, 8] and info["has_row_labels"]
    for i, w in enumerate(words):
        got = cli.run("get", out, "--label", w).stdout.split()
        # Row w holds columns i and i + 4, 1.0 each.
        assert got[0::2] == [str(i), str(i + 4)] and got[1::2] == ["1", "1"], got


def test_bad_input_names_the_shard_and_file(client, small_corpus, tmp_path):
    missing = str(tmp_path / "missing.txt")
    out = tmp_path / "out.vfm"
    with pytest.raises(FileNotFoundError) as e:
        vecfmt.dask.cooccur([small_corpus[0], missing], out, client, shards=2, memory_per_task="32M")
    assert "missing.txt" in str(e.value) and "shard" in str(e.value)
    assert not out.exists()
    assert [n for n in os.listdir(tmp_path) if n != "missing.txt"] == []


def test_parts_of_another_vocabulary_are_not_reused(client, small_corpus, tmp_path, cli):
    # A first run keeps its parts (as a failed run would leave them); the vocabulary file is
    # then rewritten under the same name. The second run must count afresh, not reuse parts
    # of the other vocabulary.
    vocab = tmp_path / "vocab.tsv"
    first = tmp_path / "first.vfm"
    vecfmt.cooccur(small_corpus, first, window=3, min_count=2, memory="64M", threads=1, save_vocab=vocab)
    out = tmp_path / "dask.vfm"
    vecfmt.dask.cooccur(small_corpus, out, client, shards=3, memory_per_task="32M", window=3, vocab=vocab,
                        keep_parts=True)
    os.remove(out)
    one = tmp_path / "one.vfm"
    vecfmt.cooccur(small_corpus, one, window=3, min_count=5, memory="64M", threads=1, save_vocab=vocab,
                   overwrite=True)
    vecfmt.dask.cooccur(small_corpus, out, client, shards=3, memory_per_task="32M", window=3, vocab=vocab)
    assert_bit_equal(cli, out, one, tmp_path)


def test_a_mismatched_dtype_names_the_partition_and_leaves_nothing(client, tmp_path):
    def fn(k):
        # Values with a fraction cannot go into an integer matrix.
        yield np.array([k]), np.array([0]), np.array([0.5 + k])

    out = tmp_path / "ints.vfm"
    with pytest.raises(vecfmt.Error) as e:
        vecfmt.dask.build(range(3), fn, out, client, memory_per_task="32M", dtype="i32", n_rows=3, n_cols=1)
    assert "partition" in str(e.value), str(e.value)
    assert not out.exists()
    assert os.listdir(tmp_path) == []


def test_build_needs_the_extent_of_an_unlabelled_axis(client, tmp_path):
    with pytest.raises(ValueError, match="n_cols"):
        vecfmt.dask.build(range(2), lambda k: iter(()), tmp_path / "m.vfm", client, row_labels=True)
    with pytest.raises(ValueError, match="n_rows"):
        vecfmt.dask.build(range(2), lambda k: iter(()), tmp_path / "m.vfm", client, n_cols=3)
    assert os.listdir(tmp_path) == []

