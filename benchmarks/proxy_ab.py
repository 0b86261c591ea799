"""A/B of two llmlab builds (or settings) through the proxy: CPU per call and added latency.

On a shared machine absolute numbers move by a factor of two within minutes, so changes to the
proxy are judged here by comparison in one run: each variant is a real ``jupyter server`` with
the extension, pinned to CPU 0 like in proxy_bench.py; all are started, then measured in turn
while the others wait stopped (SIGSTOP), round after round, so that each sees the same machine.

A variant is ``NAME`` or ``NAME:REF``: REF is a git commit, branch or tag of this repository,
checked out into a temporary worktree and put first on PYTHONPATH (same virtualenv, other
llmlab code); without REF, the working tree. ``--trait NAME=TRAIT=VALUE`` sets an LLMLabApp
trait for one variant.

    python benchmarks/proxy_ab.py before:HEAD~1 after            # CPU per call at 64 in flight
    python benchmarks/proxy_ab.py before:HEAD~1 after --latency  # 1 in flight: added p50
    python benchmarks/proxy_ab.py gc-on gc-off --trait gc-off=tune_gc=False
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import proxy_bench as pb


def worktree(ref: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(pb.ROOT), "worktree", "add", "--detach", "-q", str(into), ref],
                   check=True)
    return into


def remove_worktree(tree: Path) -> None:
    subprocess.run(["git", "-C", str(pb.ROOT), "worktree", "remove", "--force", str(tree)],
                   check=False)


def start_variant(name: str, code: Path | None, traits: list[str], config: Path, work: Path,
                  env: dict) -> tuple[subprocess.Popen, pb.Target]:
    d = work / name
    d.mkdir()
    port = pb.free_port()
    jupyter = Path(sys.executable).parent / "jupyter"
    venv = {**env, "LLMLAB_HOME": str(d / "home"), "JUPYTER_CONFIG_DIR": str(d / "jcfg"),
            "JUPYTER_RUNTIME_DIR": str(d / "jrt"), "JUPYTER_DATA_DIR": str(d / "jdata")}
    if code is not None:
        venv["PYTHONPATH"] = str(code)
    proc = pb.start(name, [
        str(jupyter), "server", "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--port={port}", f"--IdentityProvider.token={pb.TOKEN}", f"--ServerApp.root_dir={d}",
        f"--LLMLabApp.config_file={config}", "--ServerApp.log_level=WARN"]
        + [f"--LLMLabApp.{t}" for t in traits], venv, d / "server.log", d)
    auth = {"Authorization": f"Bearer {pb.TOKEN}"}
    pb.wait_http(port, "/llmlab/api/health", auth)
    return proc, pb.Target(name, port, "/llmlab/v1/chat/completions", "bench", auth)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("variants", nargs="+", metavar="NAME[:REF]")
    p.add_argument("--trait", action="append", default=[], metavar="NAME=TRAIT=VALUE")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--seconds", type=float, default=3.0, help="per round at 64 in flight")
    p.add_argument("--latency", action="store_true",
                   help="1 in flight instead: requests alternated with direct ones, added p50")
    p.add_argument("--n", type=int, default=600, help="alternated requests per round (--latency)")
    args = p.parse_args()

    os.sched_setaffinity(0, {pb.LOAD_CPU})
    work = Path(tempfile.mkdtemp(prefix="llmlab-proxy-ab-"))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    up_port = pb.free_port()
    upstream = subprocess.Popen(["taskset", "-c", str(pb.LOAD_CPU), sys.executable, str(pb.UPSTREAM),
                                 "--port", str(up_port)], stdout=subprocess.DEVNULL,
                                start_new_session=True)
    trees, running = [], []
    try:
        pb.wait_http(up_port, "/v1/models")
        config = work / "config.yaml"
        config.write_text(pb.config_yaml(f"http://127.0.0.1:{up_port}/v1"))
        direct = pb.Target("direct", up_port, "/v1/chat/completions", "gpt-4o-mini")
        for spec in args.variants:
            name, _, ref = spec.partition(":")
            code = None
            if ref:
                code = worktree(ref, work / f"code-{name}")
                trees.append(code)
            traits = [t.split("=", 1)[1] for t in args.trait if t.split("=", 1)[0] == name]
            proc, target = start_variant(name, code, traits, config, work, env)
            asyncio.run(pb.load(target, 16, 2))   # warm up
            os.killpg(proc.pid, signal.SIGSTOP)
            running.append((name, proc, target))
        time.sleep(5)   # let each server's startup work settle
        cpu = {name: [] for name, _, _ in running}
        other = {name: [] for name, _, _ in running}
        for _ in range(args.rounds):
            for name, proc, target in running:
                os.killpg(proc.pid, signal.SIGCONT)
                time.sleep(0.3)
                before = pb.cpu_seconds(proc.pid)
                if args.latency:
                    r = asyncio.run(pb.alternated(direct, target, args.n, stream=False))
                    calls, value = args.n + min(200, args.n), r["p50"] * 1e3
                else:
                    r = asyncio.run(pb.load(target, 64, args.seconds))
                    calls, value = r["n"], r["rps"]
                cpu[name].append((pb.cpu_seconds(proc.pid) - before) / max(calls, 1) * 1e6)
                other[name].append(value)
                os.killpg(proc.pid, signal.SIGSTOP)
        base = statistics.median(cpu[running[0][0]])
        label = "added p50 (ms)" if args.latency else "req/s @64"
        print(f"{'variant':16s} {'CPU/call':>10s} {'vs first':>9s} {label:>15s}   rounds (µs CPU/call)")
        for name, _, _ in running:
            m = statistics.median(cpu[name])
            print(f"{name:16s} {m:8.0f} µs {m / base:8.3f}x {statistics.median(other[name]):15.2f}"
                  f"   {[round(x) for x in cpu[name]]}")
    finally:
        for _, proc, _ in running:
            try:
                os.killpg(proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            pb.stop(proc)
        pb.stop(upstream)
        for tree in trees:
            remove_worktree(tree)


if __name__ == "__main__":
    main()
