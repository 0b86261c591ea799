"""A synthetic Claude Code log folder with the line shapes real session logs have.

Used by ``benchmarks/claude_parity.py``. Deterministic for a seed. What it writes, per session:

- user prompts, assistant messages written as one line per content block (thinking, text,
  tool_use) that repeat the message's usage (the earlier blocks with a smaller ``output_tokens``,
  as Claude Code logs them while streaming), and user ``tool_result`` lines carrying file
  contents (most of the bytes, as in real logs);
- ``summary``, ``system`` and ``file-history-snapshot`` lines (a few snapshots of several MB);
- subagent files (``<session>/subagents/agent-*.jsonl``, ``isSidechain: true``), ``/btw``
  sidechain replays of a message under a new ``requestId`` with the same timestamp;
- older-version lines without ``requestId`` (some with a recorded ``costUSD``), ``<synthetic>``
  API-error messages, ``usage.cache_creation`` 5m/1h splits on newer versions, long-context
  turns past 200k tokens, ``speed: fast`` turns, advisor iterations;
- malformed lines: truncated JSON, negative and fractional token counts, bad timestamps, empty
  ids, and files whose last line is cut off mid-write.
"""

from __future__ import annotations

import json
import os
import random
import string
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

# Models priced identically by ccusage 20.0.24's embedded table and llmlab's pricing.
MODELS = [
    ("claude-sonnet-4-5-20250929", 40),
    ("claude-opus-4-1-20250805", 8),
    ("claude-haiku-4-5-20251001", 20),
    ("claude-opus-4-6", 10),
    ("claude-sonnet-4-6", 12),
    ("claude-opus-4-5-20251101", 6),
    ("claude-sonnet-4-20250514", 4),
]
PROJECTS = ["atlas", "billing-api", "docs-site", "infra", "ml-pipeline", "mobile-app",
            "notebooks", "search", "support-bot", "web-frontend", "data-lake", "cli-tools"]
_DUMP = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_WORDS = ("the of and to in is for on that with as this by from at be it are an or not "
          "function return value data file test error import class self config user request "
          "cost token model cache session project query result table index update").split()


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class _Writer:
    """Text for one session, with the shared fields Claude Code puts on every line."""

    def __init__(self, rng: random.Random, project: str, session: str, version: str,
                 sidechain: bool = False):
        self.rng, self.project, self.session, self.version = rng, project, session, version
        self.sidechain = sidechain
        self.lines: list[str] = []
        self.parent = None

    def _base(self, kind: str, t: datetime) -> dict:
        me = str(uuid.UUID(int=self.rng.getrandbits(128)))
        d = {"parentUuid": self.parent, "isSidechain": self.sidechain, "userType": "external",
             "cwd": f"/home/dev/{self.project}", "sessionId": self.session,
             "version": self.version, "gitBranch": self.rng.choice(["main", "main", "feature/x"]),
             "type": kind, "uuid": me, "timestamp": _ts(t)}
        self.parent = me
        return d

    def text(self, n_words: int) -> str:
        return " ".join(self.rng.choice(_WORDS) for _ in range(n_words))

    def user_prompt(self, t: datetime) -> None:
        d = self._base("user", t)
        d["message"] = {"role": "user", "content": self.text(self.rng.randint(5, 60))}
        self.lines.append(_DUMP(d))

    def tool_result(self, t: datetime, size: int) -> None:
        d = self._base("user", t)
        body = self.text(max(1, size // 6))
        d["message"] = {"role": "user", "content": [
            {"tool_use_id": "toolu_" + _rid(self.rng, 24), "type": "tool_result", "content": body}]}
        d["toolUseResult"] = {"stdout": body[: size // 3], "stderr": "", "interrupted": False}
        self.lines.append(_DUMP(d))

    def assistant(self, t: datetime, model: str, usage: dict, *, request_id: str | None,
                  message_id: str, blocks: int, cost_usd: float | None = None,
                  sidechain: bool | None = None, api_error: bool = False) -> list[str]:
        out = []
        for i in range(blocks):
            d = self._base("assistant", t + timedelta(milliseconds=37 * i))
            u = dict(usage)
            if i < blocks - 1 and "output_tokens" in u and isinstance(u["output_tokens"], int):
                u["output_tokens"] = max(1, u["output_tokens"] // (blocks - i + 1))
            kind = ["thinking", "text", "tool_use"][min(i, 2)] if blocks > 1 else "text"
            content = {"type": kind}
            if kind == "tool_use":
                content.update(id="toolu_" + _rid(self.rng, 24), name="Read",
                               input={"file_path": f"/home/dev/{self.project}/src/x.py"})
            else:
                content[kind] = self.text(self.rng.randint(10, 120))
            d["message"] = {"id": message_id, "type": "message", "role": "assistant",
                            "model": model, "content": [content], "stop_reason": None,
                            "stop_sequence": None, "usage": u}
            if request_id is not None:
                d["requestId"] = request_id
            if cost_usd is not None:
                d["costUSD"] = cost_usd
            if sidechain is not None:
                d["isSidechain"] = sidechain
            if api_error:
                d["isApiErrorMessage"] = True
            line = _DUMP(d)
            self.lines.append(line)
            out.append(line)
        return out


def _rid(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def _usage(rng: random.Random, version: str, long_context: bool) -> dict:
    cache_read = rng.randint(210_000, 420_000) if long_context else int(rng.expovariate(1 / 40_000))
    write = int(rng.expovariate(1 / 3_000)) if rng.random() < 0.6 else 0
    u = {"input_tokens": rng.randint(1, 40) if rng.random() < 0.9 else rng.randint(1_000, 30_000),
         "cache_creation_input_tokens": write, "cache_read_input_tokens": cache_read,
         "output_tokens": rng.randint(5, 2_500), "service_tier": "standard"}
    if long_context and rng.random() < 0.3:
        u["input_tokens"] = rng.randint(200_001, 260_000)
    if version >= "1.0.7":  # newer versions split cache writes into 5m and 1h
        one_hour = write if rng.random() < 0.25 else 0
        u["cache_creation"] = {"ephemeral_5m_input_tokens": write - one_hour,
                               "ephemeral_1h_input_tokens": one_hour}
    return u


def _session(rng: random.Random, out: Path, project: str, start: datetime, target: int,
             stats: dict) -> None:
    session = str(uuid.UUID(int=rng.getrandbits(128)))
    version = rng.choice(["0.2.90", "1.0.3", "1.0.72", "2.0.14", "2.1.9"])
    old = version < "1.0"
    w = _Writer(rng, project, session, version)
    t = start
    models = [m for m, _ in MODELS]
    weights = [wt for _, wt in MODELS]
    model = rng.choices(models, weights)[0]
    size = 0
    turn = 0
    subagents: list[_Writer] = []
    while size < target:
        turn += 1
        w.user_prompt(t)
        for _ in range(rng.randint(1, 6)):
            t += timedelta(seconds=rng.randint(2, 90))
            if rng.random() < 0.03:
                model = rng.choices(models, weights)[0]
            long_context = model.startswith("claude-sonnet-4") and "4-6" not in model and rng.random() < 0.04
            usage = _usage(rng, version, long_context)
            if model == "claude-opus-4-6" and rng.random() < 0.05:
                usage["speed"] = "fast"
            if rng.random() < 0.01:
                usage["iterations"] = [
                    {"type": "message", "input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"]},
                    {"type": "advisor_message", "model": "claude-opus-4-5-20251101",
                     "input_tokens": rng.randint(1000, 9000), "output_tokens": rng.randint(50, 900)}]
            mid = "msg_" + _rid(rng, 24)
            rid = None if old else "req_" + _rid(rng, 24)
            cost = round(rng.uniform(0.001, 0.4), 6) if old and rng.random() < 0.5 else None
            written = w.assistant(t, model, usage, request_id=rid, message_id=mid,
                                  blocks=rng.choice([1, 2, 2, 3]), cost_usd=cost)
            if rid and rng.random() < 0.02:  # a /btw replay: same message, new requestId, sidechain
                d = json.loads(written[-1])
                d["requestId"] = "req_" + _rid(rng, 24)
                d["isSidechain"] = True
                w.lines.append(_DUMP(d))
                stats["replays"] += 1
            if rng.random() < 0.5:
                w.tool_result(t + timedelta(seconds=1), int(rng.lognormvariate(8.1, 1.2)))
            if rng.random() < 0.004:
                w.assistant(t, "<synthetic>", {"input_tokens": 0, "output_tokens": 0,
                                                "cache_creation_input_tokens": 0,
                                                "cache_read_input_tokens": 0},
                            request_id=None, message_id=str(uuid.UUID(int=rng.getrandbits(128))),
                            blocks=1, api_error=True)
            if rng.random() < 0.003:
                _malformed(rng, w, t)
                stats["malformed"] += 1
            if not old and rng.random() < 0.02:
                sub = subagents[-1] if subagents and rng.random() < 0.6 else None
                if sub is None:
                    sub = _Writer(rng, project, session, version, sidechain=True)
                    subagents.append(sub)
                for _ in range(rng.randint(1, 4)):
                    sub.user_prompt(t)
                    sub.assistant(t + timedelta(seconds=3), rng.choice(["claude-haiku-4-5-20251001", model]),
                                  _usage(rng, version, False), request_id="req_" + _rid(rng, 24),
                                  message_id="msg_" + _rid(rng, 24), blocks=rng.choice([1, 2]))
                    sub.tool_result(t + timedelta(seconds=4), int(rng.lognormvariate(7, 1)))
        if rng.random() < 0.05:
            w.lines.append(_DUMP({"type": "summary", "summary": w.text(8), "leafUuid": w.parent}))
        if rng.random() < 0.02:
            snap = {"type": "file-history-snapshot", "messageId": str(uuid.UUID(int=rng.getrandbits(128))),
                    "snapshot": {"trackedFileBackups": {f"src/f{i}.py": {"backupFileName": w.text(400)}
                                                        for i in range(rng.randint(5, 40))},
                                 "timestamp": _ts(t)}, "isSnapshotUpdate": False}
            w.lines.append(_DUMP(snap))
        size = sum(len(x) + 1 for x in w.lines)
        # Time moves on: mostly minutes, sometimes hours (new 5-hour blocks), sometimes days.
        r = rng.random()
        t += timedelta(minutes=rng.randint(1, 20)) if r < 0.85 else (
            timedelta(hours=rng.randint(1, 7)) if r < 0.97 else timedelta(days=rng.randint(1, 3)))
    folder = out / "projects" / f"-home-dev-{project}"
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(w.lines) + "\n"
    if rng.random() < 0.03:  # Claude Code was writing the last line when we looked
        text += w.lines[-1][: len(w.lines[-1]) // 2]
        stats["partial_tails"] += 1
    (folder / f"{session}.jsonl").write_text(text)
    stats["bytes"] += len(text.encode())
    stats["files"] += 1
    for i, sub in enumerate(subagents):
        sub_dir = folder / session / "subagents"
        sub_dir.mkdir(parents=True, exist_ok=True)
        body = "\n".join(sub.lines) + "\n"
        (sub_dir / f"agent-{i:04x}.jsonl").write_text(body)
        stats["bytes"] += len(body.encode())
        stats["files"] += 1
    stats["sessions"] += 1
    stats["last_time"] = max(stats.get("last_time") or t, t)


def _malformed(rng: random.Random, w: _Writer, t: datetime) -> None:
    kind = rng.randrange(5)
    good = {"type": "assistant", "timestamp": _ts(t), "sessionId": w.session, "version": w.version,
            "requestId": "req_" + _rid(rng, 24),
            "message": {"id": "msg_" + _rid(rng, 24), "model": "claude-haiku-4-5-20251001",
                        "usage": {"input_tokens": 10, "output_tokens": 5}}}
    if kind == 0:
        w.lines.append(_DUMP(good)[:-7])                          # truncated JSON
    elif kind == 1:
        good["message"]["usage"]["output_tokens"] = -5            # negative count
        w.lines.append(_DUMP(good))
    elif kind == 2:
        good["message"]["usage"]["input_tokens"] = 10.5           # fractional count
        w.lines.append(_DUMP(good))
    elif kind == 3:
        good["timestamp"] = "2026-13-45T99:00:00.000Z"            # impossible timestamp
        w.lines.append(_DUMP(good))
    else:
        good["requestId"] = ""                                    # empty id
        w.lines.append(_DUMP(good))


def generate(out: str | os.PathLike, target_bytes: int, *, seed: int = 4,
             start: datetime | None = None, days: int = 150) -> dict:
    """Write a Claude config folder (``out/projects/...``) of about ``target_bytes``."""
    rng = random.Random(seed)
    out = Path(out)
    start = start or datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)
    stats = {"bytes": 0, "files": 0, "sessions": 0, "replays": 0, "malformed": 0,
             "partial_tails": 0, "last_time": None}
    while stats["bytes"] < target_bytes:
        project = rng.choice(PROJECTS)
        begin = start + timedelta(days=rng.uniform(0, days), hours=rng.uniform(0, 12))
        per_session = int(min(max(rng.lognormvariate(13.3, 1.0), 50_000), 40_000_000))
        _session(rng, out, project, begin, per_session, stats)
    stats["last_time"] = stats["last_time"].isoformat() if stats["last_time"] else None
    return stats


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    print(generate(sys.argv[1], int(float(sys.argv[2]) * 2**20)))
