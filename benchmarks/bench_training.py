"""Suite 1: the whole training job, ours against two baselines, wall time and peak memory.

The job is "read the corpus + vectorise + precompute the top 20 of every
article + write the result to disk". Each form runs as its own subprocess so
that its peak memory can be measured:

* ours: ``recommender train`` (default settings, i.e. with the 200-dim LSA view
  and 50 re-ranked candidates; and ``--semantic-weight 0``, plain TF-IDF);
* naive: ``TfidfVectorizer`` with the same settings + ``NearestNeighbors(
  metric="cosine", algorithm="brute").kneighbors`` over all articles + ``np.save``;
* sparse_dot_topn: the same vectoriser + ``sp_matmul_topn(X, X.T, 21,
  n_threads=2)`` + ``np.save``.

On large corpora the baselines' top-k step is timed on a fixed random sample of
rows and extrapolated linearly to every row (the work per row does not depend
on which rows are computed); the report says so.

Peak memory is sampled every 0.2 s over the process tree (sum of RSS over the
process and its descendants, read from statm, which takes no lock; pages
shared by forked workers count once per process, so it is an upper bound) and
also taken from ``wait4``'s ``ru_maxrss`` (the largest single process, which
sampling cannot miss); the reported peak is the larger.

Run one baseline by hand: ``python -m benchmarks.bench_training baseline
--method sdt --corpus PATH --out DIR [--sample ROWS]``.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .synthetic import CORPORA, ROOT, corpus_path, missing_reason, write_synthetic

K = 20
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
TITLE_WEIGHT = 2
MIN_SIMILARITY = 0.05

# Rows on which the baselines' top-k step is timed, per corpus and mode (None: every row).
SAMPLES = {
    "full": {"bbc": (None, None), "20ng": (None, None), "arxiv": (6_000, 12_000), "synthetic": (4_000, 8_000)},
    "quick": {"bbc": (None, None)},
}
# Whole jobs of a few seconds are run this many times, the forms in turn, and
# the median is reported: on a shared virtual machine one run of each can be
# off by 20 % either way. Longer jobs run once.
ROUNDS = {"full": {"bbc": 3, "20ng": 3}, "quick": {}}
# Plain TF-IDF training (--semantic-weight 0) is timed beside the default on these only:
# on the 300k corpus it would add another half hour to the run.
PLAIN_ON = {"bbc", "20ng", "arxiv"}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# Measuring a subprocess -----------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may contain spaces or parentheses: split after its closing one.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now."""
    children = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def memory_of(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private pages) of one process in bytes, from /proc/PID/smaps_rollup."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 3 and parts[0].endswith(":"):
                    values[parts[0][:-1]] = int(parts[1]) * 1024
    except (OSError, ValueError):
        return {}
    return {
        "rss": values.get("Rss", 0),
        "pss": values.get("Pss", 0),
        "uss": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0),
        "shared": values.get("Shared_Clean", 0) + values.get("Shared_Dirty", 0),
    }


def rss_of(pid: int) -> int:
    """Resident bytes of one process, from /proc/PID/statm.

    statm reads the process's memory counters without taking its memory-map
    lock (smaps_rollup takes it, and walking a large process's mappings while
    a multi-threaded job allocates slowed the job under measurement).
    """
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class Measured:
    """A finished subprocess: exit code, wall time, peak memory, output."""

    returncode: int
    seconds: float
    peak_rss_tree: int
    max_rss_single: int
    stdout: str
    stderr_tail: str


# The process tree's memory is sampled from statm (no lock, see rss_of) every
# 0.2 s; wait4's ru_maxrss gives the largest single process's peak, which
# sampling cannot miss. A sum of RSS counts pages that forked workers share
# once per process, so the tree figure is an upper bound (on arXiv it was
# within 1 % of the PSS sum, which needs the locking smaps_rollup).
SAMPLE_SECONDS = 0.2


def run_measured(command: list[str], *, env: dict[str, str] | None = None, show_progress: bool = False) -> Measured:
    """Run ``command``, sampling the memory of its process tree until it exits."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=None if show_progress else subprocess.PIPE,
    )
    peak = {"rss": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak["rss"] = max(peak["rss"], sum(rss_of(p) for p in process_tree(proc.pid)))
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    readers = [threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True)]  # type: ignore[union-attr]
    if proc.stderr is not None:
        readers.append(threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True))  # type: ignore[union-attr]
    for r in readers:
        r.start()
    # wait4 on this very child: its own ru_maxrss, unaffected by earlier children.
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    for r in readers:
        r.join()
    err = b"".join(err_chunks).decode("utf-8", "replace")
    return Measured(
        returncode=proc.returncode,
        seconds=seconds,
        peak_rss_tree=peak["rss"],
        max_rss_single=usage.ru_maxrss * 1024,
        stdout=b"".join(out_chunks).decode("utf-8", "replace"),
        stderr_tail=err[-2000:],
    )


def _record(m: Measured) -> dict[str, Any]:
    return {
        "seconds": round(m.seconds, 3),
        # Sampling can miss a short spike; wait4's ru_maxrss cannot, but sees one process only.
        "peak_bytes": max(m.peak_rss_tree, m.max_rss_single),
        "peak_rss_tree_bytes": m.peak_rss_tree,
        "max_rss_single_bytes": m.max_rss_single,
    }


# Ours ---------------------------------------------------------------------


def train_ours(corpus: Path, models_dir: Path, *, plain: bool, show_progress: bool) -> dict[str, Any]:
    """``recommender train`` as a subprocess; the bundle stays in ``models_dir``."""
    command = [sys.executable, "-m", "recommender", "train", "--corpus", str(corpus), "--models-dir", str(models_dir)]
    command += ["--k", str(K), "--keep", "1"]
    if plain:
        command += ["--semantic-weight", "0"]
    if not show_progress:
        command.append("--quiet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOMMENDER_")}
    m = run_measured(command, env=env, show_progress=show_progress)
    if m.returncode != 0:
        raise RuntimeError(f"recommender train failed ({m.returncode}): {m.stderr_tail}")
    out = _record(m)
    out["command"] = "recommender train" + (" --semantic-weight 0" if plain else "")
    out["summary"] = m.stdout.strip().splitlines()[-1] if m.stdout.strip() else ""
    # The command's own timer (after interpreter start-up and imports).
    found = re.search(r", ([0-9.]+) s, bundle ([0-9.]+) MB", out["summary"])
    if found:
        out["internal_seconds"] = float(found.group(1))
        out["bundle_mb"] = float(found.group(2))
    return out


# Baselines (run in a subprocess: ``python -m benchmarks.bench_training baseline``) ---


def _read_texts(path: Path) -> list[str]:
    texts = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                r = json.loads(line)
                title = str(r.get("title") or "")
                # The title counts TITLE_WEIGHT times, as in ours (counts add up the same way).
                texts.append(" ".join([title] * TITLE_WEIGHT + [str(r.get("body") or "")]))
    return texts


def _baseline_job(method: str, corpus: Path, out: Path, sample: int | None) -> dict[str, Any]:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    from recommender.tfidf import TOKEN_PATTERN
    from recommender.train import TrainOptions

    phases: dict[str, float] = {}
    t = time.perf_counter()
    texts = _read_texts(corpus)
    phases["read"] = time.perf_counter() - t
    t = time.perf_counter()
    vectorizer = TfidfVectorizer(
        sublinear_tf=True,
        stop_words="english",
        min_df=TrainOptions().min_df,
        max_df=TrainOptions().max_df,
        token_pattern=TOKEN_PATTERN,
        dtype=np.float32,
    )
    matrix = vectorizer.fit_transform(texts)
    phases["vectorise"] = time.perf_counter() - t
    n = matrix.shape[0]
    rows = np.arange(n)
    if sample is not None and sample < n:
        rows = np.sort(np.random.default_rng(0).choice(n, size=sample, replace=False))
    t = time.perf_counter()
    if method == "naive":
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=K + 1, metric="cosine", algorithm="brute").fit(matrix)
        distances, indices = nn.kneighbors(matrix[rows] if rows.size < n else matrix)
        scores = (1.0 - distances).astype(np.float32)
    elif method == "sdt":
        from sparse_dot_topn import sp_matmul_topn

        product = sp_matmul_topn(
            matrix[rows] if rows.size < n else matrix,
            matrix.T.tocsr(),
            top_n=K + 1,
            threshold=MIN_SIMILARITY,
            sort=True,
            n_threads=2,
        )
        indices, scores = _rows_topk(product, rows, K + 1)
    else:
        raise ValueError(f"unknown method {method!r}")
    # Drop the article itself from its own list (the +1 above).
    keep = indices != rows[:, None]
    order = np.argsort(~keep, axis=1, kind="stable")[:, :K]
    indices = np.take_along_axis(indices, order, axis=1).astype(np.int32)
    scores = np.take_along_axis(scores, order, axis=1)
    phases["topk"] = time.perf_counter() - t
    t = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "neighbours.npy", indices)
    np.save(out / "neighbour_scores.npy", scores)
    phases["save"] = time.perf_counter() - t
    scale = n / rows.size
    estimated = phases["read"] + phases["vectorise"] + (phases["topk"] + phases["save"]) * scale
    return {
        "method": method,
        "articles": int(n),
        "vocabulary": len(vectorizer.vocabulary_),
        "rows_timed": int(rows.size),
        "sampled": bool(rows.size < n),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "estimated_total_seconds": round(estimated, 3),
    }


def _rows_topk(product: Any, rows: Any, width: int) -> tuple[Any, Any]:
    """Dense (rows, width) indices/scores from a row-sorted CSR top-n product (-1/0 padded)."""
    import numpy as np

    n_rows = product.shape[0]
    counts = np.diff(product.indptr)
    row_of = np.repeat(np.arange(n_rows), counts)
    pos = np.arange(product.indices.size) - np.repeat(product.indptr[:-1], counts)
    indices = np.full((n_rows, width), -1, dtype=np.int64)
    scores = np.zeros((n_rows, width), dtype=np.float32)
    take = pos < width
    indices[row_of[take], pos[take]] = product.indices[take]
    scores[row_of[take], pos[take]] = product.data[take]
    return indices, scores


def run_baseline(method: str, corpus: Path, workdir: Path, sample: int | None) -> dict[str, Any]:
    """One baseline job in its own measured subprocess."""
    out = workdir / f"baseline-{method}"
    command = [sys.executable, "-m", "benchmarks.bench_training", "baseline", "--method", method]
    command += ["--corpus", str(corpus), "--out", str(out)]
    if sample is not None:
        command += ["--sample", str(sample)]
    m = run_measured(command)
    shutil.rmtree(out, ignore_errors=True)
    if m.returncode != 0:
        raise RuntimeError(f"baseline {method} failed ({m.returncode}): {m.stderr_tail}")
    result = json.loads(m.stdout.strip().splitlines()[-1])
    result.update(_record(m))
    # Wall time of the process, with the top-k step extrapolated when it ran on a sample.
    overhead = m.seconds - sum(result["phases"].values())
    result["seconds"] = round(result["estimated_total_seconds"] + max(overhead, 0.0), 3)
    result["measured_wall_seconds"] = round(m.seconds, 3)
    return result


# The suite ----------------------------------------------------------------


def run(mode: str, workspace: Path, corpora: list[str], synthetic_size: int) -> dict[str, Any]:
    """Train every corpus with ours (default and plain) and both baselines."""
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for name in corpora:
        if name == "synthetic":
            try:
                log(f"composing the synthetic corpus ({synthetic_size:,} articles) in {workspace}")
                t = time.perf_counter()
                path: Path | None = write_synthetic(workspace / "corpora", synthetic_size)
                log(f"synthetic corpus written in {time.perf_counter() - t:.0f} s")
            except FileNotFoundError as exc:
                skipped[name] = str(exc)
                continue
        else:
            path = corpus_path(name)
        if path is None:
            skipped[name] = missing_reason(name)
            continue
        naive_sample, sdt_sample = SAMPLES.get(mode, {}).get(name, (None, None))
        rounds = ROUNDS.get(mode, {}).get(name, 1)
        entry: dict[str, Any] = {"corpus": name, "path": str(path), "rounds": rounds}
        has_sdt = importlib.util.find_spec("sparse_dot_topn") is not None
        if not has_sdt:
            skipped["sparse_dot_topn"] = "not installed (pip install -e '.[bench]'; make bench does it)"
        runs: dict[str, list[dict[str, Any]]] = {"ours_plain": [], "ours": [], "sdt": [], "naive": []}
        for round_ in range(1, rounds + 1):
            of = f" (round {round_} of {rounds})" if rounds > 1 else ""
            if name in PLAIN_ON:
                log(f"training {name}: ours, plain TF-IDF (--semantic-weight 0){of}")
                plain_dir = workspace / "models-plain" / name
                runs["ours_plain"].append(train_ours(path, plain_dir, plain=True, show_progress=mode == "full"))
                shutil.rmtree(plain_dir, ignore_errors=True)
            log(f"training {name}: ours, default{of}")
            default_dir = workspace / "models" / name
            runs["ours"].append(train_ours(path, default_dir, plain=False, show_progress=mode == "full"))
            if has_sdt:
                log(f"training {name}: sparse_dot_topn baseline{of}")
                runs["sdt"].append(run_baseline("sdt", path, workspace, sdt_sample))
            log(f"training {name}: naive baseline{of}")
            runs["naive"].append(run_baseline("naive", path, workspace, naive_sample))
        for form, done in runs.items():
            entry[form] = _median_run(done)
        entry["articles"] = _articles(workspace / "models" / name)
        ours = entry["ours"]["seconds"]
        plain = entry["ours_plain"]["seconds"] if entry["ours_plain"] else None
        sdt = entry["sdt"]["seconds"] if entry["sdt"] else None
        entry["ratios"] = {
            "ours_vs_sdt": round(ours / sdt, 3) if sdt else None,
            "ours_vs_naive": round(ours / entry["naive"]["seconds"], 3),
            "default_vs_plain": round(ours / plain, 3) if plain else None,
            "plain_vs_sdt": round(plain / sdt, 3) if sdt and plain else None,
            "plain_vs_naive": round(plain / entry["naive"]["seconds"], 3) if plain else None,
        }
        log(f"training {name}: done, ratios {entry['ratios']}")
        results.append(entry)
    return {"corpora": results, "skipped": skipped, "k": K}


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The run of median time (the lower middle one of an even count), with every run's time and the top peak."""
    if not runs:
        return None
    ranked = sorted(runs, key=lambda r: r["seconds"])
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    chosen["runs_seconds"] = [r["seconds"] for r in runs]
    chosen["peak_bytes"] = max(r["peak_bytes"] for r in runs)
    return chosen


def _articles(models_dir: Path) -> int:
    manifest = json.loads((models_dir / "current" / "manifest.json").read_text(encoding="utf-8"))
    return int(manifest.get("articles") or manifest.get("summary", {}).get("articles"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("baseline", help="run one baseline job and print its phases as JSON")
    p.add_argument("--method", choices=("naive", "sdt"), required=True)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sample", type=int, default=None)
    args = parser.parse_args(argv)
    result = _baseline_job(args.method, args.corpus, args.out, args.sample)
    print(json.dumps(result))
    return 0


__all__ = ["CORPORA", "Measured", "memory_of", "process_tree", "run", "run_measured", "train_ours"]

if __name__ == "__main__":
    raise SystemExit(main())
