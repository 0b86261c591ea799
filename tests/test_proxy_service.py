"""ProxyService.record: the journal write and the hooks behind it."""

from __future__ import annotations

import logging

from llmlab.proxy import ModelList, ProxyService, Router
from llmlab.proxy.call import Attribution, Call
from llmlab.proxy.pricer import Pricer
from llmlab.store import Store


class Seen:
    def __init__(self):
        self.records = []

    def after_record(self, call, rec):
        self.records.append(rec)


def _service(tmp_path) -> ProxyService:
    return ProxyService(router=Router(ModelList(), offline=True), store=Store(tmp_path),
                        pricer=Pricer(), log=logging.getLogger("test"))


def _finished_call(svc: ProxyService) -> Call:
    call = Call("/v1/chat/completions", Attribution(project="atlas"), 0.0)
    call.route = svc.resolve("llmlab/offline", "chat/completions")
    call.usage = {"prompt_tokens": 3, "completion_tokens": 2}
    call.t_end = 0.01
    return call


def test_hooks_see_each_record_once_and_it_is_journaled(tmp_path):
    svc, seen = _service(tmp_path), Seen()
    svc.hooks.append(seen)
    call = _finished_call(svc)
    svc.record(call)
    svc.record(call)                           # once per call
    [rec] = seen.records
    assert rec.project == "atlas" and rec.total_tokens == 5 and rec.request_id == call.request_id
    assert svc.store.backlog().bytes > 0 and svc.journal_errors == 0


def test_a_failed_journal_write_still_reaches_the_hooks(tmp_path, caplog):
    """Budgets must settle a call that happened even if its record could not be written."""
    svc, seen = _service(tmp_path), Seen()
    svc.hooks.append(seen)

    def broken(_line):
        raise OSError("disk full")

    svc.journal.append = broken
    svc.record(_finished_call(svc))
    assert svc.journal_errors == 1 and "could not journal" in caplog.text
    assert len(seen.records) == 1 and seen.records[0].total_tokens == 5
