"""A real ``jupyter server`` subprocess with the llmlab extension, for the proxy's e2e tests.

Its own LLMLAB_HOME, Jupyter dirs, token and free port; a LiteLLM-style config.yaml pointing at
the local upstream (tests/e2e/upstream.py). Not a test module: test modules start one per module.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from llmlab.store import Store

TOKEN = "e2e-jupyter-token-7f3a9c"
BASE_URL = "/a%40b/"   # pytest-jupyter's default: catches URL-join bugs
STARTUP_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_command() -> list[str]:
    script = Path(sys.executable).parent / "jupyter"
    return [str(script), "server"] if script.exists() else [sys.executable, "-m", "jupyter_server"]


class ProxyServer:
    def __init__(self, root: Path, *, model_list: list[dict] | None = None,
                 config: dict | None = None, traits: dict | None = None,
                 env: dict[str, str] | None = None, base_url: str = BASE_URL):
        self.root = Path(root)
        self.home = self.root / "llmlab-home"
        self.runtime_dir = self.root / "runtime"
        self.log_path = self.root / "server.log"
        self.config_path = self.root / "config.yaml"
        self.port = free_port()
        self.base_url = base_url
        self.config = dict(config or {})
        if model_list is not None:
            self.config["model_list"] = model_list
        self.traits = {"flush_interval": 0.2, **(traits or {})}
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url}"

    @property
    def proxy_url(self) -> str:
        return self.url + "llmlab/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def start(self) -> "ProxyServer":
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config))
        env = {**os.environ, **self.env,
               "LLMLAB_HOME": str(self.home),
               "JUPYTER_CONFIG_DIR": str(self.root / "jupyter-config"),
               "JUPYTER_DATA_DIR": str(self.root / "jupyter-data"),
               "JUPYTER_RUNTIME_DIR": str(self.runtime_dir),
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        args = jupyter_command() + [
            "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.base_url={self.base_url}", f"--ServerApp.root_dir={self.root}",
            f"--LLMLabApp.config_file={self.config_path}",
        ] + [f"--LLMLabApp.{k}={_cli(v)}" for k, v in self.traits.items()]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=self.root)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited {self.proc.returncode}:\n{self.log()}")
            try:
                r = httpx.get(self.url + "llmlab/api/health", headers=self.headers, timeout=2)
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter server did not start in {STARTUP_TIMEOUT_S}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, **kw):
        import openai

        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 60)
        return openai.OpenAI(base_url=self.proxy_url, api_key=TOKEN, **kw)

    def async_client(self, **kw):
        import openai

        kw.setdefault("max_retries", 0)
        kw.setdefault("timeout", 120)
        return openai.AsyncOpenAI(base_url=self.proxy_url, api_key=TOKEN, **kw)

    def health(self) -> dict:
        return httpx.get(self.url + "llmlab/api/health", headers=self.headers, timeout=10).json()

    @property
    def store(self) -> Store:
        return Store(self.home)

    def rows(self, where: str = "true", params: list | None = None, *, expect: int = 1,
             timeout: float = 30.0) -> list[dict]:
        """Rows of ``requests`` matching ``where``, waiting until ``expect`` of them arrived."""
        deadline = time.monotonic() + timeout
        store = self.store
        rows: list[dict] = []
        while True:
            if store.db_path.exists():
                try:
                    with store.read() as con:
                        cur = con.execute(f"SELECT * FROM requests WHERE {where} ORDER BY started_at",
                                          params or [])
                        names = [d[0] for d in cur.description]
                        rows = [dict(zip(names, r)) for r in cur.fetchall()]
                except Exception:  # noqa: BLE001 - not migrated yet, or briefly locked
                    rows = []
            if len(rows) >= expect or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)


def _cli(v) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)
