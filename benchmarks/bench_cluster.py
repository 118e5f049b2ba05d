"""Suite 8: training on a Dask cluster (issue 12) against one process, in the same run.

For each corpus, ``recommender train`` (one process, its threads) and
``recommender train --cluster local:2`` (a LocalCluster of two one-thread
worker processes) run as subprocesses in turn, measured as in suite 1: wall
time, and peak memory of the process tree (the cluster's tree includes its
workers). Each worker's own peak (VmHWM) is read from the bundle's manifest,
with the scheduler's record of the work (seconds of tile and finishing tasks).
The two bundles' lists are compared: ids equal, scores within 1e-6.

The cost model of the README's "Scaling out" section is computed from these
figures by :func:`project`; its assumptions are listed there and in the report.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .bench_training import _record, log, run_measured
from .synthetic import corpus_path, missing_reason

WORKERS = 2
PLAN = {"full": ["arxiv"], "quick": ["bbc"]}
# Projections of the cost model: articles x workers.
PROJECT = [(1_000_000, 8), (1_000_000, 64), (10_000_000, 8), (10_000_000, 64)]


def train(corpus: Path, models_dir: Path, cluster: str | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "recommender", "train", "--corpus", str(corpus), "--models-dir", str(models_dir)]
    command += ["--quiet"] + (["--cluster", cluster] if cluster else [])
    measured = run_measured(command)
    if measured.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} exited {measured.returncode}: {measured.stderr_tail}")
    manifest = json.loads((models_dir / "current" / "manifest.json").read_text(encoding="utf-8"))
    return {**_record(measured), "timings": manifest["timings"], "cluster": manifest.get("cluster")}


def same_lists(a: Path, b: Path) -> dict[str, Any]:
    """Acceptance 1 on the bundles: neighbour ids equal, scores within 1e-6."""
    ids = [np.load(folder / "current" / "neighbours.npy") for folder in (a, b)]
    scores = [np.load(folder / "current" / "neighbour_scores.npy") for folder in (a, b)]
    diff = float(np.abs(scores[0].astype(np.float64) - scores[1]).max()) if scores[0].size else 0.0
    equal = bool(np.array_equal(ids[0], ids[1]))
    return {"ids_equal": equal, "max_score_difference": diff, "same": equal and diff <= 1e-6}


def run(mode: str, workspace: Path) -> dict[str, Any]:
    entries, skipped = [], {}
    for name in PLAN[mode]:
        path = corpus_path(name)
        if path is None:
            skipped[name] = missing_reason(name)
            continue
        one_dir, cluster_dir = workspace / "cluster-one" / name, workspace / "cluster-local" / name
        log(f"cluster {name}: one process")
        one = train(path, one_dir, None)
        log(f"cluster {name}: --cluster local:{WORKERS}")
        cluster = train(path, cluster_dir, f"local:{WORKERS}")
        lists = same_lists(one_dir, cluster_dir)
        articles = int(json.loads((one_dir / "current" / "manifest.json").read_text(encoding="utf-8"))["articles"])
        shutil.rmtree(one_dir.parent, ignore_errors=True)
        shutil.rmtree(cluster_dir.parent, ignore_errors=True)
        worker_peak = max(cluster["cluster"]["worker_peak_bytes"])
        entry = {
            "corpus": name,
            "articles": articles,
            "workers": WORKERS,
            "one": one,
            "cluster": cluster,
            "lists": lists,
            "ratios": {
                "cluster_vs_one_seconds": round(cluster["seconds"] / one["seconds"], 3),
                "worker_peak_vs_one_peak": round(worker_peak / one["peak_bytes"], 3),
                "neighbours_step": round(cluster["timings"]["neighbours"] / one["timings"]["neighbours"], 3),
            },
        }
        entry["projections"] = [project(entry, n, w) for n, w in PROJECT]
        log(f"cluster {name}: ratios {entry['ratios']}, lists {lists}")
        entries.append(entry)
    return {"corpora": entries, "skipped": skipped}


def project(entry: dict[str, Any], articles: int, workers: int) -> dict[str, Any]:
    """Time and memory of exact training on ``articles`` with ``workers``, scaled from one measured run.

    Tile work grows with the square of the articles (every pair of bands is
    scored), finishing and everything the client does (reading, vectorising,
    the semantic view, writing) linearly. The workers are taken to be as
    efficient as measured here (task seconds over workers x wall seconds of
    the step). Each worker holds the whole matrix and its split, which grow
    linearly, on top of its measured base (interpreter and libraries); a
    tile's scratch grows with the band. The client's peak is scaled whole (an
    upper bound: its base is in it).
    """
    n0 = entry["articles"]
    scale = articles / n0
    cluster, one = entry["cluster"], entry["one"]
    work = cluster["cluster"]["compute_seconds"]
    step = cluster["timings"]["neighbours"]
    efficiency = (work.get("tile", 0.0) + work.get("finish", 0.0)) / (entry["workers"] * step)
    client_seconds = (one["seconds"] - one["timings"]["neighbours"]) * scale
    task_seconds = work.get("tile", 0.0) * scale**2 + work.get("finish", 0.0) * scale
    wall = client_seconds + task_seconds / (workers * min(efficiency, 1.0))
    worker_peak = max(cluster["cluster"]["worker_peak_bytes"])
    worker_base = min(cluster["cluster"]["worker_base_bytes"] or [0])
    return {
        "articles": articles,
        "workers": workers,
        "task_core_hours": round(task_seconds / 3600, 1),
        "hours": round(wall / 3600, 2),
        "client_hours": round(client_seconds / 3600, 2),
        "worker_gb": round((worker_base + (worker_peak - worker_base) * scale) / 1e9, 1),
        "client_gb": round(one["peak_bytes"] * scale / 1e9, 1),
        "efficiency": round(efficiency, 2),
    }


def checks(result: dict[str, Any], add: Any) -> None:
    """The acceptance figures of issue 12 measured by this suite."""
    entry = next((e for e in result.get("corpora", []) if e["corpus"] == "arxiv"), None)
    r = entry["ratios"] if entry else {}
    wall, memory = r.get("cluster_vs_one_seconds"), r.get("worker_peak_vs_one_peak")
    add("train arXiv 126k --cluster local:2 / one process (wall)", "<= 1.3", wall, lambda v: v <= 1.3)
    add("train arXiv 126k: peak per worker / one process's peak", "<= 0.6", memory, lambda v: v <= 0.6)
    for e in result.get("corpora", []):
        add(
            f"train {e['corpus']} --cluster local:2: lists equal one process's (max score difference)",
            "<= 1e-06",
            e["lists"]["max_score_difference"] if e["lists"]["ids_equal"] else float("inf"),
            lambda v: v <= 1e-6,
        )


def markdown(result: dict[str, Any] | None) -> list[str]:
    if not result:
        return []
    lines = ["## 8. Training on a Dask cluster (`recommender train --cluster local:2`)", ""]
    for e in result["corpora"]:
        one, cluster, info = e["one"], e["cluster"], e["cluster"]["cluster"]
        work = info["compute_seconds"]
        lines += [
            f"### {e['corpus']} ({e['articles']:,} articles)",
            "",
            "| | one process (2 threads) | local:2 (2 workers x 1 thread) | ratio |",
            "| --- | --- | --- | --- |",
            f"| wall time | {one['seconds']:.1f} s | {cluster['seconds']:.1f} s "
            f"| {e['ratios']['cluster_vs_one_seconds']} |",
            f"| all-pairs step | {one['timings']['neighbours']:.1f} s | {cluster['timings']['neighbours']:.1f} s "
            f"| {e['ratios']['neighbours_step']} |",
            f"| peak memory | {one['peak_bytes'] / 1e9:.2f} GB (process) | "
            + ", ".join(f"{p / 1e9:.2f}" for p in info["worker_peak_bytes"])
            + f" GB (each worker); {cluster['peak_bytes'] / 1e9:.2f} GB (whole tree) "
            f"| {e['ratios']['worker_peak_vs_one_peak']} (worker / process) |",
            "",
            f"{info['bands']} bands of {info['band_rows']:,} rows, {info['tasks']} tasks; task work "
            f"{work.get('tile', 0):.1f} s in tiles and {work.get('finish', 0):.1f} s in finishing, "
            f"{info['transfer_seconds']:.1f} s of transfers. Lists: ids equal {e['lists']['ids_equal']}, "
            f"largest score difference {e['lists']['max_score_difference']:.2g}.",
            "",
            "Cost model (`benchmarks/bench_cluster.py:project`, from this run; exact all-pairs):",
            "",
            "| articles | workers | task core-hours | wall hours | memory per worker | client memory |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for p in e["projections"]:
            lines.append(
                f"| {p['articles']:,} | {p['workers']} | {p['task_core_hours']} | {p['hours']} "
                f"| {p['worker_gb']} GB | {p['client_gb']} GB |"
            )
        lines.append("")
    for name, reason in result.get("skipped", {}).items():
        lines += [f"- {name} skipped: {reason}", ""]
    return lines
