"""Run the benchmark suites and write the report.

    python -m benchmarks.run --full    # make bench: every suite, every corpus (one to two hours on 2 cores)
    python -m benchmarks.run --quick   # make bench-quick / CI: BBC only, short runs (< 2 minutes)

Writes ``benchmarks/results/<date>-<host>.json``, ``.md`` and ``-*.png``
(quick mode: ``quick-<date>-<host>.*``, ignored by git), or into ``--out``.
Models and the synthetic corpus are built in a temporary folder, never in the
repository. Progress goes to standard error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from . import (
    bench_cluster,
    bench_http,
    bench_live,
    bench_quality,
    bench_queries,
    bench_sources,
    bench_startup,
    bench_training,
)
from .report import machine, write_report
from .synthetic import (
    CORPORA,
    ROOT,
    SYNTHETIC_SIZE,
    corpus_path,
    drafts,
    missing_reason,
    read_records,
    write_synthetic,
)

SUITES = ("training", "queries", "http", "startup", "quality", "sources", "live", "cluster")
PLAN = {
    "full": {
        "training": ["bbc", "20ng", "arxiv", "synthetic"],
        "queries": ["bbc", "20ng", "arxiv", "synthetic"],
        "http": "bbc",
        "startup": ["arxiv", "20ng", "bbc"],  # the first available
        "quality": ["bbc", "20ng"],
        # Live index (issue 10): quality, freshness, no loss on 20 Newsgroups; speed on arXiv.
        "live": {"quality": "20ng", "speed": "arxiv"},
    },
    "quick": {
        "training": ["bbc"],
        "queries": ["bbc"],
        "http": "bbc",
        "startup": ["bbc"],
        "quality": ["bbc"],
        "live": {"quality": "bbc", "speed": "bbc"},
    },
}
DEMO_CORPUS = ROOT / "recommender" / "data" / "demo_articles.jsonl"


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Workspace:
    """The temporary folder of one run: trained models and the synthetic corpus."""

    def __init__(self, root: Path, synthetic_size: int) -> None:
        self.root = root
        self.synthetic_size = synthetic_size
        self.models: dict[str, Path] = {}

    def corpus(self, name: str) -> Path | None:
        if name == "synthetic":
            try:
                return write_synthetic(self.root / "corpora", self.synthetic_size)
            except FileNotFoundError:
                return None
        return corpus_path(name)

    def model(self, name: str) -> Path | None:
        """The models dir of a trained default model, training it when needed."""
        if name in self.models:
            return self.models[name]
        models_dir = self.root / "models" / name
        path = DEMO_CORPUS if name == "demo" else self.corpus(name)
        if path is None:
            return None
        if not (models_dir / "current").exists():
            log(f"training a {name} model for the later suites")
            bench_training.train_ours(path, models_dir, plain=False, show_progress=False)
        self.models[name] = models_dir
        return models_dir

    def records(self, name: str) -> list[dict]:
        path = self.corpus(name)
        if path is None:
            raise FileNotFoundError(name)
        # The synthetic corpus is large; its first 50k articles are plenty for drafts.
        return read_records(path, limit=50_000 if name == "synthetic" else None)


def _sample_ids(models_dir: Path, count: int) -> list[str]:
    ids = (models_dir / "current" / "ids.txt").read_text(encoding="utf-8").splitlines()
    step = max(1, len(ids) // count)
    return ids[::step][:count]


def _ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    log("wrk not found: running benchmarks/setup.sh")
    subprocess.run(["bash", str(ROOT / "benchmarks" / "setup.sh")], check=False, timeout=600)


def run(mode: str, suites: list[str], out: Path, synthetic_size: int, keep_workspace: bool) -> tuple[list[Path], int]:
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    host = socket.gethostname().split(".")[0] or "host"
    stem = f"{now:%Y-%m-%d}-{host}" if mode == "full" else f"quick-{now:%Y-%m-%d}-{host}"
    if set(suites) != set(SUITES):
        # A run of some suites only must not overwrite the whole run of that day.
        stem += "-" + "-".join(suites)
    results: dict[str, Any] = {
        "mode": mode,
        "date": now.isoformat(timespec="seconds"),
        "load_start": [round(x, 2) for x in os.getloadavg()],
        "suites": {},
        "skipped": {},
        "errors": {},
    }
    plan = PLAN[mode]
    root = Path(tempfile.mkdtemp(prefix="recommender-bench-"))
    ws = Workspace(root, synthetic_size)
    log(f"{mode} run of {', '.join(suites)}; workspace {root}")
    if "http" in suites or "live" in suites:
        _ensure_wrk()
    results["machine"] = machine()
    try:
        for suite in suites:
            t = time.perf_counter()
            log(f"== suite {suite}")
            try:
                results["suites"][suite] = _suite(suite, mode, plan, ws, results["skipped"])
                # A suite made of phases (live) names the phases that failed; the others' figures stand.
                for phase, error in results["suites"][suite].get("errors", {}).items():
                    results["errors"][f"{suite} {phase}"] = error
            except Exception as exc:  # one broken suite must not lose the others' results
                results["errors"][suite] = f"{type(exc).__name__}: {exc}"
                log(f"suite {suite} FAILED: {exc}\n{traceback.format_exc()}")
            log(f"== suite {suite} done in {time.perf_counter() - t:.0f} s")
    finally:
        if keep_workspace:
            log(f"workspace kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    results["load_end"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.perf_counter() - started, 1)
    written = write_report(results, out, stem)
    for path in written:
        log(f"wrote {path}")
    failed = [c["check"] for c in results["checks"] if c["pass"] is False]
    if failed:
        log(f"{len(failed)} required figure(s) not met: {'; '.join(failed)}")
    return written, 1 if results["errors"] else 0


def _suite(suite: str, mode: str, plan: dict[str, Any], ws: Workspace, skipped: dict[str, str]) -> dict[str, Any]:
    if suite == "training":
        result = bench_training.run(mode, ws.root, plan["training"], ws.synthetic_size)
        for e in result["corpora"]:
            ws.models[e["corpus"]] = ws.root / "models" / e["corpus"]
        skipped.update({f"training {k}": v for k, v in result["skipped"].items()})
        return result
    if suite == "queries":
        models = {}
        for name in plan["queries"]:
            models_dir = ws.model(name)
            if models_dir is None:
                skipped[f"queries {name}"] = _why(name)
            else:
                models[name] = models_dir
        return bench_queries.run(mode, models, ws.records)
    if suite == "http":
        name = plan["http"]
        models_dir = ws.model(name)
        if models_dir is None:
            return {"skipped": _why(name)}
        draft = drafts(ws.records(name), 1, seed=11)[0]
        return bench_http.run(mode, models_dir, _sample_ids(models_dir, 200), draft, ws.root)
    if suite == "startup":
        name = next((n for n in plan["startup"] if ws.corpus(n) is not None), None)
        if name is None:
            return {"skipped": _why(plan["startup"][0])}
        models_dir = ws.model(name)
        demo = ws.model("demo")
        assert models_dir is not None and demo is not None
        articles = len((models_dir / "current" / "ids.txt").read_text(encoding="utf-8").splitlines())
        draft = drafts(ws.records(name), 1, seed=12)[0]
        return bench_startup.run(mode, models_dir, demo, name, articles, _sample_ids(models_dir, 200), draft, ws.root)
    if suite == "sources":
        # A synthetic WordPress export (1 GB full, 4 MB quick) against the same posts as JSON Lines.
        return bench_sources.run(mode, ws.root)
    if suite == "quality":
        result = bench_quality.run(plan["quality"])
        skipped.update({f"quality {k}": v for k, v in result["skipped"].items()})
        return result
    if suite == "live":
        q, s = plan["live"]["quality"], plan["live"]["speed"]
        result = bench_live.run(mode, ws.root, q, ws.corpus(q), s, ws.corpus(s), lambda: ws.model(s))
        skipped.update({f"live {k}": v for k, v in result["skipped"].items()})
        return result
    if suite == "cluster":
        # Training on a Dask cluster (issue 12) against one process: arXiv (full), BBC (quick).
        result = bench_cluster.run(mode, ws.root)
        skipped.update({f"cluster {k}": v for k, v in result["skipped"].items()})
        return result
    raise ValueError(suite)


def _why(name: str) -> str:
    return missing_reason(name) if name in CORPORA else f"no corpus for {name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--quick", action="store_const", const="quick", dest="mode", help="BBC only, short runs (CI)")
    group.add_argument("--full", action="store_const", const="full", dest="mode", help="every suite and corpus")
    parser.add_argument("--suites", default=",".join(SUITES), help=f"comma-separated subset of {','.join(SUITES)}")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="folder for the report")
    parser.add_argument("--synthetic-size", type=int, default=SYNTHETIC_SIZE, help="articles in the composed corpus")
    parser.add_argument("--keep-workspace", action="store_true", help="keep the temporary models and corpora")
    args = parser.parse_args(argv)
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    _, code = run(args.mode, suites, args.out, args.synthetic_size, args.keep_workspace)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
