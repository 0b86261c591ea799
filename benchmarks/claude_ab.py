"""A/B of llmlab builds on the Claude Code first import, against ccusage, round by round.

On a shared machine one import's time moves by a third from run to run, so a change is judged
by alternating: each round runs `ccusage claude daily`, then every variant's first import into
an empty home, on the same corpus as claude_parity.py. Per round: wall time, CPU seconds and
the ratio to that round's ccusage; at the end, medians and how many rounds each variant beat
the first one.

A variant is ``NAME`` (the working tree) or ``NAME:REF`` (a git commit, branch or tag, checked
out into a temporary worktree and put first on PYTHONPATH: same virtualenv, other llmlab code).

    python benchmarks/claude_ab.py before:HEAD~1 after --rounds 8
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from claude_corpus import generate  # noqa: E402
from claude_parity import ccusage_binary, load, timed  # noqa: E402
from proxy_ab import remove_worktree, worktree  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+", help="NAME or NAME:REF; the first is the baseline")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "llmlab-claude-bench")
    ap.add_argument("--size-mb", type=float, default=1030, help="corpus size (default 1030 MiB)")
    ap.add_argument("--ccusage", default=os.environ.get("LLMLAB_CCUSAGE"))
    args = ap.parse_args()
    corpus = args.work / f"corpus-{int(args.size_mb)}"
    if not (corpus / "projects").exists():
        print(f"generating {args.size_mb:.0f} MiB of Claude Code logs in {corpus} ...")
        generate(corpus, int(args.size_mb * 2**20))
    cc = ccusage_binary(args.work, args.ccusage)
    llmlab = str(Path(sys.executable).with_name("llmlab"))
    scratch = Path(tempfile.mkdtemp(prefix="llmlab-claude-ab-"))
    code: dict[str, Path | None] = {}
    try:
        for v in args.variants:
            name, _, ref = v.partition(":")
            code[name] = worktree(ref, scratch / name) if ref else None
        runs: dict[str, list[tuple[float, float, float]]] = {n: [] for n in code}
        for i in range(args.rounds):
            base = timed([cc, "claude", "daily", "--json", "--offline", "--timezone", "UTC"],
                         dict(os.environ, CLAUDE_CONFIG_DIR=str(corpus), NO_COLOR="1"))[0]
            line = [f"round {i + 1}: ccusage {base:.2f} s"]
            for name, path in code.items():
                home = scratch / f"home-{name}"
                shutil.rmtree(home, ignore_errors=True)
                env = dict(os.environ, **({"PYTHONPATH": str(path)} if path else {}))
                wall, _, _, cpu = timed([llmlab, "import", "claude-code", "--path", str(corpus),
                                         "--home", str(home), "-q"], env)
                runs[name].append((wall, cpu, wall / base))
                line.append(f"{name} {wall:.2f} s {cpu:.2f} CPU-s {wall / base:.2f}x")
            print(" | ".join(line) + f"  (load {load()})", flush=True)
        first = next(iter(runs))
        print("medians (wall, CPU, ratio to ccusage daily); rounds faster than the first variant")
        for name, rs in runs.items():
            wall, cpu, ratio = (statistics.median(r[k] for r in rs) for k in range(3))
            wins = sum(r[0] < f[0] for r, f in zip(rs, runs[first]))
            print(f"  {name:12} {wall:5.2f} s  {cpu:5.2f} CPU-s  {ratio:5.2f}x"
                  + ("" if name == first else f"  faster in {wins} of {len(rs)}"))
    finally:
        for path in code.values():
            if path is not None:
                remove_worktree(path)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
