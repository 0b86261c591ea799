"""Claude Code import: parity with ccusage 20.0.24 and speed, on a generated corpus of >= 1 GB.

    python benchmarks/claude_parity.py                       # generate, compare, time (~10 min)
    python benchmarks/claude_parity.py --size-mb 200 --runs 1   # a quicker look

1. Writes a synthetic Claude config folder (benchmarks/claude_corpus.py; reused if present).
2. Installs ccusage@20.0.24 from npm into the work folder (or --ccusage / $LLMLAB_CCUSAGE).
3. Parity: `ccusage claude monthly|weekly|session|blocks --json --offline --timezone UTC` against
   `llmlab import claude-code` + `llmlab report ... --json`: tokens equal exactly per month,
   week, session and block; cost within 0.5%. Exit status 1 if not.
4. Speed, whole commands (process start to exit) under /usr/bin/time -v: ccusage's reports;
   llmlab's first import, no-change re-import and reports; the page cache warm, and dropped
   (echo 3 > /proc/sys/vm/drop_caches) when permitted. Each of our commands runs right after
   the ccusage command it is compared with (same load); medians, ranges and per-pair ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from claude_corpus import generate  # noqa: E402

CCUSAGE_VERSION = "20.0.24"
TOKENS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "totalTokens")
BLOCK_TOKENS = ("inputTokens", "outputTokens", "cacheCreationInputTokens", "cacheReadInputTokens")


def ccusage_binary(work: Path, given: str | None) -> str:
    if given:
        return given
    native = work / "ccusage" / "node_modules" / "@ccusage" / "ccusage-linux-x64" / "bin" / "ccusage"
    if not native.exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix",
                        str(work / "ccusage"), f"ccusage@{CCUSAGE_VERSION}"], check=True)
    if native.exists():  # the native build itself: no node wrapper in the timings
        native.chmod(0o755)
        return str(native)
    return str(work / "ccusage" / "node_modules" / ".bin" / "ccusage")


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, int, str, float]:
    """(wall seconds, peak RSS KiB, stdout, CPU seconds: user + system) of one whole command."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        out = subprocess.run(["/usr/bin/time", "-v", "-o", t.name, *cmd], env=env,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
        report = t.read()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", report).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = parts[-1] + 60 * parts[-2] + (3600 * parts[-3] if len(parts) > 2 else 0)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): (\S+)", report).group(1))
              for kind in ("User", "System"))
    return seconds, rss, out.stdout, cpu


def load() -> str:
    """The 1-minute load average: the machine may be shared, so every timing says what it met."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def drop_caches() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def compare(name: str, ours: list[dict], theirs: list[dict], key: str, tokens=TOKENS,
            cost: str = "totalCost") -> list[str]:
    o, t = {r[key]: r for r in ours}, {r[key]: r for r in theirs}
    problems = [f"{name}: {k} only in {'ours' if k in o else 'ccusage'}" for k in set(o) ^ set(t)]
    worst = 0.0
    for k in set(o) & set(t):
        if [o[k][x] for x in tokens] != [t[k][x] for x in tokens]:
            problems.append(f"{name} {k}: tokens {[o[k][x] for x in tokens]} vs "
                            f"{[t[k][x] for x in tokens]}")
        if t[k][cost]:
            worst = max(worst, abs(o[k][cost] - t[k][cost]) / abs(t[k][cost]))
    if worst > 0.005:
        problems.append(f"{name}: cost differs by up to {worst:.3%}")
    print(f"  {name:8} {len(t):5} rows, tokens {'equal' if not problems else 'DIFFER'}, "
          f"largest cost difference {worst:.5%}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "llmlab-claude-bench")
    ap.add_argument("--size-mb", type=float, default=1030, help="corpus size (default 1030 MiB)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per command (median)")
    ap.add_argument("--ccusage", default=os.environ.get("LLMLAB_CCUSAGE"))
    args = ap.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / f"corpus-{int(args.size_mb)}"
    if not (corpus / "projects").exists():
        print(f"generating {args.size_mb:.0f} MiB of Claude Code logs in {corpus} ...")
        print(" ", generate(corpus, int(args.size_mb * 2**20)))
    size = sum(p.stat().st_size for p in corpus.rglob("*.jsonl"))
    files = sum(1 for _ in corpus.rglob("*.jsonl"))
    cc = ccusage_binary(work, args.ccusage)
    llmlab = [str(Path(sys.executable).with_name("llmlab"))]
    cc_env = dict(os.environ, CLAUDE_CONFIG_DIR=str(corpus), NO_COLOR="1")
    print(f"corpus {size / 2**20:.0f} MiB in {files} files; ccusage {cc}")

    def ccusage(cmd):
        return timed([cc, "claude", cmd, "--json", "--offline", "--timezone", "UTC"], cc_env)

    def ours_import(home):
        return timed([*llmlab, "import", "claude-code", "--path", str(corpus), "--home", str(home), "-q"])

    def ours_report(home, cmd):
        return timed([*llmlab, "report", cmd, "--json", "--home", str(home), "--timezone", "UTC"])

    # -- parity --------------------------------------------------------------------------------
    home = work / "home-parity"
    shutil.rmtree(home, ignore_errors=True)
    first = ours_import(home)
    print(f"imported: {first[2].strip()}")
    problems: list[str] = []
    theirs = {c: json.loads(ccusage(c)[2]) for c in ("monthly", "weekly", "session", "blocks")}
    ours = {c: json.loads(ours_report(home, c)[2]) for c in ("monthly", "weekly", "session", "blocks")}
    print("parity with ccusage", CCUSAGE_VERSION)
    problems += compare("monthly", ours["monthly"]["monthly"], theirs["monthly"]["monthly"], "month")
    problems += compare("weekly", ours["weekly"]["weekly"], theirs["weekly"]["weekly"], "week")
    problems += compare("session", ours["session"]["sessions"], theirs["session"]["sessions"], "sessionId")
    flat = lambda bs: [dict(b, **b["tokenCounts"]) for b in bs]  # noqa: E731
    problems += compare("blocks", flat(ours["blocks"]["blocks"]), flat(theirs["blocks"]["blocks"]),
                        "id", tokens=BLOCK_TOKENS + ("totalTokens", "entries", "isGap"), cost="costUSD")
    for p in problems[:20]:
        print("  MISMATCH", p)

    # -- speed ---------------------------------------------------------------------------------
    # The machine may be shared: each of our commands runs right after the ccusage command it is
    # compared with, pair by pair, so both meet the same load; the ratio is taken per pair and
    # its median reported, with the medians and ranges of both sides.
    def show(label, results):
        secs = [r[0] for r in results]
        print(f"  {label:48} {statistics.median(secs):7.2f} s  ({min(secs):.2f}-{max(secs):.2f}, "
              f"n={len(secs)})  peak {max(r[1] for r in results) / 1024:6.0f} MiB  load {load()}")
        return statistics.median(secs)

    def paired(theirs_label, theirs, ours_label, ours, runs=args.runs):
        a, b = [], []
        for i in range(runs):
            a.append(theirs(i)[:2])
            b.append(ours(i)[:2])
        show(theirs_label, a)
        show(ours_label, b)
        ratios = sorted(y[0] / x[0] for x, y in zip(a, b))
        return statistics.median(ratios), ratios[0], ratios[-1]

    def fresh_import(i):
        h = work / f"home-{i}"
        shutil.rmtree(h, ignore_errors=True)
        return ours_import(h)

    print(f"timings (whole commands, warm page cache; load at start {load()})")
    first = {c: paired(f"ccusage claude {c}", lambda i, c=c: ccusage(c),
                       f"llmlab import claude-code (first) [vs {c}]", fresh_import)
             for c in ("daily", "monthly")}
    again = show("llmlab import claude-code (no change)",
                 [ours_import(home)[:2] for _ in range(max(5, args.runs))])
    reports = {c: paired(f"ccusage claude {c}", lambda i, c=c: ccusage(c),
                         f"llmlab report {c} --json", lambda i, c=c: ours_report(home, c))
               for c in ("daily", "monthly", "session", "blocks")}
    cold = {}
    if drop_caches():
        print("timings, page cache dropped before each run")
        drop_caches()
        cold["ccusage claude monthly"] = ccusage("monthly")[:2]
        drop_caches()
        h = work / "home-cold"
        shutil.rmtree(h, ignore_errors=True)
        cold["llmlab import claude-code (first)"] = ours_import(h)[:2]
        for k, (sec, rss) in cold.items():
            print(f"  {k:42} {sec:7.2f} s  peak {rss / 1024:6.0f} MiB  load {load()}")
    else:
        print("page cache could not be dropped here (no permission to write "
              "/proc/sys/vm/drop_caches): cold numbers not measured")
    print("ratios (median of per-pair ratios, range in brackets)")
    for c, (med, lo, hi) in first.items():
        print(f"  first import / ccusage {c:8}        {med:5.2f}x  ({lo:.2f}-{hi:.2f})"
              + ("  (target <= 1.5x)" if c == "daily" else ""))
    print(f"  no-change re-import                   {again:5.2f} s  (target < 0.5 s)")
    for c, (med, lo, hi) in reports.items():
        print(f"  ccusage {c:8} / llmlab report {c:8} {1 / med:5.1f}x faster  "
              f"({1 / hi:.1f}-{1 / lo:.1f})  (target >= 5x)")
    if cold:
        ours_s, theirs_s = cold["llmlab import claude-code (first)"][0], cold["ccusage claude monthly"][0]
        print(f"  cold: first import / ccusage monthly  {ours_s / theirs_s:5.2f}x")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
