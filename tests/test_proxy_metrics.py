"""The metrics hook's own parts: Prometheus' `le` bucket semantics and the label-value cap."""

from __future__ import annotations

from llmlab.proxy.metrics import OTHER, Histogram, LabelCap, status_class


def test_histogram_buckets_are_cumulative_and_inclusive():
    h = Histogram((0.1, 1.0))
    for v in (0.1, 0.5, 1.0, 1.0001, 7.0):
        h.observe(v)
    # A value equal to a bound belongs to that bucket (le = "less than or equal").
    assert h.buckets() == [("0.1", 1), ("1.0", 3), ("+Inf", 5)]
    assert h.sum == 0.1 + 0.5 + 1.0 + 1.0001 + 7.0


def test_label_cap_keeps_the_first_values_and_folds_the_rest():
    cap = LabelCap(2)
    assert [cap(v) for v in ("a", None, "b", "a", "", "c")] == ["a", "", OTHER, "a", "", OTHER]
    assert cap.seen == {"a", ""}


def test_status_classes():
    assert [status_class(s) for s in (200, 201, 404, 429, 499, 502, None, 0)] == \
        ["2xx", "2xx", "4xx", "4xx", "4xx", "5xx", "unknown", "unknown"]
