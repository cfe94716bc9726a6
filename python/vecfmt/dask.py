"""vecfmt on a Dask cluster: ``cooccur`` and your own builds, sharded, retried and
tree-merged by Dask's scheduler (``distributed`` on one machine, ``dask-jobqueue`` on Slurm,
PBS or SGE, Kubernetes or cloud deployments).

Every task reads and writes files, so the inputs, the output's directory and the working
directory must be on storage that every worker sees (one machine, or a shared file system).

- **Vocabulary** (:func:`cooccur` without ``vocab=``): one task per thread of the cluster
  (at most one per shard) counts the words of its byte range; one task sums the partial
  counts and applies ``min_count`` and ``max_vocab`` once (:func:`vecfmt.vocab_merge`).
- **Count**: one task per shard writes a part ``.vfm`` under a temporary name and renames
  it, so a retried or duplicated task gives the same part and nothing is counted twice.
  Parts hold f64 sums.
- **Reduce**: a tree merge with fan-in ``fan_in``; the merges of one level run in parallel.
  The last merge rounds the f64 sums once to ``dtype``, so the result equals
  ``vecfmt.cooccur`` on one machine with the same vocabulary.

The working directory (``.<output>.vecfmt-dask-<hash>`` beside the output) is named after
the inputs and options: a job run again after a failure reuses the parts already finished.
It is removed when the job ends.

Dask is an optional extra (``pip install './python[dask]'``); this module imports it only
when called.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from typing import Any, Callable, Iterable, Sequence

import vecfmt

__all__ = ["cooccur", "build"]

#: A fault-injection seam for the tests: ``"<phase>:<k>:<marker path>"`` makes the first
#: attempt of task k of that phase (``vocab``, ``count``, ``build``, ``merge``) kill its worker
#: process once the marker file does not exist yet (it is created first).
FAULT_ENV = "VECFMT_DASK_FAULT"


def cooccur(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    output: str | os.PathLike,
    client: Any = None,
    shards: int | None = None,
    memory_per_task: int | str | None = None,
    *,
    vocab: str | os.PathLike | None = None,
    min_count: int = 1,
    max_vocab: int | None = None,
    fan_in: int = 8,
    dtype: str = "f32",
    codec: str = "zstd",
    overwrite: bool = False,
    keep_parts: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Counts word co-occurrences on a Dask cluster; the result equals
    :func:`vecfmt.cooccur` on one machine (same labels in the same order, equal values).

    ``shards`` defaults to twice the cluster's threads. ``memory_per_task`` defaults to 60%
    of the worker's memory limit divided by its threads. ``options`` are those of
    :func:`vecfmt.cooccur` (``window``, ``weighting``, ``symmetric``, ``lowercase``,
    ``threads`` per task, default 1). Returns a summary with the time of each phase.

    >>> import os, tempfile, vecfmt, vecfmt.dask
    >>> from distributed import Client, LocalCluster
    >>> d = tempfile.mkdtemp()
    >>> corpus = os.path.join(d, "c.txt")
    >>> _ = open(corpus, "w").write("a b c a b\\nc a b\\nb b a\\n" * 50)
    >>> with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
    ...                   dashboard_address=":0") as cluster, Client(cluster) as client:
    ...     s = vecfmt.dask.cooccur(corpus, os.path.join(d, "c.vfm"), client, shards=3,
    ...                             window=2, memory_per_task="64M")
    >>> s["shards"], s["shape"]
    (3, (3, 3))
    """
    client = _client(client)
    paths = [os.fspath(p) for p in _as_list(inputs)]
    output = os.fspath(output)
    _check_output(output, overwrite)
    shards = shards or max(1, 2 * _cluster_threads(client))
    options = dict(options)
    options.setdefault("threads", 1)
    for forbidden in ("shard", "save_vocab", "progress", "checkpoint", "memory"):
        if forbidden in options:
            raise TypeError(f"vecfmt.dask.cooccur: {forbidden}= is set by the engine, not by the caller")
    # The parts of an earlier attempt are reused only when they were counted from the same
    # inputs, options and vocabulary (its content, not only its name).
    key = _token("cooccur", paths, [_stat(p) for p in paths], shards, options, min_count, max_vocab,
                 _digest(vocab) if vocab else None)
    work = _workdir(output, key)
    phases: dict[str, float] = {}
    try:
        t = time.monotonic()
        if vocab is None:
            lowercase = bool(options.get("lowercase", False))
            # One task per thread of the cluster, not per shard: the partial vocabularies
            # hold most of the words each, and the one merge task reads them all.
            n = max(1, min(shards, _cluster_threads(client)))
            parts = [
                client.submit(_vocab_task, paths, k, n, lowercase, os.path.join(work, f"vocab-{k}-of-{n}.tsv"),
                              key=f"vecfmt-vocab-{key}-{k}-of-{n}", retries=2)
                for k in range(1, n + 1)
            ]
            vocab_path = os.path.join(work, "vocab.tsv")
            client.submit(_vocab_merge_task, parts, vocab_path, min_count, max_vocab,
                          key=f"vecfmt-vocab-merge-{key}", retries=2).result()
        else:
            vocab_path = os.fspath(vocab)
        phases["vocab"] = time.monotonic() - t
        t = time.monotonic()
        counted = [
            client.submit(_count_task, paths, k, shards, vocab_path, os.path.join(work, f"part-{k}.vfm"),
                          memory_per_task, options, key=f"vecfmt-count-{key}-{k}", retries=2)
            for k in range(1, shards + 1)
        ]
        client.gather(counted)
        phases["count"] = time.monotonic() - t
        t = time.monotonic()
        summary = _tree_merge(client, counted, output, work, key, fan_in, dtype, codec, memory_per_task, overwrite)
        phases["merge"] = time.monotonic() - t
    finally:
        if not keep_parts:
            shutil.rmtree(work, ignore_errors=True)
    summary.update(shards=shards, phases=phases)
    return summary


def build(
    partitions: Iterable[Any] | Any,
    fn: Callable[[Any], Iterable[tuple[Any, Any, Any]]],
    output: str | os.PathLike,
    client: Any = None,
    memory_per_task: int | str | None = None,
    *,
    dtype: str = "f32",
    row_labels: bool = False,
    col_labels: bool = False,
    n_rows: int | None = None,
    n_cols: int | None = None,
    fan_in: int = 8,
    codec: str = "zstd",
    overwrite: bool = False,
) -> dict[str, Any]:
    """Builds a matrix from your own updates on a Dask cluster. ``fn(partition)`` yields
    batches ``(rows, cols, values)`` as :meth:`vecfmt.Accumulator.add` takes them (numpy ids
    or labels); each partition (an item of ``partitions``, such as a file name or a byte
    range, or a partition of a ``dask.bag.Bag``) is accumulated into a part by a task, and the
    parts are tree-merged, matched by label when there are labels. An axis without labels is
    matched by position, so its extent (``n_rows`` or ``n_cols``) must be given. Integer
    dtypes are summed exactly; float parts hold f64 sums, rounded once to ``dtype`` at the end.

    >>> import os, tempfile, numpy as np, vecfmt, vecfmt.dask
    >>> from distributed import Client, LocalCluster
    >>> def updates(k):
    ...     yield np.array([k, k]), np.array([0, k]), np.array([1.0, 2.0])
    >>> d = tempfile.mkdtemp()
    >>> with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
    ...                   dashboard_address=":0") as cluster, Client(cluster) as client:
    ...     s = vecfmt.dask.build(range(4), updates, os.path.join(d, "m.vfm"), client,
    ...                           memory_per_task="64M", n_rows=4, n_cols=4)
    >>> s["shape"], s["nnz"]
    ((4, 4), 7)
    """
    for labelled, extent, axis in ((row_labels, n_rows, "rows"), (col_labels, n_cols, "cols")):
        if not labelled and extent is None:
            raise ValueError(
                f"n_{axis} is needed when the {axis[:-1]} axis has no labels: every part must have the same "
                f"number of {axis} to be merged by position"
            )
    client = _client(client)
    output = os.fspath(output)
    _check_output(output, overwrite)
    part_dtype = dtype if dtype.startswith(("i", "u")) else "f64"
    if hasattr(partitions, "to_delayed"):  # a dask.bag.Bag: one task per partition, computed there
        items = client.compute(partitions.to_delayed())
    else:
        items = list(partitions)
    key = _token("build", uuid.uuid4().hex)  # fn is code: no reuse across calls
    work = _workdir(output, key)
    phases: dict[str, float] = {}
    try:
        t = time.monotonic()
        opts = dict(dtype=part_dtype, row_labels=row_labels, col_labels=col_labels, n_rows=n_rows, n_cols=n_cols)
        built = [
            client.submit(_build_task, item, fn, os.path.join(work, f"part-{k}.vfm"), memory_per_task, opts, k,
                          key=f"vecfmt-build-{key}-{k}", retries=2)
            for k, item in enumerate(items, 1)
        ]
        client.gather(built)
        phases["build"] = time.monotonic() - t
        t = time.monotonic()
        summary = _tree_merge(client, built, output, work, key, fan_in, dtype, codec, memory_per_task, overwrite)
        phases["merge"] = time.monotonic() - t
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary.update(partitions=len(items), phases=phases)
    return summary


# ---- the tasks (run on the workers) -------------------------------------------------------


def _vocab_task(paths: list[str], k: int, n: int, lowercase: bool, dest: str) -> str:
    if os.path.exists(dest):  # done by an earlier attempt
        return dest
    _maybe_fail("vocab", k)
    tmp = _tmp_name(dest)
    try:
        vecfmt.vocab_part(paths, tmp, shard=(k, n), lowercase=lowercase, threads=1)
        os.replace(tmp, dest)
    except (vecfmt.Error, OSError) as e:
        raise _in_shard(e, k, n) from e
    finally:
        _remove(tmp)
    return dest


def _vocab_merge_task(parts: list[str], dest: str, min_count: int, max_vocab: int | None) -> str:
    tmp = _tmp_name(dest)
    try:
        vecfmt.vocab_merge(parts, tmp, min_count=min_count, max_vocab=max_vocab)
        os.replace(tmp, dest)
    finally:
        _remove(tmp)
    return dest


def _count_task(paths, k, n, vocab, dest, memory, options) -> str:
    if os.path.exists(dest):
        return dest
    _maybe_fail("count", k)
    tmp = _tmp_name(dest)
    try:
        vecfmt.cooccur(paths, tmp, shard=(k, n), vocab=vocab, dtype="f64", codec="raw", checkpoint=None,
                       memory=_task_memory(memory), **options)
        os.replace(tmp, dest)
    except (vecfmt.Error, OSError) as e:
        raise _in_shard(e, k, n) from e
    finally:
        _remove(tmp)
    return dest


def _build_task(item, fn, dest, memory, opts, k) -> str:
    if os.path.exists(dest):
        return dest
    _maybe_fail("build", k)
    tmp = _tmp_name(dest)
    try:
        with vecfmt.Accumulator(tmp, memory=_task_memory(memory) or "1G", checkpoint=None, mode="w",
                                **opts) as acc:
            for rows, cols, values in fn(item):
                acc.add(rows, cols, values)
        os.replace(tmp, dest)
    except (vecfmt.Error, OSError) as e:
        what = repr(item)
        raise _in_shard(e, k, None, f"partition {k} ({what[:60] + '...' if len(what) > 60 else what})") from e
    finally:
        _remove(tmp)
    return dest


def _merge_task(parts: list[str], dest: str, dtype: str | None, codec: str, memory, overwrite: bool, k: int):
    """An inner merge (``dtype`` None: the parts' f64 kept) returns its part's path; the
    final one rounds to ``dtype``, publishes the output and returns the merge's summary."""
    if dtype is None:
        if os.path.exists(dest):
            return dest
        _maybe_fail("merge", k)
        tmp = _tmp_name(dest)
        try:
            vecfmt.merge(parts, tmp, codec=codec, memory=_task_memory(memory))
            os.replace(tmp, dest)
        finally:
            _remove(tmp)
        return dest
    _maybe_fail("merge", k)
    return vecfmt.merge(parts, dest, dtype=dtype, codec=codec, memory=_task_memory(memory), overwrite=overwrite)


# ---- helpers ------------------------------------------------------------------------------


def _tree_merge(client, parts, output, work, key, fan_in, dtype, codec, memory, overwrite) -> dict:
    if fan_in < 2:
        raise ValueError(f"fan_in must be at least 2, not {fan_in}")
    level, depth, n = list(parts), 0, 0
    while len(level) > fan_in:
        depth += 1
        nxt = []
        for i in range(0, len(level), fan_in):
            n += 1
            dest = os.path.join(work, f"merge-{depth}-{i // fan_in}.vfm")
            nxt.append(client.submit(_merge_task, level[i:i + fan_in], dest, None, "raw", memory, True, n,
                                     key=f"vecfmt-merge-{key}-{depth}-{i}", retries=2))
        level = nxt
    summary = client.submit(_merge_task, level, output, dtype, codec, memory, overwrite, 0,
                            key=f"vecfmt-merge-{key}-final", retries=2).result()
    summary["merge_levels"] = depth + 1
    return summary


def _client(client):
    if client is not None:
        return client
    try:
        from distributed import get_client
    except ImportError as e:  # pragma: no cover - the extra is missing
        raise ImportError("vecfmt.dask needs the dask extra: pip install 'vecfmt[dask]'") from e
    try:
        return get_client()
    except ValueError:
        raise ValueError("vecfmt.dask: no Dask client; pass client= or create a distributed.Client first") from None


def _cluster_threads(client) -> int:
    return sum(client.nthreads().values()) or 1


def _task_memory(memory):
    """The task's budget: as given, else 60% of the worker's memory limit per thread."""
    if memory is not None:
        return memory
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):
        return None
    limit = getattr(w.memory_manager, "memory_limit", None)
    if not limit:
        return None
    return int(limit * 0.6 / max(1, w.state.nthreads))


def _check_output(output: str, overwrite: bool) -> None:
    if os.path.exists(output) and not overwrite:
        raise vecfmt.OutputExistsError(f"{output}: exists, and replacing it was not asked for")
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise FileNotFoundError(2, f"{parent}: the output's directory does not exist", parent)


def _workdir(output: str, key: str) -> str:
    d = os.path.join(os.path.dirname(os.path.abspath(output)), f".{os.path.basename(output)}.vecfmt-dask-{key}")
    os.makedirs(d, exist_ok=True)
    return d


def _token(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stat(path: str):
    try:
        st = os.stat(path)
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return None


def _digest(path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        raise FileNotFoundError(2, f"{os.fspath(path)}: the vocabulary file does not exist", os.fspath(path)) from None
    return h.hexdigest()


def _as_list(inputs) -> list:
    if isinstance(inputs, (str, bytes, os.PathLike)):
        return [inputs]
    return list(inputs)


def _tmp_name(dest: str) -> str:
    d, name = os.path.split(dest)
    return os.path.join(d, f".{name}.{uuid.uuid4().hex[:12]}.tmp")


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _in_shard(e: Exception, k: int, n: int | None, where: str | None = None) -> Exception:
    """The same exception, its message led by the shard (or partition) it happened in."""
    where = where or f"shard {k}/{n}"
    try:
        return type(e)(f"{where}: {e}")
    except TypeError:
        return vecfmt.Error(f"{where}: {e}")


def _maybe_fail(phase: str, k: int) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    p, kk, marker = spec.split(":", 2)
    if p == phase and int(kk) == k and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), 9)
