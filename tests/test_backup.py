"""``llmlab backup``: consistent copies of a store that another process keeps writing, and restores.

A writer process (tests/store_workers.py) journals records and flushes every few tenths of a
second while backups are taken through the real command. Each copy must be a snapshot between two
flushes: the writer's records form an unbroken run from its first one, and the rollup in the copy
agrees with its ``requests`` table.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import llmlab
from llmlab.demo import seed_demo
from llmlab.store import Store
from llmlab.store.backup import verify

WORKER = Path(__file__).with_name("store_workers.py")


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("llmlab")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from llmlab.cli import main; sys.exit(main())"]


def backup_cmd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(_cli() + ["backup", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def seeded(tmp_path) -> Store:
    store = Store(tmp_path / "home")
    seed_demo(store, days=5, seed=3, progress=False)
    return store


def _writer_seqs(path: Path, prefix: str) -> list[int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT request_id FROM requests WHERE project = ?", [prefix]).fetchall()
    finally:
        con.close()
    return sorted(int(r[0].rsplit("-", 1)[1]) for r in rows)


@pytest.mark.slow
def test_backups_taken_while_a_writer_flushes_are_snapshots(seeded, tmp_path):
    writer = subprocess.Popen(
        [sys.executable, str(WORKER), "writer", "--home", str(seeded.home), "--prefix", "live",
         "--count", "400", "--flush-seconds", "0.2", "--pause", "0.01"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    backups = []
    try:
        while writer.poll() is None or len(backups) < 3:
            out = tmp_path / f"backup-{len(backups)}.duckdb"
            r = backup_cmd("--home", str(seeded.home), "--out", str(out))
            assert r.returncode == 0, r.stderr
            assert f"-> {out}" in r.stdout
            backups.append(out)
            if len(backups) >= 8:
                break
    finally:
        out_text, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    journaled = sum(line.startswith("J ") for line in out_text.splitlines())

    seen = []
    for path in backups:
        seqs = _writer_seqs(path, "live")
        assert seqs == list(range(len(seqs))), f"{path.name} is not a snapshot between flushes"
        seen.append(len(seqs))
        lab = llmlab.open(path)
        total = lab.sql("SELECT count(*) AS n FROM requests")["n"][0]
        assert lab.daily()["requests"].sum() == total          # the rollup came along, in step
        assert not list(path.parent.glob(f".{path.name}.*"))   # no temporary file left behind
    assert seen == sorted(seen), seen                            # later copies hold more
    # After the writer's last flush, a backup holds every record it journaled.
    final = tmp_path / "final.duckdb"
    assert backup_cmd("--home", str(seeded.home), "--out", str(final)).returncode == 0
    assert _writer_seqs(final, "live") == list(range(journaled))


def test_restore_is_putting_the_file_back(seeded, tmp_path):
    out = tmp_path / "copy.duckdb"
    r = backup_cmd("--home", str(seeded.home), "--out", str(out))
    assert r.returncode == 0, r.stderr
    original = llmlab.open(seeded.home)
    restored_home = tmp_path / "restored"
    restored_home.mkdir()
    shutil.copy(out, restored_home / "usage.duckdb")
    restored = llmlab.open(restored_home)
    cols = ["model", "requests", "total_tokens", "cost_usd"]
    assert restored.by_model()[cols].equals(original.by_model()[cols])
    assert verify(out).migrations == [r[0] for r in original.sql(
        "SELECT name FROM _llmlab_migrations ORDER BY name").itertuples(index=False)]
    # The flusher's idempotence holds on the restored store.
    store = Store(restored_home)
    store.record(_row_of(original))
    result = store.flush()
    assert (result.inserted, result.duplicates) == (0, 1)


def _row_of(lab):
    from llmlab.store import UsageRecord

    row = lab.requests(limit=1).iloc[0]
    return UsageRecord(request_id=row["request_id"], source=row["source"],
                       started_at=row["started_at"].to_pydatetime(), model=row["model"])


def test_backup_journal_records_are_flushed_first(seeded, tmp_path):
    # A record journaled by a process that has exited: the backup's flush ingests it.
    code = ("import sys; from datetime import datetime, timezone; from llmlab.store import Store, "
            "UsageRecord; s = Store(sys.argv[1]); s.record(UsageRecord(request_id='from-journal', "
            "source='proxy', started_at=datetime(2026, 1, 2, tzinfo=timezone.utc), model='m'))")
    subprocess.run([sys.executable, "-c", code, str(seeded.home)], check=True)
    assert seeded.backlog().segments >= 1
    out = tmp_path / "b.duckdb"
    assert backup_cmd("--home", str(seeded.home), "--out", str(out)).returncode == 0
    con = duckdb.connect(str(out), read_only=True)
    assert con.execute("SELECT count(*) FROM requests WHERE request_id = 'from-journal'").fetchone() == (1,)
    con.close()


def test_backup_refuses_to_overwrite_or_to_copy_onto_the_store(seeded, tmp_path):
    out = tmp_path / "b.duckdb"
    out.write_text("precious")
    r = backup_cmd("--home", str(seeded.home), "--out", str(out))
    assert r.returncode == 2 and "already exists" in r.stderr and out.read_text() == "precious"
    assert backup_cmd("--home", str(seeded.home), "--out", str(out), "--force").returncode == 0
    assert verify(out).requests > 0
    r = backup_cmd("--home", str(seeded.home), "--out", str(seeded.db_path), "--force")
    assert r.returncode == 2 and "is the store itself" in r.stderr
    r = backup_cmd("--home", str(tmp_path / "empty"), "--out", str(tmp_path / "x.duckdb"))
    assert r.returncode == 2 and "nothing to back up" in r.stderr
    assert not (tmp_path / "x.duckdb").exists()
