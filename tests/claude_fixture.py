"""A small Claude Code log folder with every case the importer must get right, and its totals
worked out by hand (prices per million tokens: haiku-4-5 1 / 5 / 0.1 read / 1.25 write-5m;
sonnet-4-5 3 / 15 / 0.3 / 3.75, 1h writes 6, above 200k tokens 6 / 22.5 / 0.6 / 7.5 / 12;
opus-4-6 5 / 25, fast mode x6).

    projects/-home-u-alpha/sess-a.jsonl        main session: content-block duplicates, a message
                                               without requestId logged 3 times, a long-context
                                               turn, a /btw sidechain replay, <synthetic>, a
                                               recorded costUSD, fast mode, four bad lines, a
                                               3 MB file-history-snapshot, a cut-off last line
    projects/-home-u-alpha/sess-a/subagents/agent-1.jsonl   a subagent of sess-a
    projects/-home-u-beta/sess-b.jsonl         another project; repeats m1 with fewer tokens
    projects/-home-u-beta/sess-c.jsonl         c1 as a sidechain line with more tokens ...
    projects/-home-u-beta/sess-d.jsonl         ... and as a main-chain line: this one is kept
"""

from __future__ import annotations

import json
from pathlib import Path

HAIKU, SONNET, OPUS = "claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929", "claude-opus-4-6"


def line(ts, mid, model, usage, *, req=None, session="sess-a", sidechain=None, **extra) -> str:
    d = {"parentUuid": None, "isSidechain": bool(sidechain), "userType": "external",
         "cwd": "/home/u/alpha", "sessionId": session, "version": "2.1.3", "gitBranch": "main",
         "type": "assistant", "timestamp": ts,
         "message": {"id": mid, "type": "message", "role": "assistant", "model": model,
                     "content": [{"type": "text", "text": "ok"}], "stop_reason": None,
                     "usage": usage}}
    if req is not None:
        d["requestId"] = req
    d.update(extra)
    return json.dumps(d, separators=(",", ":"))


def user(ts, text="hi", session="sess-a") -> str:
    return json.dumps({"type": "user", "sessionId": session, "timestamp": ts,
                       "message": {"role": "user", "content": text}}, separators=(",", ":"))


M1_FULL = {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 200,
           "cache_read_input_tokens": 1000,
           "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 0}}
M3 = {"input_tokens": 250_000, "output_tokens": 1000, "cache_creation_input_tokens": 10_000,
      "cache_read_input_tokens": 300_000,
      "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 10_000}}


def session_a() -> list[str]:
    m2 = {"input_tokens": 10, "output_tokens": 50, "cache_creation_input_tokens": 1000}
    return [
        user("2026-10-01T09:59:00.000Z"),
        # m1: one line per content block; the first logged while output was still streaming.
        line("2026-10-01T09:59:59.000Z", "m1", HAIKU, dict(M1_FULL, output_tokens=5), req="r1"),
        line("2026-10-01T10:00:00.000Z", "m1", HAIKU, M1_FULL, req="r1"),
        # m2: an old version's message without requestId, one line per content block.
        line("2026-10-01T10:30:00.000Z", "m2", SONNET, m2, version="1.0.3"),
        line("2026-10-01T10:30:00.100Z", "m2", SONNET, m2, version="1.0.3"),
        line("2026-10-01T10:30:00.200Z", "m2", SONNET, m2, version="1.0.3"),
        # m3: long context (tiers past 200k), a 1-hour cache write ...
        line("2026-10-01T11:00:00.000Z", "m3", SONNET, M3, req="r3"),
        # ... replayed by /btw as a sidechain under a new requestId, same timestamp: merged.
        line("2026-10-01T11:00:00.000Z", "m3", SONNET, M3, req="r3b", sidechain=True),
        line("2026-10-01T11:05:00.000Z", "m4", "<synthetic>",
             {"input_tokens": 0, "output_tokens": 0}, req="r4", isApiErrorMessage=True),
        # Four lines ccusage drops: cut JSON, a negative count, a bad timestamp, an empty id.
        line("2026-10-01T11:06:00.000Z", "bad1", HAIKU, {"input_tokens": 1, "output_tokens": 1},
             req="rb1")[:-9],
        line("2026-10-01T11:07:00.000Z", "bad2", HAIKU, {"input_tokens": 1, "output_tokens": -5},
             req="rb2"),
        line("2026-10-01 11:08:00", "bad3", HAIKU, {"input_tokens": 1, "output_tokens": 1},
             req="rb3"),
        line("2026-10-01T11:09:00.000Z", "bad4", HAIKU, {"input_tokens": 1, "output_tokens": 1},
             req=""),
        json.dumps({"type": "file-history-snapshot", "messageId": "snap",
                    "snapshot": {"trackedFileBackups": {"big.txt": "x" * 3_000_000}}}),
        line("2026-10-01T12:00:00.000Z", "m6", HAIKU, {"input_tokens": 1000, "output_tokens": 1000},
             req="r6", costUSD=0.5),
        line("2026-10-01T12:30:00.000Z", "m7", OPUS,
             {"input_tokens": 1000, "output_tokens": 100, "speed": "fast"}, req="r7"),
    ]


CUT_OFF = line("2026-10-01T12:40:00.000Z", "m8", HAIKU, {"input_tokens": 7, "output_tokens": 7},
               req="r8")


def write(root: Path) -> Path:
    """Write the folder under ``root`` (a Claude config dir) and return ``root``."""
    alpha = root / "projects" / "-home-u-alpha"
    beta = root / "projects" / "-home-u-beta"
    (alpha / "sess-a" / "subagents").mkdir(parents=True, exist_ok=True)
    beta.mkdir(parents=True, exist_ok=True)
    (alpha / "sess-a.jsonl").write_text("\n".join(session_a()) + "\n" + CUT_OFF[:40])
    (alpha / "sess-a" / "subagents" / "agent-1.jsonl").write_text(line(
        "2026-10-01T11:20:00.000Z", "s1", HAIKU, {"input_tokens": 10, "output_tokens": 10},
        req="rs1", sidechain=True) + "\n")
    (beta / "sess-b.jsonl").write_text("\n".join([
        line("2026-10-02T23:30:00.000Z", "b1", HAIKU, {"input_tokens": 2000, "output_tokens": 300},
             req="rb1x", session="sess-b", cwd="/home/u/beta"),
        line("2026-10-02T23:31:00.000Z", "m1", HAIKU, dict(M1_FULL, output_tokens=5), req="r1",
             session="sess-b"),
        line("2026-11-02T01:00:00.000Z", "b2", SONNET, {"input_tokens": 100, "output_tokens": 100},
             req="rb2x", session="sess-b"),
    ]) + "\n")
    (beta / "sess-c.jsonl").write_text(line(
        "2026-10-03T08:00:00.000Z", "c1", HAIKU, {"input_tokens": 10, "output_tokens": 50},
        req="rc1", session="sess-c", sidechain=True) + "\n")
    (beta / "sess-d.jsonl").write_text(line(
        "2026-10-03T09:00:00.000Z", "c1", HAIKU, {"input_tokens": 10, "output_tokens": 10},
        req="rc1", session="sess-d") + "\n")
    return root


# -- the totals, by hand -------------------------------------------------------------------------
# Kept rows (tokens in / out / cache write / cache read; cost USD):
#   m1  haiku   100 / 20 / 200 / 1000      0.0001 + 0.0001 + 0.00025 + 0.0001        = 0.00055
#   m2  sonnet   10 / 50 / 1000 / 0        0.00003 + 0.00075 + 0.00375               = 0.00453
#   m3  sonnet  250k / 1000 / 10k(1h) / 300k   0.6+0.3 + 0.015 + 0.06 + 0.06+0.06    = 1.095
#   m4  <synthetic>  0                                                                = 0
#   m6  haiku  1000 / 1000                 recorded costUSD 0.5 (priced: 0.006)
#   m7  opus-4-6 fast  1000 / 100          (0.005 + 0.0025) x 6                      = 0.045
#   s1  haiku  10 / 10                                                                = 0.00006
#   b1  haiku  2000 / 300                                                             = 0.0035
#   b2  sonnet 100 / 100                                                              = 0.0018
#   c1  haiku  10 / 10 (the main-chain line)                                         = 0.00006
ROWS = 10
INPUT, OUTPUT, CACHE_WRITE, CACHE_READ = 254_230, 2_590, 11_200, 301_000
TOTAL_TOKENS = 569_020
COST_AUTO, COST_CALCULATE, COST_DISPLAY = 1.6505, 1.1565, 0.5
DROPPED = {"malformed JSON": 1, "bad token count": 1, "bad timestamp": 1, "empty id": 1}
ENTRIES = 16          # valid usage lines, duplicates included
SESSIONS = {"sess-a": (566_500, 1.64514), "sess-b": (2_500, 0.0053), "sess-d": (20, 0.00006)}
MONTHS = {"2026-10": (568_820, 1.6487), "2026-11": (200, 0.0018)}
DAYS_UTC = {"2026-10-01": (566_500, 1.64514), "2026-10-02": (2_300, 0.0035),
            "2026-10-03": (20, 0.00006), "2026-11-02": (200, 0.0018)}
DAYS_TOKYO = {"2026-10-01": (566_500, 1.64514), "2026-10-03": (2_320, 0.00356),
              "2026-11-02": (200, 0.0018)}
