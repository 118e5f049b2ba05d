"""The exact candidate lists of a training: from threads here, or from the workers of a Dask cluster.

:func:`recommender.fit.fit_parts` opens the cluster
(:func:`recommender.cluster.connect`) around vectorising (``term_counter``) and
this step, so that one cluster serves both; Dask itself is imported only when
a cluster is used.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np

from .allpairs import Neighbours, all_pairs_topk
from .cluster import cluster_count_terms
from .options import TrainOptions
from .tiles import ClusterRun, cluster_all_pairs_topk


def term_counter(client: Any) -> Any:
    """The term counter of a cluster's client; None (count here) without one."""
    return None if client is None else functools.partial(cluster_count_terms, client)


def exact_candidates(
    matrix: Any, pool: int, tie_key: np.ndarray, options: TrainOptions, progress: bool, client: Any = None
) -> tuple[Neighbours, dict[str, Any] | None]:
    """The exact candidate lists, from threads here or from a Dask cluster's client; what the cluster reported."""
    bar = _progress_bar(matrix.shape[0], progress)
    update = bar.update if bar is not None else None
    floor = options.min_similarity
    try:
        if client is None:
            jobs = options.n_jobs
            lists = all_pairs_topk(matrix, pool, tie_key=tie_key, min_similarity=floor, n_jobs=jobs, progress=update)
            return lists, None
        run = ClusterRun()
        lists = cluster_all_pairs_topk(
            client, matrix, pool, tie_key=tie_key, min_similarity=floor, progress=update, report=run
        )
        return lists, run.summary()
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="article", desc="neighbours", file=sys.stderr, mininterval=0.5, dynamic_ncols=True)
