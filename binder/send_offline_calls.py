"""Send a few real calls through llmlab's proxy to the built-in offline model (binder/postBuild).

A real ``jupyter server`` with the llmlab extension is started on a loopback port, with its own
token and runtime folder; ``llmlab.client()`` finds it through that folder, exactly as it finds
JupyterLab's server from a notebook, and the calls go through the proxy to ``llmlab/offline``
(no network, no key). Stopping the server flushes its journal into ``$LLMLAB_HOME/usage.duckdb``.

    python binder/send_offline_calls.py [--home DIR]
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 120
QUESTIONS = [
    ("research", "internal", "Which of our models answered fastest last week?"),
    ("atlas", "acme", "Summarise this ticket in one line: the export button does nothing."),
    ("support-copilot", "acme", "Draft a two-sentence reply to a customer asking about refunds."),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, runtime_dir: Path, log) -> tuple[subprocess.Popen, str, str]:
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "LLMLAB_HOME": str(home), "JUPYTER_RUNTIME_DIR": str(runtime_dir),
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={REPO}",
           "--LLMLabApp.flush_interval=0.5"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter server exited with {proc.returncode}")
        try:
            r = httpx.get(url + "llmlab/api/health", timeout=2,
                          headers={"Authorization": f"Bearer {token}"})
            if r.status_code == 200:
                return proc, url, token
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"jupyter server did not answer within {STARTUP_TIMEOUT_S}s")
        time.sleep(0.25)


def send_calls(runtime_dir: Path) -> list[str]:
    """The calls a notebook would make; returns their llmlab request ids."""
    import llmlab

    ids = []
    for project, client_name, question in QUESTIONS:
        client = llmlab.client(project=project, client=client_name, user="binder",
                               tags=["binder"], runtime_dir=runtime_dir, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="llmlab/offline", messages=[{"role": "user", "content": question}])
        ids.append(raw.headers["x-llmlab-request-id"])
    client = llmlab.client(project="research", client="internal", user="binder",
                           runtime_dir=runtime_dir, max_retries=0)
    stream = client.chat.completions.create(
        model="llmlab/offline", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Stream a short answer, please."}])
    for _ in stream:
        pass
    raw = client.embeddings.with_raw_response.create(
        model="llmlab/offline-embedding", input=["invoice", "usage", "budget"])
    ids.append(raw.headers["x-llmlab-request-id"])
    return ids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", help="llmlab home (default $LLMLAB_HOME)")
    args = ap.parse_args(argv)
    home = Path(args.home or os.environ.get("LLMLAB_HOME") or REPO / ".llmlab-home")
    with tempfile.TemporaryDirectory(prefix="llmlab-binder-") as tmp:
        runtime_dir = Path(tmp) / "runtime"
        with open(Path(tmp) / "server.log", "wb") as log:
            proc, _, _ = start_server(home, runtime_dir, log)
            try:
                ids = send_calls(runtime_dir)
            finally:
                proc.send_signal(signal.SIGTERM)   # the extension flushes its journal on stop
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if proc.returncode not in (0, -signal.SIGTERM):
            print((Path(tmp) / "server.log").read_text(errors="replace")[-4000:], file=sys.stderr)
    from llmlab.store import Store

    Store(home).flush()    # whatever the server left in the journal, if anything
    print(f"sent {len(ids) + 1} calls through llmlab/offline into {home}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
