"""Proxy benchmark: what llmlab's proxy adds to a call, against LiteLLM's proxy and a floor.

One run, one machine, the same local upstream (tests/e2e/upstream.py) for everyone:

- the proxy under test is pinned to CPU 0 (``taskset``); the upstream and this load generator
  share CPU 1;
- targets: **llmlab** (a real ``jupyter server`` with the extension, usage recorded),
  **LiteLLM's proxy** (``litellm[proxy]`` in its own virtualenv, no database, same config.yaml),
  and **floor**: a minimal tornado pass-through written below (tornado server + the same pooled
  aiohttp client, no auth, no parsing, no recording);
- measurements: added latency p50/p99 at 1 in flight (direct and proxied requests alternated,
  so both see the same upstream), requests/s and p99 at 16 and 64 in flight, and the time to
  first byte of a stream (1 in flight, alternated).

The load generator speaks HTTP/1.1 over raw keep-alive sockets so that it costs little next to
what it measures. Results go to stdout and to the "Proxy" section of RESULTS.md.

    python benchmarks/proxy_bench.py                    # full run, ~5 minutes
    python benchmarks/proxy_bench.py --quick            # fewer requests
    python benchmarks/proxy_bench.py --skip-litellm     # no LiteLLM virtualenv
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
UPSTREAM = ROOT / "tests" / "e2e" / "upstream.py"
TOKEN = "bench-token-3c1d"
# LiteLLM's proxy refuses to start without a master key; both proxies then authenticate a token.
LITELLM_KEY = "sk-bench-master-7d2e4f6a8b0c1d3e5f7a9b1c3d5e7f90"
PROXY_CPU, LOAD_CPU = 0, 1
LITELLM_SPEC = "litellm[proxy]>=1.70,!=1.82.7,!=1.82.8"
CHAT = {"messages": [{"role": "user", "content": "Say hello in five words."}], "max_tokens": 16}
_CL = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.I)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, headers: dict | None = None, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"nothing answered on port {port}{path} within {timeout}s")


# -- load generator ------------------------------------------------------------------------------

class Target:
    def __init__(self, name: str, port: int, path: str, model: str, headers: dict | None = None):
        self.name, self.port, self.path, self.model = name, port, path, model
        self.headers = headers or {}

    def request(self, stream: bool) -> bytes:
        body = json.dumps({"model": self.model, **CHAT, **({"stream": True} if stream else {})}).encode()
        lines = [f"POST {self.path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                 "Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Conn:
    """One keep-alive HTTP/1.1 connection; ``call()`` -> (seconds to first body byte, total)."""

    def __init__(self, target: Target, stream: bool):
        self.target, self.req = target, target.request(stream)
        self.reader = self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.target.port)
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self

    async def call(self) -> tuple[float, float]:
        t0 = time.perf_counter()
        self.writer.write(self.req)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        if status != 200:
            raise RuntimeError(f"{self.target.name}: HTTP {status}: {head[:300]!r}")
        m = _CL.search(head)
        if m:
            await self.reader.readexactly(int(m.group(1)))
            t = time.perf_counter() - t0
            return t, t
        if not _CHUNKED.search(head):
            raise RuntimeError(f"{self.target.name}: neither content-length nor chunked")
        first = None
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await self.reader.readexactly(size + 2)
            if size == 0:
                break
            if first is None and b"data:" in data:
                first = time.perf_counter() - t0
        return first or 0.0, time.perf_counter() - t0

    def close(self):
        if self.writer:
            self.writer.close()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def alternated(direct: Target, proxied: Target, n: int, stream: bool) -> dict:
    """1 in flight; direct and proxied requests alternate (same upstream conditions)."""
    d, p = await Conn(direct, stream).open(), await Conn(proxied, stream).open()
    for _ in range(min(200, n)):
        await d.call()
        await p.call()
    dt, pt, df, pf = [], [], [], []
    for _ in range(n):
        f, t = await d.call()
        df.append(f)
        dt.append(t)
        f, t = await p.call()
        pf.append(f)
        pt.append(t)
    d.close()
    p.close()
    key = (pf, df) if stream else (pt, dt)
    return {"p50": pct(key[0], 50) - pct(key[1], 50), "p99": pct(key[0], 99) - pct(key[1], 99),
            "proxied_p50": pct(key[0], 50), "direct_p50": pct(key[1], 50)}


async def load(target: Target, concurrency: int, seconds: float) -> dict:
    conns = [await Conn(target, False).open() for _ in range(concurrency)]
    lat: list[float] = []
    stop = time.perf_counter() + seconds
    errors = 0

    async def worker(c: Conn):
        nonlocal errors
        while time.perf_counter() < stop:
            try:
                lat.append((await c.call())[1])
            except (RuntimeError, asyncio.IncompleteReadError, ConnectionError):
                errors += 1
                await c.open()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - t0
    for c in conns:
        c.close()
    return {"rps": len(lat) / elapsed, "p99": pct(lat, 99), "p50": pct(lat, 50), "n": len(lat),
            "errors": errors}


# -- the floor: a minimal pass-through ------------------------------------------------------------

def serve_floor(port: int, upstream: str) -> None:
    import aiohttp
    import tornado.web

    class Forward(tornado.web.RequestHandler):
        def check_xsrf_cookie(self):
            pass

        async def post(self):
            session = self.settings["session"]
            body = json.loads(self.request.body)
            resp = await session.post(upstream + "/chat/completions", data=self.request.body,
                                      headers={"Content-Type": "application/json"})
            self.set_status(resp.status)
            if body.get("stream"):
                self.set_header("Content-Type", "text/event-stream")
                async for data in resp.content.iter_any():
                    self.write(data)
                    await self.flush()
            else:
                self.set_header("Content-Type", "application/json")
                self.write(await resp.read())
            resp.release()

    async def main():
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        tornado.web.Application([(r"/v1/chat/completions", Forward)], session=session).listen(
            port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the contenders -------------------------------------------------------------------------------

def pinned(cmd: list[str]) -> list[str]:
    return ["taskset", "-c", str(PROXY_CPU)] + cmd if shutil.which("taskset") else cmd


def config_yaml(upstream_base: str) -> str:
    return ("model_list:\n  - model_name: bench\n    litellm_params:\n"
            f"      model: openai/gpt-4o-mini\n      api_base: {upstream_base}\n"
            "      api_key: sk-bench-not-a-real-key\n")


def litellm_venv(path: Path) -> Path:
    exe = path / "bin" / "litellm"
    if not exe.exists():
        print(f"==> installing {LITELLM_SPEC} into {path} (once; takes a few minutes)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin" / "pip"), "install", "-q", LITELLM_SPEC], check=True)
    return exe


def start(name: str, cmd: list[str], env: dict, log: Path, cwd: Path) -> subprocess.Popen:
    print(f"==> starting {name}", flush=True)
    return subprocess.Popen(pinned(cmd), env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            cwd=cwd, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its threads, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, direct: Target, target: Target, pid: int, args) -> dict:
    out = {"name": name}
    out["latency"] = asyncio.run(alternated(direct, target, args.n, stream=False))
    for c in (16, 64):
        before = cpu_seconds(pid)
        out[f"c{c}"] = asyncio.run(load(target, c, args.seconds))
        # CPU per call: unlike req/s, barely moved by other load on the machine.
        out[f"c{c}"]["cpu_per_call"] = (cpu_seconds(pid) - before) / max(out[f"c{c}"]["n"], 1)
    out["ttfb"] = asyncio.run(alternated(direct, target, args.n_stream, stream=True))
    lat, ttfb = out["latency"], out["ttfb"]
    print(f"    added p50 {lat['p50'] * 1e3:.2f} ms, p99 {lat['p99'] * 1e3:.2f} ms; "
          f"16: {out['c16']['rps']:.0f} req/s; 64: {out['c64']['rps']:.0f} req/s "
          f"(p99 {out['c64']['p99'] * 1e3:.1f} ms, {out['c64']['cpu_per_call'] * 1e6:.0f} us CPU/call); "
          f"stream TTFB +{ttfb['p50'] * 1e3:.2f} ms", flush=True)
    return out


def run(args) -> dict:
    os.sched_setaffinity(0, {LOAD_CPU})
    work = Path(tempfile.mkdtemp(prefix="llmlab-proxy-bench-"))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    up_port = free_port()
    upstream = subprocess.Popen(["taskset", "-c", str(LOAD_CPU), sys.executable, str(UPSTREAM),
                                 "--port", str(up_port)], stdout=subprocess.DEVNULL,
                                start_new_session=True)
    procs = [upstream]
    results = {"when": date.today().isoformat(), "cpus": os.cpu_count(), "python": platform.python_version(),
               "load_before": os.getloadavg()[0]}
    try:
        wait_http(up_port, "/v1/models")
        up_base = f"http://127.0.0.1:{up_port}/v1"
        (work / "config.yaml").write_text(config_yaml(up_base))
        direct = Target("direct", up_port, "/v1/chat/completions", "gpt-4o-mini")
        print("==> direct (the upstream alone, for reference)", flush=True)
        results["direct"] = {f"c{c}": asyncio.run(load(direct, c, args.seconds)) for c in (16, 64)}
        contenders = []

        port = free_port()
        if args.skip_floor:
            port = None
        p = None if port is None else start("floor (tornado pass-through)", [sys.executable, __file__, "--serve-floor", str(port), up_base],
                  env, work / "floor.log", work)
        if p is not None:
            procs.append(p)
            wait_http(port, "/v1/chat/completions")
            contenders.append(("floor", Target("floor", port, "/v1/chat/completions", "bench"), p))

        port = free_port()
        home = work / "llmlab-home"
        jupyter = Path(sys.executable).parent / "jupyter"
        p = start("llmlab (jupyter server)", [
            str(jupyter), "server", "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--port={port}", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={work}",
            f"--LLMLabApp.config_file={work / 'config.yaml'}", "--ServerApp.log_level=WARN"]
            + [f"--LLMLabApp.{t}" for t in args.llmlab_trait],
            {**env, "LLMLAB_HOME": str(home), "JUPYTER_CONFIG_DIR": str(work / "jcfg"),
             "JUPYTER_RUNTIME_DIR": str(work / "jrt"), "JUPYTER_DATA_DIR": str(work / "jdata")},
            work / "llmlab.log", work)
        procs.append(p)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        wait_http(port, "/llmlab/api/health", auth)
        contenders.append(("llmlab", Target("llmlab", port, "/llmlab/v1/chat/completions", "bench", auth), p))

        if not args.skip_litellm:
            exe = litellm_venv(args.litellm_venv)
            port = free_port()
            p = start("LiteLLM proxy", [str(exe), "--config", str(work / "config.yaml"),
                                        "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                      {**env, "LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": LITELLM_KEY},
                      work / "litellm.log", work)
            procs.append(p)
            wait_http(port, "/health/liveliness")
            contenders.append(("litellm", Target("litellm", port, "/v1/chat/completions", "bench",
                                                 {"Authorization": f"Bearer {LITELLM_KEY}"}), p))

        # Only one contender runs at a time; the others wait stopped (SIGSTOP) off the CPU.
        for _, _, proc in contenders:
            os.killpg(proc.pid, signal.SIGSTOP)
        for name, target, proc in contenders:
            print(f"==> measuring {name}", flush=True)
            os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(1)
            results[name] = measure(name, direct, target, proc.pid, args)
            os.killpg(proc.pid, signal.SIGSTOP)
        for _, _, proc in contenders:
            os.killpg(proc.pid, signal.SIGCONT)
        results["load_after"] = os.getloadavg()[0]
        results["llmlab_recorded"] = recorded(contenders, home)
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)
    return results


def recorded(contenders, home: Path) -> int:
    """Stop llmlab (its last flush runs) and count the calls it recorded."""
    for name, _, proc in contenders:
        if name == "llmlab":
            stop(proc)
    from llmlab.store import Store

    store = Store(home)
    store.flush()
    with store.read() as con:
        return con.execute("SELECT count(*) FROM requests WHERE status_code = 200").fetchone()[0]


# -- report ---------------------------------------------------------------------------------------

def report(r: dict, args) -> str:
    names = [n for n in ("llmlab", "litellm", "floor") if n in r]
    label = {"llmlab": "llmlab (usage recorded)", "litellm": "LiteLLM proxy (no DB)",
             "floor": "floor: tornado pass-through"}
    ms = lambda s: f"{s * 1e3:.2f} ms"  # noqa: E731
    lines = [
        "## Proxy", "",
        f"`python benchmarks/proxy_bench.py` ({r['when']}, {r['cpus']} CPUs, Python {r['python']}). "
        f"Proxy pinned to CPU {PROXY_CPU}; upstream (tests/e2e/upstream.py) and load generator "
        f"on CPU {LOAD_CPU}. {args.n} alternated requests at 1 in flight, {args.seconds:g} s per "
        f"concurrency level, {args.n_stream} alternated streams. Targets for llmlab: <= 1 ms p50 "
        "and <= 3 ms p99 added at 1 in flight; >= 1,000 req/s at 64 in flight; <= 1.5 ms added "
        "to a stream's time to first byte."
        + (f" llmlab settings: {', '.join(args.llmlab_trait)}." if args.llmlab_trait else ""), "",
        "| proxy | added p50 | added p99 | req/s @16 | p99 @16 | req/s @64 | p99 @64 | CPU per call @64 | stream TTFB added (p50) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in names:
        x = r[n]
        lines.append(f"| {label[n]} | {ms(x['latency']['p50'])} | {ms(x['latency']['p99'])} | "
                     f"{x['c16']['rps']:,.0f} | {ms(x['c16']['p99'])} | {x['c64']['rps']:,.0f} | "
                     f"{ms(x['c64']['p99'])} | {x['c64']['cpu_per_call'] * 1e6:,.0f} µs | {ms(x['ttfb']['p50'])} |")
    d = r["direct"]
    lines.append(f"| *direct (no proxy)* | — | — | {d['c16']['rps']:,.0f} | {ms(d['c16']['p99'])} | "
                 f"{d['c64']['rps']:,.0f} | {ms(d['c64']['p99'])} | — | — |")
    lines.append("")
    if "litellm" in r:
        lr, ll = r["llmlab"], r["litellm"]
        lines.append(f"llmlab vs LiteLLM's proxy at 64 in flight: {lr['c64']['rps'] / ll['c64']['rps']:.1f}x "
                     f"the requests/s; added p50 latency {ll['latency']['p50'] / max(lr['latency']['p50'], 1e-9):.1f}x lower.")
    lr, fl = r["llmlab"], r.get("floor")
    if fl:
        lines.append(f"llmlab vs the floor: {lr['c64']['rps'] / fl['c64']['rps']:.2f}x its requests/s at 64 in "
                     f"flight; {ms(lr['latency']['p50'] - fl['latency']['p50'])} more added at p50 "
                     "(Jupyter's auth and request handling, routing, usage parsing and the journal write).")
    lines.append(f"Calls llmlab recorded during the run (status 200): {r['llmlab_recorded']:,}; direct "
                 f"p50 at 1 in flight was {ms(lr['latency']['direct_p50'])}.")
    lines.append(f"1-minute load average: {r['load_before']:.2f} before the run, {r['load_after']:.2f} after "
                 "(anything above ~0.3 means other work shared the two CPUs).")
    lines += ["", "Reading these numbers: latencies and req/s move with whatever else runs on the "
              "machine; *CPU per call* (the proxy process's CPU time divided by the calls it served "
              "at 64 in flight) barely does, so the ratios between its rows are the robust result."]
    lines.append("")
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace the measured part of the "Proxy" section: up to its first "### " heading (the
    hand-written, dated analysis below it stays) or the next "## " section."""
    lines = path.read_text().splitlines() if path.exists() else ["# Benchmark results", ""]
    start = next((i for i, ln in enumerate(lines) if ln.strip() == "## Proxy"), None)
    if start is None:
        lines = lines + [""] + text.splitlines()
    else:
        end = next((i for i in range(start + 1, len(lines))
                    if lines[i].startswith(("## ", "### "))), len(lines))
        lines = lines[:start] + text.rstrip().splitlines() + [""] + lines[end:]
    path.write_text("\n".join(lines).rstrip() + "\n")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-floor":
        return serve_floor(int(sys.argv[2]), sys.argv[3])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="alternated requests at 1 in flight")
    p.add_argument("--n-stream", type=int, default=500, help="alternated streams for TTFB")
    p.add_argument("--seconds", type=float, default=8.0, help="seconds per concurrency level")
    p.add_argument("--quick", action="store_true", help="500 requests, 200 streams, 3 s levels")
    p.add_argument("--skip-litellm", action="store_true", help="do not measure LiteLLM's proxy")
    p.add_argument("--skip-floor", action="store_true", help="do not measure the floor")
    p.add_argument("--llmlab-trait", action="append", default=[], metavar="NAME=VALUE",
                   help="extra LLMLabApp setting for the llmlab server (repeatable)")
    p.add_argument("--litellm-venv", type=Path,
                   default=Path.home() / ".cache" / "llmlab" / "bench-litellm-venv",
                   help="virtualenv for litellm[proxy] (created on first use)")
    p.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = p.parse_args()
    if args.quick:
        args.n, args.n_stream, args.seconds = 500, 200, 3.0
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs 2 CPUs: the proxy on one, the upstream and the load on the other")
    r = run(args)
    text = report(r, args)
    print(text)
    if not args.no_write:
        write_section(args.results, text)
        print(f"==> wrote the Proxy section of {args.results}")


if __name__ == "__main__":
    main()
