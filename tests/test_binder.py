"""The Binder image: repo2docker's own Dockerfile for this repository, and binder/ run for real.

``jupyter-repo2docker --no-build --debug .`` prints the Dockerfile it would build without a Docker
engine, so the test checks what Binder will do: the Python of runtime.txt, llmlab installed from
binder/requirements.txt after the repository is copied, postBuild run after that, and start as
the entrypoint. postBuild and start are then run here as the image runs them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

BINDER = ROOT / "binder"
BIN = Path(sys.executable).parent


def _env(**extra) -> dict:
    # The image's PATH puts its Python environment first; here that is this test's venv.
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **extra}


@pytest.fixture(scope="module")
def dockerfile() -> tuple[str, str]:
    r2d = shutil.which("jupyter-repo2docker", path=str(BIN)) or shutil.which("jupyter-repo2docker")
    assert r2d, "jupyter-repo2docker is part of the [test] extra: pip install -e '.[test]'"
    out = subprocess.run([r2d, "--no-build", "--debug", "."], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env=_env())
    assert out.returncode == 0, out.stderr
    return out.stdout, out.stderr


def _line(lines: list[str], pattern: str) -> int:
    found = [i for i, line in enumerate(lines) if re.search(pattern, line)]
    assert len(found) == 1, f"expected one line matching {pattern!r}, found {len(found)}"
    return found[0]


def test_binder_files_are_executable_where_repo2docker_runs_them():
    assert (BINDER / "runtime.txt").read_text().strip() == "python-3.12"
    for script in ("postBuild", "start"):
        assert os.access(BINDER / script, os.X_OK), f"binder/{script} must be executable"
    requirements = [line.split("#")[0].strip() for line in
                    (BINDER / "requirements.txt").read_text().splitlines()]
    assert [r for r in requirements if r] == ["."]


def test_dockerfile_installs_llmlab_then_runs_post_build_and_start(dockerfile):
    text, log = dockerfile
    assert "Building conda environment for python=3.12" in log
    lines = text.splitlines()
    # The conda environment is runtime.txt's Python (repo2docker's lock file for it).
    lock = lines[_line(lines, r"^COPY .* /tmp/env/environment\.lock$")].split()[-2]
    from escapism import unescape

    escaped = lock.split("/", 1)[1].rsplit("-", 1)[0]     # "<escaped path>-<hash>"
    assert re.search(r"environment\.py-3\.12-linux-(64|aarch64)\.lock$",
                     unescape(escaped, escape_char="-")), lock
    copy_repo = _line(lines, r"^COPY --chown=\S+ src/ \$\{REPO_DIR\}/$")
    # "." is a local requirement, so pip runs after the whole repository is in the image ...
    pip = _line(lines, r'^RUN \$\{KERNEL_PYTHON_PREFIX\}/bin/pip install --no-cache-dir -r "binder/requirements.txt"$')
    post_build = _line(lines, r"^RUN \./binder/postBuild$")
    start = _line(lines, r'^ENV R2D_ENTRYPOINT="\$\{REPO_DIR\}/binder/start"$')
    assert copy_repo < pip < post_build < start
    # ... as the notebook user, so postBuild's demo store belongs to the user who runs the server.
    users = [i for i, line in enumerate(lines[:post_build]) if line.startswith("USER ")]
    assert lines[users[-1]] == "USER ${NB_USER}"
    assert lines[_line(lines, r"^ENTRYPOINT ")] == 'ENTRYPOINT ["/usr/local/bin/repo2docker-entrypoint"]'


def test_image_leaves_out_a_local_venv_and_store(tmp_path, monkeypatch):
    # repo2docker builds its context with docker's exclude_paths and binder/.dockerignore.
    from docker.utils.build import exclude_paths

    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__"))
    for junk in (".venv/bin/python", ".llmlab-home/usage.duckdb", "llmlab/__pycache__/x.pyc"):
        (repo / junk).parent.mkdir(parents=True, exist_ok=True)
        (repo / junk).write_text("local only")
    patterns = [line.strip() for line in (BINDER / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    monkeypatch.chdir(repo)
    files = set(exclude_paths(".", patterns))
    assert {"binder/postBuild", "binder/start", "pyproject.toml", "llmlab/__init__.py",
            "notebooks/dashboard.ipynb", "notebooks/tour.ipynb"} <= files
    assert not [f for f in files if f.startswith((".venv", ".llmlab-home")) or "__pycache__" in f]


def test_start_sets_the_runtime_environment_and_seeds_a_missing_home(tmp_path):
    home = tmp_path / "elsewhere"
    out = subprocess.run(
        [str(BINDER / "start"), sys.executable, "-c",
         "import os; print(os.environ['LLMLAB_HOME']); print(os.environ['LITELLM_LOCAL_MODEL_COST_MAP'])"],
        env=_env(LLMLAB_HOME=str(home)), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-2:] == [str(home), "True"]
    import llmlab

    assert llmlab.open(home).summary()["requests"].iloc[0] > 1000


def _newest_day(home: Path):
    import llmlab

    return llmlab.open(home).sql("SELECT max(started_at)::DATE AS d FROM requests")["d"][0].date()


def test_start_reseeds_a_stale_demo_home_and_never_touches_an_unmarked_one(tmp_path):
    from datetime import date, timedelta

    from llmlab.demo import seed_demo
    from llmlab.store import Store

    old_end = date.today() - timedelta(days=30)
    demo, mine = tmp_path / "demo", tmp_path / "mine"
    for home in (demo, mine):
        seed_demo(Store(home), days=3, end=old_end, progress=False)
    (demo / "demo-seeded-on").write_text(f"{old_end.isoformat()}\n")   # as postBuild marks it
    for home in (demo, mine):
        out = subprocess.run([str(BINDER / "start"), "true"], env=_env(LLMLAB_HOME=str(home)),
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
    assert _newest_day(demo) >= date.today() - timedelta(days=1)
    assert (demo / "demo-seeded-on").read_text().strip() >= (date.today() - timedelta(days=1)).isoformat()
    assert _newest_day(mine) == old_end                   # no mark: not a demo home, left alone
    assert not (mine / "demo-seeded-on").exists()


def _env_under_start(**env) -> dict[str, str]:
    base = {k: v for k, v in _env(**env).items()
            if k in env or not k.startswith(("JUPYTERHUB_", "LLMLAB_SERVER_"))}
    out = subprocess.run([str(BINDER / "start"), sys.executable, "-c",
                          "import json, os; print(json.dumps(dict(os.environ)))"],
                         env=base, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def test_start_points_llmlab_client_at_the_server_under_jupyterhub(llmlab_home, monkeypatch):
    from llmlab.store import Store

    Store(llmlab_home).migrate()          # a seeded home: start does not seed again
    env = _env_under_start(LLMLAB_HOME=str(llmlab_home))
    assert "LLMLAB_SERVER_URL" not in env and "LLMLAB_SERVER_TOKEN" not in env
    # What JupyterHub (and so mybinder.org) puts in the single-user server's environment.
    hub = _env_under_start(LLMLAB_HOME=str(llmlab_home), JUPYTERHUB_API_TOKEN="hub-token-123",
                           JUPYTERHUB_SERVICE_URL="http://0.0.0.0:8888/user/jovyan-abc/")
    assert hub["LLMLAB_SERVER_URL"] == "http://127.0.0.1:8888/user/jovyan-abc/"
    assert hub["LLMLAB_SERVER_TOKEN"] == "hub-token-123"
    from llmlab.client import find_server

    for name in ("LLMLAB_SERVER_URL", "LLMLAB_SERVER_TOKEN"):   # as a kernel inherits them
        monkeypatch.setenv(name, hub[name])
    assert find_server() == {"url": "http://127.0.0.1:8888/user/jovyan-abc/", "token": "hub-token-123"}


def test_default_home_is_the_repository_folder_like_scripts_lab():
    env = {k: v for k, v in _env().items() if k != "LLMLAB_HOME"}
    out = subprocess.run(["bash", "-c", f"source {BINDER / 'llmlab_env.sh'}; echo $LLMLAB_HOME"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(ROOT / ".llmlab-home")


@pytest.mark.slow
def test_post_build_seeds_demo_usage_and_real_offline_calls(tmp_path):
    home = tmp_path / "binder-home"
    out = subprocess.run([str(BINDER / "postBuild")], cwd=ROOT, env=_env(LLMLAB_HOME=str(home)),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    import llmlab

    lab = llmlab.open(home)
    assert lab.pending()["segments"] == 0
    assert lab.sql("select count(*) n from requests where user_id is distinct from 'binder'")["n"][0] > 1000
    calls = lab.sql("select * from requests where user_id = 'binder'")
    assert len(calls) == 5
    assert set(calls["model"]) == {"llmlab/offline", "llmlab/offline-embedding"}
    assert set(calls["status_code"]) == {200}
    assert set(calls["project"]) == {"research", "atlas", "support-copilot"}
    assert calls["stream"].sum() == 1
    chats = calls[calls["model"] == "llmlab/offline"]
    assert (chats["input_tokens"] > 0).all() and (chats["output_tokens"] > 0).all()
    assert (calls["cost_usd"] == 0).all()      # the offline models are priced at 0, not unpriced

