"""A real Jupyter server serving the dashboard through its Voila extension, and a headless
Chromium page on it. Shared by tests/e2e/test_dashboard.py and benchmarks/dashboard_bench.py."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
BASE_URL = "/lab%40x/"  # an escaped character in base_url catches URL-joining bugs
DASHBOARD = "voila/render/notebooks/dashboard.ipynb"
# Selectors that say the page is fully drawn: every chart has its SVG, every tile its value.
RENDERED = [
    ".llmlab-section-cost .vega-embed svg",
    ".llmlab-section-tokens .vega-embed svg",
    ".llmlab-section-share .vega-embed svg",
    ".llmlab-section-calendar .vega-embed svg",
    ".llmlab-kpi[data-metric=spend] .llmlab-kpi-value",
]


@dataclass
class Server:
    url: str          # http://127.0.0.1:PORT{BASE_URL}
    token: str
    proc: subprocess.Popen
    log: Path

    def dashboard(self, query: str = "") -> str:
        return f"{self.url}{DASHBOARD}?token={self.token}{'&' + query if query else ''}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(home: Path, workdir: Path, *, timeout: float = 60):
    """``jupyter server`` on a free loopback port with ``LLMLAB_HOME=home``; root_dir is the repo
    so ``notebooks/dashboard.ipynb`` resolves."""
    port, token = free_port(), secrets.token_hex(16)
    log = workdir / "jupyter-server.log"
    config = workdir / "jupyter-config"
    config.mkdir(parents=True, exist_ok=True)
    # No MathJax setting here: the extension's offline_mathjax must keep Voila off the CDN.
    env = {**os.environ, "LLMLAB_HOME": str(home), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_RUNTIME_DIR": str(workdir / "jupyter-runtime"),
           "JUPYTER_DATA_DIR": str(workdir / "jupyter-data"), "TZ": "UTC"}
    cmd = [sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.base_url={BASE_URL}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={ROOT}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    server = Server(f"http://127.0.0.1:{port}{BASE_URL}", token, proc, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited:\n{log.read_text()[-4000:]}")
            try:
                urllib.request.urlopen(f"{server.url}api/status?token={quote(token)}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter server did not start:\n{log.read_text()[-4000:]}")
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def chromium(viewport=(1440, 900)):
    """A headless Chromium page (Debian's chromium driven by Playwright) and its console log."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                          accept_downloads=True, timezone_id="UTC")
            page = context.new_page()
            console: list[tuple[str, str, str]] = []  # (type, text, url of the source)
            page.on("console", lambda m: console.append((m.type, m.text, (m.location or {}).get("url", ""))))
            page.on("pageerror", lambda e: console.append(("pageerror", str(e), "")))
            yield page, console
        finally:
            browser.close()


def sign_in(page, server: Server) -> None:
    """Visit the server's login page with the token, as a person arriving from JupyterLab has.

    That sets the ``_xsrf`` cookie, which Voila's render page does not set itself but its
    unload beacon (``voila/api/shutdown/<kernel>``) needs: without it a reload logs a 403 and
    leaves the old kernel running until it is culled (a Voila limitation, see the dashboard docs).
    """
    page.goto(f"{server.url}login?token={server.token}")


def write_claude_logs(root: Path, now: datetime) -> Path:
    """A Claude Code config folder with two sessions: one two days ago, one still going (an
    active 5-hour block). Lines have the shape Claude Code writes."""
    folder = root / "projects" / "-home-u-alpha"
    folder.mkdir(parents=True, exist_ok=True)
    usage = {"input_tokens": 1200, "output_tokens": 300, "cache_read_input_tokens": 5000,
             "cache_creation_input_tokens": 800}
    for session, times in (("old-session", [now - timedelta(days=2), now - timedelta(days=2, minutes=-5)]),
                           ("live-session", [now - timedelta(minutes=40), now - timedelta(minutes=10)])):
        lines = [json.dumps({
            "type": "assistant", "sessionId": session, "cwd": "/home/u/alpha", "version": "2.1.3",
            "isSidechain": False, "requestId": f"req-{session}-{i}",
            "timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "message": {"id": f"msg-{session}-{i}", "type": "message", "role": "assistant",
                        "model": "claude-sonnet-4-5-20250929", "usage": usage,
                        "content": [{"type": "text", "text": "ok"}]}}, separators=(",", ":"))
            for i, t in enumerate(times)]
        (folder / f"{session}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def wait_rendered(page, timeout_ms: float = 120_000) -> None:
    for selector in RENDERED:
        page.wait_for_selector(selector, state="attached", timeout=timeout_ms)
