"""``llmlab.client()``: an ``openai.OpenAI`` that talks to the running Jupyter server's proxy.

The server is found through jupyter_server's runtime files (``jpserver-<pid>.json``: url,
base_url, token). In a kernel, the server that started it (``JPY_PARENT_PID``) wins; elsewhere,
the newest running server. ``LLMLAB_SERVER_URL`` (the server's URL including base_url) and
``LLMLAB_SERVER_TOKEN`` override the search; under JupyterHub (no token in the runtime file)
``JUPYTERHUB_API_TOKEN`` is the token.

The project is detected from the notebook's folder (``JPY_SESSION_NAME``, which jupyter_server
sets in kernels, else the working directory): the name of the git repository's ``origin``
remote, else the repository's top-level folder name, else the folder's own name.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .errors import ConfigError

PROXY_PATH = "llmlab/v1"
_REMOTE_URL = re.compile(r'^\s*url\s*=\s*(.+?)\s*$')


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def running_servers(runtime_dir: str | os.PathLike | None = None) -> list[dict]:
    """Info of every live Jupyter server (newest first), from its jpserver-*.json file."""
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    found = []
    for path in Path(runtime_dir).glob("jpserver-*.json"):
        try:
            info = json.loads(path.read_text())
            mtime = path.stat().st_mtime
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and _pid_alive(info.get("pid")):
            found.append((mtime, info))
    found.sort(key=lambda t: t[0], reverse=True)
    return [info for _, info in found]


def find_server(runtime_dir: str | os.PathLike | None = None) -> dict:
    """The server to talk to: {"url": ..., "token": ...}."""
    url = os.environ.get("LLMLAB_SERVER_URL")
    if url:
        return {"url": url if url.endswith("/") else url + "/",
                "token": os.environ.get("LLMLAB_SERVER_TOKEN", "")}
    servers = running_servers(runtime_dir)
    if not servers:
        raise ConfigError(
            "llmlab.client(): no running Jupyter server found (no live jpserver-*.json in the "
            "Jupyter runtime directory). Start one with `jupyter lab`, or set LLMLAB_SERVER_URL "
            "and LLMLAB_SERVER_TOKEN.")
    parent = os.environ.get("JPY_PARENT_PID")
    chosen = next((s for s in servers if parent and str(s.get("pid")) == parent), servers[0])
    # Under JupyterHub the runtime file has no token (the Hub issues them); the server's own
    # $JUPYTERHUB_API_TOKEN, set in its kernels, is accepted as a bearer token there.
    token = chosen.get("token") or os.environ.get("JUPYTERHUB_API_TOKEN", "")
    return {"url": server_url(chosen), "token": token}


def server_url(info: dict) -> str:
    """http://host:port/base_url/ of a runtime file (its ``url`` already holds base_url)."""
    if info.get("sock"):
        raise ConfigError("llmlab.client(): the Jupyter server listens on a Unix socket "
                          f"({info['sock']}); set LLMLAB_SERVER_URL to an HTTP address instead.")
    from urllib.parse import urlsplit

    parts = urlsplit(info.get("url") or "")
    if not parts.scheme:
        scheme = "https" if info.get("secure") else "http"
        host = info.get("hostname") or "localhost"
        origin = f"{scheme}://{host}:{info.get('port')}"
    else:
        origin = f"{parts.scheme}://{parts.netloc}"
    base = info.get("base_url") or "/"
    if not base.startswith("/"):
        base = "/" + base
    if not base.endswith("/"):
        base += "/"
    return origin + base


def _git_dir(folder: Path) -> tuple[Path, Path] | None:
    """(top-level folder, .git directory) of the repository holding ``folder``."""
    for d in [folder, *folder.parents]:
        dot_git = d / ".git"
        if dot_git.is_dir():
            return d, dot_git
        if dot_git.is_file():   # a worktree or submodule: "gitdir: <path>"
            text = dot_git.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                gd = Path(text.split(":", 1)[1].strip())
                gd = gd if gd.is_absolute() else (d / gd)
                common = gd / "commondir"
                if common.is_file():
                    gd = (gd / common.read_text().strip()).resolve()
                return d, gd
    return None


def _origin_url(git_dir: Path) -> str | None:
    try:
        lines = (git_dir / "config").read_text(errors="replace").splitlines()
    except OSError:
        return None
    section = None
    remotes: dict[str, str] = {}
    for line in lines:
        s = line.strip()
        if s.startswith("["):
            m = re.match(r'\[remote\s+"([^"]+)"\]', s)
            section = m.group(1) if m else None
        elif section:
            m = _REMOTE_URL.match(s)
            if m:
                remotes.setdefault(section, m.group(1))
    return remotes.get("origin") or next(iter(remotes.values()), None)


def repo_name_from_url(url: str) -> str | None:
    tail = re.split(r"[/:]", url.rstrip("/"))[-1]
    if tail.endswith(".git"):
        tail = tail[:-4]
    return tail or None


def detect_project(start: str | os.PathLike | None = None) -> str | None:
    """The project of a notebook or folder: git origin's repository name, else the repository's
    top-level folder name, else the folder's name."""
    if start is None:
        session = os.environ.get("JPY_SESSION_NAME")
        start = Path(session).parent if session and Path(session).is_absolute() else Path.cwd()
    folder = Path(start).resolve()
    if folder.is_file():
        folder = folder.parent
    repo = _git_dir(folder)
    if repo is not None:
        top, git_dir = repo
        url = _origin_url(git_dir)
        return (repo_name_from_url(url) if url else None) or top.name or None
    return folder.name or None


def make_client(project: str | None = None, *, client: str | None = None, user: str | None = None,
                session: str | None = None, tags: list[str] | str | None = None,
                runtime_dir: str | os.PathLike | None = None, **openai_kwargs):
    """An ``openai.OpenAI`` through the running server's llmlab proxy, with attribution headers."""
    import openai

    server = find_server(runtime_dir)
    headers = dict(openai_kwargs.pop("default_headers", None) or {})
    project = project or detect_project()
    if project:
        headers["X-LLMLab-Project"] = project
    for name, value in (("Client", client), ("User", user), ("Session", session)):
        if value:
            headers[f"X-LLMLab-{name}"] = value
    if tags:
        headers["X-LLMLab-Tags"] = tags if isinstance(tags, str) else ",".join(tags)
    return openai.OpenAI(base_url=server["url"] + PROXY_PATH, api_key=server["token"] or "none",
                         default_headers=headers, **openai_kwargs)
