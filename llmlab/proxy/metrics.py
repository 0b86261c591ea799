"""Prometheus metrics of the proxy, counted by a ProxyService hook and exposed at scrape time.

:class:`ProxyMetrics` is an ``after_record`` hook: per journaled record it does one dict lookup
and a few additions into plain Python numbers (no locks, no prometheus objects on the request
path; the hook and the scrape both run on the server's event loop). At scrape time it is a
prometheus_client *collector* that turns those numbers, the journal's backlog, the flusher's
state and the alert dispatcher's counters into metric families, in a private
``CollectorRegistry`` (never the process-global one that jupyter_server's ``/metrics`` uses).

Label values ``model`` and ``project`` come from clients, so each label keeps at most
``max_label_values`` distinct values; later newcomers are counted as ``other``. Histograms are
labelled by model only (buckets x projects would multiply the series).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

OTHER = "other"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")
STORE_STATUSES = ("starting", "ok", "locked", "error")

# Indexes into a (model, project, status class) accumulator.
_REQ, _ERR, _IN, _OUT, _CR, _CW, _REASON, _COST, _UNPRICED = range(9)


class LabelCap:
    """The first ``limit`` distinct values pass; later ones become ``other``."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int):
        self.limit = max(1, int(limit))
        self.seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        v = value or ""
        if v in self.seen:
            return v
        if len(self.seen) >= self.limit:
            return OTHER
        self.seen.add(v)
        return v


class Histogram:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)   # the last one is +Inf
        self.sum = 0.0

    def observe(self, v: float) -> None:
        self.counts[bisect_left(self.bounds, v)] += 1
        self.sum += v

    def buckets(self) -> list[tuple[str, int]]:
        out, acc = [], 0
        for bound, n in zip(self.bounds + (float("inf"),), self.counts):
            acc += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), acc))
        return out


@dataclass
class StoreSnapshot:
    """What the scrape read off the loop: the journal's backlog and waiting records."""
    segments: int = 0
    bytes: int = 0
    oldest_age_s: float | None = None
    records: int = 0


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status and 100 <= status < 600 else "unknown"


class ProxyMetrics:
    """The hook (``after_record``) and the collector (``collect``) in one object."""

    def __init__(self, *, max_label_values: int = 100, service=None, flusher=None, alerts=None):
        self.models = LabelCap(max_label_values)
        self.projects = LabelCap(max_label_values)
        self.service = service
        self.flusher = flusher
        self.alerts = alerts
        self.started = time.time()
        # Arrival of the first record journaled after the flusher's flush number
        # ``_pending_flushes``: the age of the oldest record still waiting, give or take one flush.
        self._flusher_state = flusher.state if flusher is not None else None
        self._pending_since: float | None = None
        self._pending_flushes = -1
        self._series: dict[tuple[str, str, str], list] = {}
        self._latency: dict[str, Histogram] = {}
        self._ttft: dict[str, Histogram] = {}
        self.snapshot = StoreSnapshot()

    # -- the request path: keep it to a few microseconds ----------------------------------
    def after_record(self, call, rec) -> None:
        st = self._flusher_state
        if st is not None and st["flushes"] != self._pending_flushes:
            self._pending_flushes = st["flushes"]
            self._pending_since = time.time()
        route = call.route
        model = self.models(route.deployment.model_name if route is not None else rec.model_requested)
        project = self.projects(rec.project)
        status = rec.status_code
        key = (model, project, status_class(status))
        acc = self._series.get(key)
        if acc is None:
            acc = self._series[key] = [0, 0, 0, 0, 0, 0, 0, Decimal(0), 0]
        acc[_REQ] += 1
        if (status or 0) >= 400 or rec.error_type:
            acc[_ERR] += 1
        if rec.total_tokens is not None:
            acc[_IN] += rec.input_tokens or 0
            acc[_OUT] += rec.output_tokens or 0
            acc[_CR] += rec.cache_read_tokens or 0
            acc[_CW] += rec.cache_write_tokens or 0
            acc[_REASON] += rec.reasoning_tokens or 0
            if rec.cost_usd is None:
                acc[_UNPRICED] += 1
            else:
                acc[_COST] += rec.cost_usd
        if rec.duration_ms is not None:
            h = self._latency.get(model)
            if h is None:
                h = self._latency[model] = Histogram(LATENCY_BUCKETS)
            h.observe(rec.duration_ms / 1000.0)
        if rec.ttft_ms is not None:
            h = self._ttft.get(model)
            if h is None:
                h = self._ttft[model] = Histogram(TTFT_BUCKETS)
            h.observe(rec.ttft_ms / 1000.0)

    # -- scrape time -----------------------------------------------------------------------
    def read_store(self) -> StoreSnapshot:
        """Blocking (lists and reads journal files): call in an executor before a scrape."""
        from ..store.journal import waiting_records

        store = self.service.store
        b = store.backlog()
        records = waiting_records(store.journal_dir) if b.segments else 0
        self.snapshot = StoreSnapshot(b.segments, b.bytes, b.oldest_age_s, records)
        return self.snapshot

    def describe(self) -> list:
        return []   # families vary with what was seen; the registry must not call collect() early

    def collect(self):
        yield from self._calls()
        yield from self._histograms()
        yield from self._store()
        yield from self._alerts()

    def _calls(self):
        req = CounterMetricFamily("llmlab_requests", "Proxied calls, by model, project and HTTP "
                                  "status class.", labels=["model", "project", "status_class"])
        err = CounterMetricFamily("llmlab_request_errors", "Proxied calls that failed (status >= "
                                  "400 or an error recorded).", labels=["model", "project", "status_class"])
        tok = CounterMetricFamily("llmlab_tokens", "Tokens of proxied calls, by kind (input is "
                                  "uncached input; output includes reasoning).",
                                  labels=["model", "project", "kind"])
        cost = CounterMetricFamily("llmlab_cost_usd", "Cost of proxied calls in US dollars "
                                   "(priced calls only).", labels=["model", "project"])
        unpriced = CounterMetricFamily("llmlab_unpriced_requests", "Calls with usage but no "
                                       "price (their cost is unknown, not 0).", labels=["model", "project"])
        by_mp: dict[tuple[str, str], list] = {}
        for (model, project, sc), acc in sorted(self._series.items()):
            req.add_metric([model, project, sc], acc[_REQ])
            if acc[_ERR]:
                err.add_metric([model, project, sc], acc[_ERR])
            total = by_mp.setdefault((model, project), [0, 0, 0, 0, 0, Decimal(0), 0])
            for i, j in enumerate(range(_IN, _UNPRICED + 1)):
                total[i] += acc[j]
        for (model, project), t in by_mp.items():
            for kind, n in zip(TOKEN_KINDS, t[:5]):
                tok.add_metric([model, project, kind], n)
            cost.add_metric([model, project], float(t[5]))
            unpriced.add_metric([model, project], t[6])
        return [req, err, tok, cost, unpriced]

    def _histograms(self):
        out = []
        for name, doc, data in (
                ("llmlab_request_duration_seconds", "Time from a call's arrival to its last byte.",
                 self._latency),
                ("llmlab_time_to_first_token_seconds", "Time from a streamed call's arrival to its "
                 "first content chunk.", self._ttft)):
            fam = HistogramMetricFamily(name, doc, labels=["model"])
            for model, h in sorted(data.items()):
                fam.add_metric([model], h.buckets(), sum_value=h.sum)
            out.append(fam)
        return out

    def _store(self):
        s = self.snapshot
        gauges = []

        def gauge(name, doc, value):
            g = GaugeMetricFamily(name, doc, value=value)
            gauges.append(g)

        gauge("llmlab_journal_segments", "Journal segments waiting to be flushed into usage.duckdb.",
              s.segments)
        gauge("llmlab_journal_bytes", "Bytes waiting in the journal.", s.bytes)
        gauge("llmlab_journal_records", "Records waiting in the journal (counted in at most "
              "64 MiB of it).", s.records)
        gauge("llmlab_journal_oldest_segment_age_seconds", "Seconds since the oldest waiting "
              "segment was last written (0: nothing waits).", s.oldest_age_s or 0.0)
        if self.service is not None:
            gauges.append(CounterMetricFamily("llmlab_journal_write_errors", "Usage records that "
                                              "could not be journaled.", value=self.service.journal_errors))
        state = dict(self.flusher.state) if self.flusher is not None else {}
        last = state.get("last_flush_at")
        last_ts = datetime.fromisoformat(last).timestamp() if last else None
        now = time.time()
        gauge("llmlab_flush_lag_seconds", "Age of the oldest record waiting in the journal (0 "
              "when it is empty), give or take one flush.", self._lag(s, state, last_ts, now))
        if last_ts is not None:
            gauge("llmlab_last_flush_timestamp_seconds", "Unix time of the last successful flush.",
                  last_ts)
        st = GaugeMetricFamily("llmlab_store_status", "1 for the flusher's current state of "
                               "usage.duckdb.", labels=["status"])
        current = state.get("status", "starting")
        for name in STORE_STATUSES:
            st.add_metric([name], 1.0 if name == current else 0.0)
        gauges.append(st)
        if self.flusher is not None:
            gauges.append(CounterMetricFamily("llmlab_records_flushed", "Records ingested into "
                                              "usage.duckdb by this server.",
                                              value=state.get("records_ingested", 0)))
        return gauges

    def _lag(self, s: StoreSnapshot, state: dict, last_ts: float | None, now: float) -> float:
        if not s.segments:
            return 0.0
        if self._pending_since is not None and state.get("flushes") == self._pending_flushes:
            start = self._pending_since      # our own oldest record since the last flush
        else:
            # Only records we did not journal wait (a dead process's segments): they are no
            # older than the last flush, nor than their segment's last write.
            start = last_ts or self.started
            if s.oldest_age_s is not None:
                start = max(start, now - s.oldest_age_s)
        return max(now - start, 0.0)

    def _alerts(self):
        a = self.alerts
        if a is None:
            return []
        sent = CounterMetricFamily("llmlab_alerts", "Budget alerts dispatched (log, event, "
                                   "webhooks).", value=a.dispatched)
        hooks = CounterMetricFamily("llmlab_alert_webhook_deliveries", "Alert deliveries to "
                                    "webhooks, by result (after retries).", labels=["result"])
        hooks.add_metric(["delivered"], a.delivered)
        hooks.add_metric(["failed"], a.failed)
        attempts = CounterMetricFamily("llmlab_alert_webhook_attempts", "HTTP attempts to deliver "
                                       "alerts to webhooks, retries included.", value=a.attempts)
        return [sent, hooks, attempts]


def build_registry(metrics: ProxyMetrics) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    return registry

