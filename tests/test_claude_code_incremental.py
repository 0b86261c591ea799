"""Incremental import: only new files and bytes are read, and the dedup rules hold across runs."""

from __future__ import annotations

import os
import threading

import pytest

import claude_fixture as fx
from llmlab.importers import import_claude_code
from llmlab.store import rollup


def _rows(store, sql="SELECT message_id, output_tokens, is_sidechain, session_id FROM requests"):
    with store.read() as con:
        return {r[0]: r[1:] for r in con.execute(sql).fetchall()}


def _count(store):
    with store.read() as con:
        return con.execute("SELECT count(*), sum(total_tokens) FROM requests").fetchone()


def test_appended_lines_are_read_and_a_cut_off_line_waits(store, tmp_path):
    root = fx.write(tmp_path / "claude")
    sess_a = root / "projects" / "-home-u-alpha" / "sess-a.jsonl"
    import_claude_code(store, [root])
    # Claude Code finishes the cut-off line and writes another, then starts a third.
    new = fx.CUT_OFF[40:] + "\n" + fx.line("2026-10-01T12:50:00.000Z", "m9", fx.HAIKU,
                                           {"input_tokens": 1, "output_tokens": 2}, req="r9") + "\n"
    third = fx.line("2026-10-01T12:55:00.000Z", "m10", fx.HAIKU,
                    {"input_tokens": 3, "output_tokens": 4}, req="r10")
    size_before = sess_a.stat().st_size
    with open(sess_a, "a") as fh:
        fh.write(new + third[:30])
    r = import_claude_code(store, [root])
    assert r.files_read == 1 and r.files_unchanged == 4
    # Only the bytes after the last newline already read (the cut-off line's start) are read.
    assert r.bytes_read == sess_a.stat().st_size - (size_before - 40)
    rows = _rows(store)
    assert rows["m8"][0] == 7 and rows["m9"][0] == 2 and "m10" not in rows
    with open(sess_a, "a") as fh:
        fh.write(third[30:] + "\n")
    r = import_claude_code(store, [root])
    assert r.entries == 1 and _rows(store)["m10"][0] == 4
    assert _count(store) == (fx.ROWS + 3, fx.TOTAL_TOKENS + 14 + 3 + 7)


def test_main_chain_wins_when_it_arrives_in_a_later_run(store, tmp_path):
    root = fx.write(tmp_path / "claude")
    later = root / "projects" / "-home-u-beta" / "sess-d.jsonl"
    text = later.read_text()
    later.unlink()
    import_claude_code(store, [root])
    assert _rows(store)["c1"] == (50, True, "sess-c")      # only the sidechain line so far
    later.write_text(text)
    import_claude_code(store, [root])
    assert _rows(store)["c1"] == (10, False, "sess-d")     # replaced, though it has fewer tokens
    assert _count(store) == (fx.ROWS, fx.TOTAL_TOKENS)


def test_more_tokens_win_and_replays_merge_across_runs(store, tmp_path):
    root = tmp_path / "claude"
    folder = root / "projects" / "p"
    folder.mkdir(parents=True)
    first = folder / "s1.jsonl"
    first.write_text(fx.line("2026-10-01T10:00:00.000Z", "x1", fx.HAIKU,
                             {"input_tokens": 1, "output_tokens": 5}, req="rx", session="s1") + "\n"
                     + fx.line("2026-10-01T11:00:00.000Z", "x2", fx.HAIKU,
                               {"input_tokens": 1, "output_tokens": 9}, req="ry", session="s1",
                               sidechain=True) + "\n")
    import_claude_code(store, [root])
    with open(first, "a") as fh:   # x1's final content block, and x2's main-chain original
        fh.write(fx.line("2026-10-01T10:00:01.000Z", "x1", fx.HAIKU,
                         {"input_tokens": 1, "output_tokens": 50}, req="rx", session="s1") + "\n"
                 + fx.line("2026-10-01T11:00:00.000Z", "x2", fx.HAIKU,
                           {"input_tokens": 1, "output_tokens": 3}, req="rz", session="s1") + "\n")
    r = import_claude_code(store, [root])
    assert r.replays_merged == 1
    rows = _rows(store, "SELECT message_id, output_tokens, provider_request_id FROM requests")
    assert rows == {"x1": (50, "rx"), "x2": (3, "rz")}


def test_a_rewritten_file_is_read_again(store, tmp_path):
    root = fx.write(tmp_path / "claude")
    d = root / "projects" / "-home-u-beta" / "sess-d.jsonl"
    import_claude_code(store, [root])
    d.write_text(fx.line("2026-10-04T09:00:00.000Z", "d9", fx.HAIKU,
                         {"input_tokens": 5, "output_tokens": 5}, req="rd9", session="sess-d")
                 + "\n" + "x" * 400 + "\n")   # same file, other content, larger
    r = import_claude_code(store, [root])
    assert r.files_read == 1 and r.bytes_read == d.stat().st_size
    assert _rows(store)["d9"][0] == 5


def test_rollup_stays_fresh_and_agrees(store, tmp_path):
    import_claude_code(store, [fx.write(tmp_path / "claude")])
    with store.read() as con:
        assert rollup.is_fresh(con)
        assert con.execute("SELECT sum(total_tokens) FROM _llmlab_rollup").fetchone()[0] \
            == fx.TOTAL_TOKENS


def test_imports_racing_each_other_count_once(store, tmp_path):
    root = fx.write(tmp_path / "claude")
    errors = []

    def run():
        try:
            import_claude_code(store.__class__(store.home), [root])
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert _count(store) == (fx.ROWS, fx.TOTAL_TOKENS)


def test_no_change_reimport_opens_no_log_file(store, tmp_path, monkeypatch):
    root = fx.write(tmp_path / "claude")
    import_claude_code(store, [root])
    opened = []
    real_open = open

    def spy(path, *a, **k):
        if str(path).endswith(".jsonl"):
            opened.append(path)
        return real_open(path, *a, **k)
    monkeypatch.setattr("builtins.open", spy)
    r = import_claude_code(store, [root])
    assert r.files_unchanged == 5 and not opened
    assert os.path.exists(store.db_path)


def _reads_the_store(store, monkeypatch) -> list:
    """Spy on the importer's DuckDB path: the list fills each time it reads the store's table."""
    from llmlab.importers import claude_code

    calls = []
    real = claude_code._positions
    monkeypatch.setattr(claude_code, "_positions", lambda s: calls.append(1) or real(s))
    return calls


def test_no_change_reimport_needs_no_duckdb_until_the_store_changes(store, tmp_path, monkeypatch):
    root = fx.write(tmp_path / "claude")
    import_claude_code(store, [root])
    calls = _reads_the_store(store, monkeypatch)
    assert import_claude_code(store.home, [root]).files_unchanged == 5 and not calls
    # Someone deletes a session's rows and its read positions (or restores an old copy): the
    # store file changed, so the mirror is not trusted and the table is read again.
    with store.write() as con:
        con.execute("DELETE FROM requests WHERE session_id = 'sess-d'")
        con.execute("DELETE FROM _llmlab_log_files WHERE path LIKE '%sess-d.jsonl'")
    r = import_claude_code(store, [root])
    assert calls and r.files_read == 1 and r.files_unchanged == 4
    assert _count(store) == (fx.ROWS, fx.TOTAL_TOKENS)
    calls.clear()
    assert import_claude_code(store, [root]).files_unchanged == 5 and not calls
    # A grown log file is seen without the store's help, then read from where it stopped.
    sess_b = root / "projects" / "-home-u-beta" / "sess-b.jsonl"
    with open(sess_b, "a") as fh:
        fh.write(fx.line("2026-11-03T10:00:00.000Z", "b3", fx.HAIKU,
                         {"input_tokens": 4, "output_tokens": 4}, req="rb3x",
                         session="sess-b") + "\n")
    r = import_claude_code(store, [root])
    assert calls and r.files_read == 1 and r.entries == 1
    assert _count(store) == (fx.ROWS + 1, fx.TOTAL_TOKENS + 8)


def test_a_deleted_store_is_imported_again(store, tmp_path):
    root = fx.write(tmp_path / "claude")
    import_claude_code(store, [root])
    store.db_path.unlink()
    r = import_claude_code(store.__class__(store.home), [root])
    assert r.files_read == 5
    assert _count(store) == (fx.ROWS, fx.TOTAL_TOKENS)


def test_no_change_reimport_command_does_not_load_duckdb(store, tmp_path, python):
    import subprocess

    root = fx.write(tmp_path / "claude")
    import_claude_code(store, [root])
    code = ("import sys; from llmlab.cli import main; rc = main(); "
            "print('LOADED', sorted(m for m in ('duckdb', 'pandas', 'pyarrow', 'litellm') "
            "if m in sys.modules)); sys.exit(rc)")
    r = subprocess.run([python, "-c", code, "import", "claude-code", "--path", str(root), "-q",
                        "--home", str(store.home)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "0 of 5 files read" in r.stdout and "LOADED []" in r.stdout


def test_import_command_does_not_load_pandas(store, tmp_path, python):
    """pyarrow imports pandas (a third of a second) to build a table from Python lists; the
    importer builds its small tables in DuckDB, so a first import does not pay for it."""
    import subprocess

    root = fx.write(tmp_path / "claude")
    code = ("import sys; from llmlab.cli import main; rc = main(); "
            "print('LOADED', sorted(m for m in ('pandas',) if m in sys.modules)); sys.exit(rc)")
    cmd = [python, "-c", code, "import", "claude-code", "--path", str(root), "-q",
           "--home", str(store.home)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "5 of 5 files read" in r.stdout and "LOADED []" in r.stdout
    assert _count(store) == (fx.ROWS, fx.TOTAL_TOKENS)
    # A grown file is read from where the import stopped (its new lines parsed from Python).
    with open(root / "projects" / "-home-u-beta" / "sess-b.jsonl", "a") as fh:
        fh.write(fx.line("2026-11-03T10:00:00.000Z", "b3", fx.HAIKU,
                         {"input_tokens": 4, "output_tokens": 4}, req="rb3x",
                         session="sess-b") + "\n")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "1 of 5 files read" in r.stdout and "LOADED []" in r.stdout
    assert _count(store) == (fx.ROWS + 1, fx.TOTAL_TOKENS + 8)


def test_one_message_in_two_batches_of_one_chunk_is_one_row(store, tmp_path, monkeypatch):
    """A message logged in two files (a resumed session) parsed in different batches that are
    written together: the chunk is deduplicated before it is written (claude_code._dedup).
    This crashed the import ("unfinished result") until the dedup read its count to the end."""
    from llmlab.importers import claude_batch

    monkeypatch.setattr(claude_batch, "BATCH_BYTES", 1)   # a batch per file, one chunk
    root = fx.write(tmp_path / "claude")
    r = import_claude_code(store, [root], workers=2)
    assert r.files_read == 5
    assert _count(store) == (fx.ROWS, fx.TOTAL_TOKENS)


def test_a_failed_write_keeps_what_was_written_and_the_next_import_finishes(store, tmp_path,
                                                                           monkeypatch):
    from llmlab.errors import StoreError
    from llmlab.importers import claude_batch, claude_code

    root = fx.write(tmp_path / "claude")
    # One file per batch and one batch per chunk, so the import writes five chunks in turn.
    monkeypatch.setattr(claude_batch, "BATCH_BYTES", 1)
    monkeypatch.setattr(claude_code, "FLUSH_ROWS", 1)
    real, written = claude_code._flush, []

    def second_write_fails(*args):
        if written:
            raise StoreError("disk full (test)")
        real(*args)
        written.append(1)
    monkeypatch.setattr(claude_code, "_flush", second_write_fails)
    with pytest.raises(StoreError, match="disk full"):
        import_claude_code(store, [root], workers=2)
    assert 0 < _count(store)[0] < fx.ROWS
    monkeypatch.setattr(claude_code, "_flush", real)
    r = import_claude_code(store, [root])
    assert r.files_unchanged == 1 and r.files_read == 4
    assert _count(store) == (fx.ROWS, fx.TOTAL_TOKENS)
