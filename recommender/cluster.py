"""Training on a Dask cluster: where it runs, and the counting of terms by partition.

``recommender train --cluster local:N`` starts a ``distributed.LocalCluster``
of N one-thread worker processes on this machine; ``--cluster
tcp://host:8786`` uses the workers of a running scheduler (:func:`connect`).
On it, the articles' terms are counted a few runs of documents per worker and
merged here (:func:`cluster_count_terms`), then the exact all-pairs step runs
as tasks over row bands x column bands (:mod:`recommender.tiles`). Both give
what one process gives.

Dask is an optional extra (``pip install 'recommender[cluster]'``): this
module imports it only inside the functions that talk to a cluster.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import resource
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from .counting import Counts, count_chunk, merge_counts, text_bounds
from .errors import InvalidInputError, RecommenderError

MAX_LOCAL_WORKERS = 64
_LOCAL = re.compile(r"local:(\d{1,3})")
_ADDRESS = re.compile(r"(tcp|tls|ucx|inproc)://[^\s/]+")


class ClusterError(RecommenderError, RuntimeError):
    """The cluster could not be reached, or could not run the training."""


def check_cluster(spec: Any) -> str:
    """``spec`` if it names a cluster (local:N, or a scheduler address); InvalidInputError otherwise."""
    if isinstance(spec, str):
        local = _LOCAL.fullmatch(spec)
        if local and 1 <= int(local.group(1)) <= MAX_LOCAL_WORKERS:
            return spec
        if not local and _ADDRESS.fullmatch(spec):
            return spec
    raise InvalidInputError(
        f"cluster must be local:N (N workers on this machine, 1 to {MAX_LOCAL_WORKERS}) "
        f"or a scheduler address such as tcp://scheduler:8786, got {spec!r}"
    )


def require_dask() -> None:
    """Raise ClusterError with the install command when Dask is missing."""
    try:
        import dask  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ClusterError(
            f"training on a cluster needs Dask ({exc.name} is not installed): pip install 'recommender[cluster]'"
        ) from None


def _local_worker_settings() -> dict[str, Any]:
    """Dask settings for the workers of a local cluster."""
    return {
        # Dask's nanny starts every worker with MALLOC_TRIM_THRESHOLD_=65536: glibc then maps and
        # unmaps every large temporary array, which made the all-pairs tasks 2.0x slower here
        # (20 Newsgroups on local:1: 9.2 s of tile work against 4.5 s). None unsets it: the
        # workers keep glibc's default.
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
        # The statistical profiler samples each worker's threads every 10 ms; nobody reads it here.
        "distributed.worker.profile.enabled": False,
    }


@contextlib.contextmanager
def connect(spec: str) -> Iterator[Any]:
    """A ``distributed.Client`` for ``spec``: a fresh LocalCluster for local:N, closed on exit."""
    check_cluster(spec)
    require_dask()
    import dask
    from distributed import Client, LocalCluster

    local = _LOCAL.fullmatch(spec)
    cluster = None
    try:
        if local:
            with dask.config.set(_local_worker_settings()):
                cluster = LocalCluster(
                    n_workers=int(local.group(1)),
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address="127.0.0.1:0",
                    silence_logs=logging.ERROR,
                )
            client = Client(cluster)
        else:
            # Waits, and reconnects after a loss, for Dask's distributed.comm.timeouts.connect (30 s).
            client = Client(spec)
    except Exception as exc:  # refused, timed out, or worker processes that could not start
        if cluster is not None:
            cluster.close()
        raise ClusterError(f"cannot reach the cluster {spec}: {exc}") from exc
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def peak_memory() -> int:
    """This process's peak resident memory in bytes.

    On Linux from VmHWM: getrusage's ru_maxrss keeps the peak of the process
    that forked this one (a local cluster's workers would report the
    client's memory at the time they were started).
    """
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _count_partition(params: dict[str, Any], part: tuple[list[str], list[str], list[str]]) -> Counts:
    """Term counts of one run of documents, on a worker (its analysers are built there: they do not pickle)."""
    from .tfidf import TfidfModel

    languages, titles, bodies = part
    model = TfidfModel(**params)
    analyzers = {language: model.build_analyzer(language) for language in sorted(set(languages))}
    return count_chunk(analyzers, languages, titles, bodies)


def cluster_count_terms(
    client: Any, model: Any, languages: Sequence[str], titles: Sequence[str], bodies: Sequence[str]
) -> Counts:
    """``count_terms`` on the workers of ``client``: the vocabulary and counts of one process.

    Map: each of two runs of documents per worker (about equal text) is
    counted in its own local vocabulary on a worker. Reduce: the vocabularies
    are merged here into one sorted vocabulary, and the document frequencies,
    min_df/max_df and the weights follow from the merged counts as on one
    machine.
    """
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    bounds = text_bounds(titles, bodies, 2 * workers)
    parts = [(list(languages[a:b]), list(titles[a:b]), list(bodies[a:b])) for a, b in itertools.pairwise(bounds)]
    try:
        # Keys of their own (hash=False): content-hashed keys are shared by two trainings of the same corpus,
        # and one that releases its data while the next scatters it loses the next one's data.
        sent = client.scatter(parts, hash=False)
        futures = [client.submit(_count_partition, model.get_params(), part, pure=False) for part in sent]
        return merge_counts(client.gather(futures))
    except RecommenderError:
        raise
    except Exception as exc:  # a lost scheduler, workers that kept dying
        raise ClusterError(f"the cluster failed while counting terms: {type(exc).__name__}: {exc}") from exc
