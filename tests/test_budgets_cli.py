"""``llmlab keys ...`` and ``llmlab budgets ...`` as real subprocesses on a real store."""

from __future__ import annotations

import json
import subprocess
import sys

import llmlab
from llmlab.policy import registry


def run(home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from llmlab.cli import main; "
                           "sys.exit(main())", *args, "--home", str(home)],
                          capture_output=True, text=True, timeout=120)


def test_keys_create_list_rotate_revoke(llmlab_home):
    out = run(llmlab_home, "keys", "create", "--project", "atlas", "--client", "acme",
              "--name", "ci bot", "--budget", "25", "--period", "week", "--hard", "--rpm", "60",
              "--tpm", "10000", "--models", "gpt-4o,gpt-4o-mini", "--expires", "2099-01-31")
    assert out.returncode == 0, out.stderr
    key = out.stdout.splitlines()[0]
    assert key.startswith("sk-llmlab-") and "not shown again" in out.stdout
    key_id = key.split("-")[2]
    listed = run(llmlab_home, "keys", "list")
    assert listed.returncode == 0 and key_id in listed.stdout and key not in listed.stdout
    assert "active" in listed.stdout and "atlas" in listed.stdout
    rows = json.loads(run(llmlab_home, "keys", "list", "--json").stdout)
    assert len(rows) == 1
    row = rows[0]
    assert (row["project"], row["client"], row["name"], row["rpm"], row["tpm"]) == \
        ("atlas", "acme", "ci bot", 60, 10000)
    assert row["models"] == ["gpt-4o", "gpt-4o-mini"]
    assert row["expires_at"].startswith("2099-01-31T23:59:59")
    assert "secret_hash" not in row and key not in json.dumps(row)
    budgets = json.loads(run(llmlab_home, "budgets", "list", "--json").stdout)
    assert [(b["budget_id"], b["limit_usd"], b["hard"]) for b in budgets] == \
        [(f"key:{key_id}:week", 25.0, True)]

    rotated = run(llmlab_home, "keys", "rotate", key_id, "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    assert new["key_id"] == key_id and new["key"] != key and new["rotated_at"]
    [info] = registry.list_keys(llmlab.open(llmlab_home).store)
    assert info.matches(new["key"]) and not info.matches(key)

    revoked = run(llmlab_home, "keys", "revoke", key_id)
    assert revoked.returncode == 0 and key_id in revoked.stdout
    assert "revoked" in run(llmlab_home, "keys", "list").stdout
    assert "no keys" in run(llmlab_home, "keys", "list", "--active").stdout
    again = run(llmlab_home, "keys", "rotate", key_id)
    assert again.returncode == 2 and "revoked" in again.stderr


def test_budgets_set_list_delete(llmlab_home):
    assert "no budgets" in run(llmlab_home, "budgets", "list").stdout
    out = run(llmlab_home, "budgets", "set", "--project", "atlas", "--limit", "100")
    assert out.returncode == 0 and "project:atlas:month" in out.stdout
    out = run(llmlab_home, "budgets", "set", "--client", "acme", "--limit", "5", "--period", "12h",
              "--hard", "--thresholds", "0.5,0.9,1")
    assert out.returncode == 0 and "client:acme:43200s" in out.stdout and "hard" in out.stdout
    # Setting it again updates it: one budget per target and period.
    assert run(llmlab_home, "budgets", "set", "--project", "atlas", "--limit", "150").returncode == 0
    rows = {b["budget_id"]: b for b in json.loads(run(llmlab_home, "budgets", "list", "--json").stdout)}
    assert set(rows) == {"project:atlas:month", "client:acme:43200s"}
    assert rows["project:atlas:month"]["limit_usd"] == 150.0
    assert rows["client:acme:43200s"]["thresholds"] == [0.5, 0.9, 1.0]
    text = run(llmlab_home, "budgets", "list").stdout
    assert "project:atlas:month: $0.0000 of $150.00" in text
    assert run(llmlab_home, "budgets", "delete", "client:acme:43200s").returncode == 0
    assert "client:acme" not in run(llmlab_home, "budgets", "list").stdout


def test_bad_input_exits_2_with_one_line(llmlab_home):
    for args, words in [
        (("budgets", "set", "--project", "p", "--limit", "-1"), "more than 0"),
        (("budgets", "set", "--project", "p", "--limit", "1", "--period", "fortnight"), "period"),
        (("budgets", "set", "--key", "0123456789ab", "--limit", "1"), "no key"),
        (("budgets", "delete", "project:nope:month"), "no budget"),
        (("keys", "revoke", "nothex"), "not a key id"),
        (("keys", "create", "--project", "p", "--expires", "someday"), "--expires"),
    ]:
        out = run(llmlab_home, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert words in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    # Both --project and --client: argparse refuses (exit 2 with usage).
    out = run(llmlab_home, "budgets", "set", "--project", "p", "--client", "c", "--limit", "1")
    assert out.returncode == 2 and "not allowed with" in out.stderr
