"""train --cluster: the exact all-pairs step as tasks on a real Dask cluster gives the lists of one process."""

from __future__ import annotations

import builtins
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommender.allpairs import all_pairs_topk
from recommender.bundle import load_bundle
from recommender.cli import main
from recommender.cluster import ClusterError, check_cluster, cluster_count_terms, connect
from recommender.corpus import read_corpus
from recommender.errors import InvalidInputError
from recommender.fit import fit_parts
from recommender.options import TrainOptions
from recommender.tiles import ClusterRun, band_bounds, cluster_all_pairs_topk
from recommender.values import SCORE_TOLERANCE

from .conftest import DEMO_CORPUS, TINY, shared_corpus, write_jsonl
from .test_allpairs import assert_same_up_to_ties, random_matrix

BAD_SPEC = (
    "cluster must be local:N (N workers on this machine, 1 to 64) or a scheduler address such as "
    "tcp://scheduler:8786, got "
)


# --- the spec, the options, the CLI flag, the missing extra ------------------------------------------


@pytest.mark.parametrize("spec", ["local:1", "local:2", "local:64", "tcp://scheduler:8786", "tls://10.0.0.5:8786"])
def test_cluster_specs_that_name_a_cluster_are_accepted(spec: str) -> None:
    assert check_cluster(spec) == spec


@pytest.mark.parametrize(
    "spec", ["", "local", "local:0", "local:65", "local:-1", "local:two", "scheduler:8786", "http://x:1", "tcp://", 2]
)
def test_other_cluster_specs_are_refused_with_the_rule(spec: Any) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_cluster(spec)
    assert str(caught.value) == BAD_SPEC + repr(spec)


def test_options_keep_the_cluster_out_of_the_model() -> None:
    options = TrainOptions(cluster="local:2")
    options.validate()
    assert "cluster" not in options.parameters()
    assert TrainOptions.from_parameters({**options.parameters(), "cluster": "tcp://elsewhere:1"}).cluster is None
    with pytest.raises(InvalidInputError, match=r"^cluster must be local:N"):
        TrainOptions(cluster="local:0").validate()
    with pytest.raises(InvalidInputError, match=r"approximate training runs on one machine: choose one of them"):
        TrainOptions(cluster="local:2", approximate=True).validate()


def test_the_cli_refuses_a_bad_cluster_flag(tmp_path, capsys) -> None:
    corpus = write_jsonl(tmp_path / "tiny.jsonl", TINY)
    models = tmp_path / "models"
    with pytest.raises(SystemExit) as caught:
        main(["train", "--corpus", str(corpus), "--models-dir", str(models), "--cluster", "local:0"])
    assert caught.value.code == 2
    assert "argument --cluster: --" + BAD_SPEC + "'local:0'" in capsys.readouterr().err
    assert not models.exists()


def test_without_dask_the_error_names_the_extra(monkeypatch, tmp_path, capsys) -> None:
    real_import = builtins.__import__

    def no_distributed(name, *args, **kwargs):
        if name in ("dask", "distributed"):
            raise ImportError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    articles = read_corpus(write_jsonl(tmp_path / "tiny.jsonl", TINY)).articles
    with pytest.raises(ClusterError, match=r"dask is not installed\): pip install 'recommender\[cluster\]'"):
        fit_parts(articles, TrainOptions(cluster="local:2", min_df=1))
    corpus = write_jsonl(tmp_path / "tiny2.jsonl", TINY)
    code = main(["train", "--corpus", str(corpus), "--models-dir", str(tmp_path / "m"), "--cluster", "local:2"])
    assert code == 1
    assert "recommender[cluster]" in capsys.readouterr().err
    assert not (tmp_path / "m" / "current").exists()


def test_bands_cover_every_row_once() -> None:
    for n_rows, workers, chunk in [(1, 1, 256), (2225, 2, 4096), (18846, 2, 892), (126492, 64, 256)]:
        bands = band_bounds(n_rows, workers, chunk)
        assert bands[0][0] == 0 and bands[-1][1] == n_rows
        assert all(a < b for a, b in bands)
        assert all(bands[i][1] == bands[i + 1][0] for i in range(len(bands) - 1))
    # Enough bands that the band x band tasks outnumber 64 workers.
    bands = band_bounds(126492, 64, 256)
    assert len(bands) * (len(bands) + 1) // 2 >= 4 * 64


def test_unreachable_scheduler_is_a_clear_error() -> None:
    import dask
    import distributed  # noqa: F401  (its defaults must be in dask's config before a setting is overridden)

    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ClusterError, match=r"^cannot reach the cluster tcp://127.0.0.1:9: "),
        connect("tcp://127.0.0.1:9"),
    ):
        pytest.fail("connected to a port nothing listens on")


# --- a real LocalCluster --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    with connect("local:2") as c:
        yield c


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n_rows", "density", "k", "band_rows", "chunk_rows", "seed"),
    [
        (700, 0.03, 10, 96, 32, 1),  # many bands, several slices per band
        (500, 0.05, 7, 64, 64, 2),  # one slice per band
        (300, 0.05, 12, 1000, 64, 3),  # a single band: only the diagonal tile
        (130, 0.2, 25, 17, 5, 4),  # slices narrower than a row's candidates
    ],
)
def test_cluster_lists_equal_one_process(client, n_rows, density, k, band_rows, chunk_rows, seed) -> None:
    x = random_matrix(n_rows, 200, density, seed=seed)
    one = all_pairs_topk(x, k, min_similarity=0.01, n_jobs=1)
    run = ClusterRun()
    done: list[int] = []
    two = cluster_all_pairs_topk(
        client, x, k, min_similarity=0.01, band_rows=band_rows, chunk_rows=chunk_rows, progress=done.append, report=run
    )
    assert_same_up_to_ties(two.indices, two.scores, one.indices, one.scores)
    np.testing.assert_array_equal(two.indices >= 0, one.indices >= 0)
    assert sum(done) == n_rows
    bands = -(-n_rows // band_rows)
    assert run.workers == 2
    assert run.tasks == bands * (bands + 1) // 2 + bands * bands + bands  # tiles, their two sides, finishes
    assert run.worker_peak_bytes is not None and len(run.worker_peak_bytes) == 2
    assert all(peak > 10 << 20 for peak in run.worker_peak_bytes)
    # The scheduler's record of the work: every tile and finishing task computed somewhere.
    assert run.bands == bands and run.band_rows == min(band_rows, n_rows)
    assert set(run.compute_seconds) >= {"tile", "finish"}
    assert all(seconds > 0 for seconds in run.compute_seconds.values())


@pytest.mark.slow
def test_cluster_edge_sizes(client) -> None:
    for n_rows, k in [(1, 5), (2, 5), (3, 1), (9, 50)]:
        x = random_matrix(n_rows, 40, 0.3, seed=n_rows)
        one = all_pairs_topk(x, k, n_jobs=1)
        two = cluster_all_pairs_topk(client, x, k, band_rows=2, chunk_rows=1)
        np.testing.assert_array_equal(two.indices, one.indices)
        np.testing.assert_allclose(two.scores, one.scores, rtol=0, atol=SCORE_TOLERANCE)


# --- the shared corpora, trained whole ---------------------------------------------------------------------


def assert_same_model_lists(cluster, one) -> None:
    """Acceptance: ids equal, scores within 1e-6, for the precomputed lists the service serves."""
    np.testing.assert_array_equal(cluster.arrays["neighbours"], one.arrays["neighbours"])
    np.testing.assert_allclose(cluster.arrays["neighbour_scores"], one.arrays["neighbour_scores"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(cluster.arrays["dup_group"], one.arrays["dup_group"])
    assert cluster.manifest["parameters"] == one.manifest["parameters"]


@pytest.fixture(scope="module")
def newsgroups() -> tuple[list, Any]:
    articles = read_corpus(shared_corpus("20newsgroups.jsonl.gz")).articles
    return articles, fit_parts(articles, TrainOptions())


@pytest.mark.corpora
@pytest.mark.slow
def test_bbc_through_the_cli_with_local_2(tmp_path) -> None:
    corpus = shared_corpus("bbc-news.jsonl.gz")
    one = fit_parts(read_corpus(corpus).articles, TrainOptions())
    models = tmp_path / "models"
    assert main(["train", "--corpus", str(corpus), "--models-dir", str(models), "--cluster", "local:2", "--quiet"]) == 0
    cluster = load_bundle(models)
    assert_same_model_lists(cluster, one)
    assert cluster.manifest["cluster"]["workers"] == 2


@pytest.mark.corpora
@pytest.mark.slow
def test_20_newsgroups_with_local_2(newsgroups) -> None:
    articles, one = newsgroups
    cluster = fit_parts(articles, TrainOptions(cluster="local:2"))
    assert_same_model_lists(cluster, one)
    report = cluster.manifest["cluster"]
    assert report["workers"] == 2 and report["bands"] == 8 and report["tasks"] == 36 + 64 + 8
    assert report["compute_seconds"]["tile"] > report["compute_seconds"]["finish"] > 0
    assert "cluster" not in one.manifest


def _tile_states(dask_scheduler) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key, task in dask_scheduler.tasks.items():
        if str(key).startswith("tile-"):
            counts[task.state] = counts.get(task.state, 0) + 1
    return counts


@pytest.mark.corpora
@pytest.mark.slow
def test_killing_a_worker_mid_all_pairs_still_gives_the_same_lists(newsgroups) -> None:
    """Acceptance 5: a worker killed with SIGKILL while tiles are pending; its tasks run again elsewhere."""
    from distributed import Client, LocalCluster

    from recommender.cluster import _local_worker_settings

    articles, one = newsgroups
    import dask

    with dask.config.set(_local_worker_settings()):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0")
    with cluster, Client(cluster) as watcher:
        pids_before = watcher.run(os.getpid)
        seen: dict[str, Any] = {}

        def kill_when_tiles_are_half_done() -> None:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                states = watcher.run_on_scheduler(_tile_states)
                finished, total = states.get("memory", 0) + states.get("released", 0), sum(states.values())
                if total and finished >= 1 and total - finished >= 5:
                    address, pid = sorted(pids_before.items())[0]
                    os.kill(pid, signal.SIGKILL)
                    seen.update(states=states, killed=address)
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_when_tiles_are_half_done)
        killer.start()
        parts = fit_parts(articles, TrainOptions(cluster=cluster.scheduler_address))
        killer.join()
        # The kill landed while at least five tiles were still to be computed.
        assert "killed" in seen, "the training ended before a worker could be killed"
        deadline = time.monotonic() + 60
        while len(watcher.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids_after = watcher.run(os.getpid)
    assert pids_before[seen["killed"]] not in pids_after.values()
    assert_same_model_lists(parts, one)


@pytest.mark.corpora
@pytest.mark.slow
def test_a_scheduler_lost_mid_run_fails_the_training_and_keeps_the_model(tmp_path) -> None:
    """A real scheduler and workers (dask's own commands), the scheduler killed by PID while tiles run:
    `recommender train` exits 1 naming the cluster, and the current model is the one before."""
    from distributed import Client

    from .servers import free_port

    corpus = shared_corpus("20newsgroups.jsonl.gz")
    models = tmp_path / "models"
    assert main(["train", "--corpus", str(DEMO_CORPUS), "--models-dir", str(models), "--quiet"]) == 0
    before = sorted(p.name for p in models.iterdir())
    dask = Path(sys.executable).with_name("dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    # Reconnecting to a lost scheduler gives up after this (default 30 s).
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"}
    logs = tmp_path / "dask.log"
    with logs.open("wb") as log:
        scheduler = subprocess.Popen(
            [str(dask), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
            stdout=log,
            stderr=log,
            env=env,
        )
        workers = subprocess.Popen(
            [str(dask), "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
            stdout=log,
            stderr=log,
            env=env,
        )
    try:
        watcher = Client(address, timeout="60s")
        watcher.wait_for_workers(2, timeout=60)
        command = [sys.executable, "-m", "recommender", "train", "--corpus", str(corpus), "--models-dir", str(models)]
        train = subprocess.Popen(
            [*command, "--cluster", address, "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        deadline = time.monotonic() + 120
        # A closure: pickled by value for the scheduler process, which cannot import this test module.
        tiles_known = lambda dask_scheduler: sum(str(key).startswith("tile-") for key in dask_scheduler.tasks)  # noqa: E731
        while not watcher.run_on_scheduler(tiles_known):
            assert train.poll() is None, train.communicate()
            assert time.monotonic() < deadline, "no tile ever reached the scheduler"
            time.sleep(0.02)
        os.kill(scheduler.pid, signal.SIGKILL)
        _, err = train.communicate(timeout=120)
    finally:
        for process in (scheduler, workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        with contextlib.suppress(Exception):
            watcher.close(timeout=1)
    assert train.returncode == 1, err.decode()
    assert "recommender: error: the cluster failed during the all-pairs step: " in err.decode()
    assert sorted(p.name for p in models.iterdir()) == before
    assert load_bundle(models).manifest["articles"] < 100  # still the demo model


@pytest.mark.slow
@pytest.mark.parametrize("options", [{}, {"stem": True, "ngram_range": (1, 2)}, {"cjk": "jieba"}])
def test_counting_on_the_cluster_equals_counting_here(client, options) -> None:
    """Vectorising per partition: the same vocabulary and counts, whatever the languages and analysers."""
    from recommender.counting import count_terms
    from recommender.tfidf import TfidfModel

    model = TfidfModel(**options)
    texts = [
        ("en", "Running runners ran", "The council approved the new tram line, running late"),
        ("de", "Häuser in Berlin", "Die Häuser der Stadt werden teurer, sagt der Rat"),
        ("zh", "北京欢迎你", "北京的新电车线路今天开通了"),
        ("en", "", "A body without a title about tram lines"),
        ("fr", "Le conseil", ""),
    ] * 7
    languages, titles, bodies = (list(column) for column in zip(*texts, strict=True))
    analyzers = {language: model.build_analyzer(language) for language in sorted(set(languages))}
    here = count_terms(analyzers, languages, titles, bodies, 1)
    there = cluster_count_terms(client, model, languages, titles, bodies)
    assert there[0] == here[0]
    for mine, theirs in zip(here[1:], there[1:], strict=True):
        assert (mine != theirs).nnz == 0 and mine.shape == theirs.shape


def test_a_worker_keeps_the_state_of_two_runs_at_most() -> None:
    from recommender import tiles

    x = random_matrix(40, 30, 0.2, seed=9)
    runs = [tiles._Inputs(f"run-{n}", x, np.arange(40), 5, True, 0.0, ((0, 20), (20, 40)), 8) for n in range(3)]
    tiles._RUNS.clear()
    first = tiles._worker_of(runs[0])
    assert tiles._worker_of(runs[0]) is first  # the run's later tasks reuse it
    tiles._worker_of(runs[1])
    tiles._worker_of(runs[2])
    assert list(tiles._RUNS) == ["run-1", "run-2"]
    assert tiles._forget("run-1") > 0 and list(tiles._RUNS) == ["run-2"]
    tiles._RUNS.clear()
