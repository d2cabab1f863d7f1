"""Prometheus metrics of this process (one registry per app)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _JobGauge(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("mirrorline_jobs", "Jobs stored, by status.", labels=["status"])
        try:
            for status, n in self.counts().items():
                family.add_metric([status], n)
        except Exception:  # the store is closed during shutdown
            pass
        yield family


class _QueueGauge(Collector):
    """Queue depth, the oldest waiting job's age and the workers alive, read on scrape."""

    def __init__(self, stats: Callable[[], dict[str, float]]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            stats = self.stats()
        except Exception:  # the store is closed, or the database away: no sample
            return
        yield GaugeMetricFamily(
            "mirrorline_queue_depth", "Jobs waiting for a worker.", value=stats["queued"]
        )
        yield GaugeMetricFamily(
            "mirrorline_queue_oldest_age_seconds",
            "Age of the oldest job waiting for a worker, s (0: none waiting).",
            value=stats["oldest_queued_age_s"],
        )
        yield GaugeMetricFamily(
            "mirrorline_workers",
            "Analysis workers alive: this server's processes (embedded), or the worker "
            "nodes with a heartbeat in the last WORKER_STALLED_S (multi-node).",
            value=stats["workers"],
        )


class Metrics:
    """HTTP, analysis and webhook metrics; ``jobs`` gauges are read from the store on scrape."""

    def __init__(
        self,
        job_counts: Callable[[], dict[str, int]],
        queue_stats: Callable[[], dict[str, float]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mirrorline_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mirrorline_http_request_duration_seconds",
            "Time to answer HTTP requests.",
            ["method", "route"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.analyses = Counter(
            "mirrorline_analyses",
            "Analyses run, by kind (sync|job) and outcome (ok|error|internal).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.analysis_seconds = Histogram(
            "mirrorline_analysis_duration_seconds",
            "Wall time of one analysis in a worker.",
            ["kind"],
            buckets=(0.5, 1, 2, 5, 10, 20, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.webhooks = Counter(
            "mirrorline_webhook_deliveries",
            "Webhook delivery attempts, by result (delivered|retry|failed).",
            ["result"],
            registry=self.registry,
        )
        self.busy = Counter(
            "mirrorline_busy_rejections",
            "Requests refused with 503 server.busy.",
            registry=self.registry,
        )
        self.streams = Counter(
            "mirrorline_streams",
            "Live streams ended, by protocol and reason (stop|disconnect|idle|too_long|"
            "error|shutdown).",
            ["protocol", "reason"],
            registry=self.registry,
        )
        self.stream_frames = Counter(
            "mirrorline_stream_frames",
            "Audio frames received on live streams, by what happened to them "
            "(placed|duplicate|late|too_far|empty).",
            ["result"],
            registry=self.registry,
        )
        self.stream_refusals = Counter(
            "mirrorline_stream_refusals",
            "Live stream connections closed for a bad message, auth or limits, by code.",
            ["code"],
            registry=self.registry,
        )
        self.registry.register(_JobGauge(job_counts))
        if queue_stats is not None:
            self.registry.register(_QueueGauge(queue_stats))
