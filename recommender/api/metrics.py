"""Prometheus metrics: requests and latency by route and status, model facts.

With several server workers, ``PROMETHEUS_MULTIPROC_DIR`` (set by
``recommender serve --workers N``) makes every worker write its counts to
shared files, and ``/metrics`` sums them; the model's facts come from the
worker that answers (see :class:`ModelCollector`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .state import ModelHolder

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ModelCollector(Collector):
    """The served model's facts, read from the holder when /metrics is rendered.

    They are not kept in metric files: with several workers a file per
    process would keep an old version's series alive after a reload (a
    worker that answers /metrics shows the model it serves, and every worker
    follows a reload within a second).
    """

    def __init__(self, holder: ModelHolder) -> None:
        self.holder = holder

    def collect(self) -> Iterator[Metric]:
        rec = self.holder.current
        info = GaugeMetricFamily("recommender_model_info", "The loaded model version (value 1)", labels=["version"])
        articles = GaugeMetricFamily("recommender_model_articles", "Articles in the loaded model")
        loaded_at = GaugeMetricFamily("recommender_model_loaded_timestamp_seconds", "When the model was loaded")
        if rec is not None:
            info.add_metric([rec.version], 1)
            articles.add_metric([], len(rec))
            loaded_at.add_metric([], self.holder.loaded_at or 0.0)
        yield from (info, articles, loaded_at)


class Metrics:
    """The service's metric objects, in their own registry (tests build many apps)."""

    def __init__(self, holder: ModelHolder) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.model = ModelCollector(holder)
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if self.multiprocess else self.registry
        self.requests = Counter(
            "recommender_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "recommender_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=registry,
        )
        if not self.multiprocess:
            self.registry.register(self.model)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        if self.multiprocess:
            registry = CollectorRegistry()
            prom_multiprocess.MultiProcessCollector(registry)
            registry.register(self.model)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by route template."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
