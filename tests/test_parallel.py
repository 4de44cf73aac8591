"""ordered_map: results in input order from worker processes, in-process when workers cannot be had."""

from __future__ import annotations

import logging
import operator

from facebank import parallel


def test_ordered_map_keeps_input_order_across_worker_processes():
    items = list(range(40))
    out = list(parallel.ordered_map(operator.neg, iter(items), 2, local=lambda: operator.neg,
                                    window_per_worker=2))
    assert out == [-i for i in items]


def test_daemonic_process_works_in_process_with_one_log_line(monkeypatch, caplog):
    class Daemon:
        daemon = True

    monkeypatch.setattr(parallel.mp, "current_process", lambda: Daemon())
    assert "daemonic" in (parallel.why_not_parallel() or "")
    with caplog.at_level(logging.WARNING, logger="facebank.parallel"):
        out = list(parallel.ordered_map(operator.neg, range(5), 2, local=lambda: operator.neg))
    assert out == [0, -1, -2, -3, -4]
    assert len([r for r in caplog.records if "working in this process" in r.getMessage()]) == 1


def test_one_worker_runs_in_process_without_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="facebank.parallel"):
        assert list(parallel.ordered_map(operator.neg, [1, 2], 1, local=lambda: operator.neg)) == [-1, -2]
    assert not caplog.records
