"""llmlab.client(): finding the running server and the notebook's project."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llmlab.client import detect_project, find_server, make_client, repo_name_from_url, server_url
from llmlab.errors import ConfigError


def _runtime_file(d, pid, port, base_url="/", token="t"):
    (d / f"jpserver-{pid}.json").write_text(json.dumps({
        "url": f"http://localhost:{port}{base_url}", "hostname": "localhost", "port": port,
        "base_url": base_url, "token": token, "pid": pid, "sock": "", "secure": False}))


@pytest.fixture
def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_llmlab_client_stays_the_function():
    import llmlab.client  # noqa: F401 - importing the module must not replace the function

    assert callable(llmlab.client) and llmlab.client.__module__ == "llmlab"


def test_finds_the_parent_server_else_the_newest_live_one(tmp_path, monkeypatch, dead_pid):
    monkeypatch.delenv("LLMLAB_SERVER_URL", raising=False)
    _runtime_file(tmp_path, dead_pid, 1111)
    _runtime_file(tmp_path, os.getpid(), 2222, base_url="/a%40b/", token="mine")
    _runtime_file(tmp_path, os.getppid(), 3333, token="parent")
    monkeypatch.setenv("JPY_PARENT_PID", str(os.getppid()))
    assert find_server(tmp_path) == {"url": "http://localhost:3333/", "token": "parent"}
    monkeypatch.delenv("JPY_PARENT_PID")
    os.utime(tmp_path / f"jpserver-{os.getpid()}.json", (2e9, 2e9))   # the newest
    assert find_server(tmp_path) == {"url": "http://localhost:2222/a%40b/", "token": "mine"}


def test_under_jupyterhub_the_hub_token_stands_in_for_the_empty_one(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMLAB_SERVER_URL", raising=False)
    monkeypatch.delenv("JPY_PARENT_PID", raising=False)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-token")
    _runtime_file(tmp_path, os.getpid(), 4444, base_url="/user/alice/", token="")
    assert find_server(tmp_path) == {"url": "http://localhost:4444/user/alice/", "token": "hub-token"}
    _runtime_file(tmp_path, os.getpid(), 4444, base_url="/user/alice/", token="own")
    assert find_server(tmp_path)["token"] == "own"   # a real token in the file still wins


def test_no_server_is_a_clear_error(tmp_path, monkeypatch, dead_pid):
    monkeypatch.delenv("LLMLAB_SERVER_URL", raising=False)
    _runtime_file(tmp_path, dead_pid, 1111)
    with pytest.raises(ConfigError, match="no running Jupyter server"):
        find_server(tmp_path)


def test_environment_override_and_client_headers(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_SERVER_URL", "http://127.0.0.1:9999/base")
    monkeypatch.setenv("LLMLAB_SERVER_TOKEN", "tok")
    c = make_client("atlas", client="acme", user="ana", session="s1", tags=["x", "y"], runtime_dir=tmp_path)
    assert str(c.base_url) == "http://127.0.0.1:9999/base/llmlab/v1/"
    assert c.api_key == "tok"
    h = c.default_headers
    assert (h["X-LLMLab-Project"], h["X-LLMLab-Client"], h["X-LLMLab-User"], h["X-LLMLab-Session"],
            h["X-LLMLab-Tags"]) == ("atlas", "acme", "ana", "s1", "x,y")


def test_server_url_uses_origin_and_base_url():
    info = {"url": "http://myhost:8888/hub/user/ana/", "base_url": "/hub/user/ana/"}
    assert server_url(info) == "http://myhost:8888/hub/user/ana/"
    with pytest.raises(ConfigError, match="Unix socket"):
        server_url({"sock": "/tmp/j.sock"})


@pytest.mark.parametrize("url,name", [
    ("git@github.com:acme/billing-bot.git", "billing-bot"), ("https://gitlab.com/a/b/c-repo", "c-repo"),
    ("ssh://git@host:22/team/proj.git/", "proj"), ("/srv/git/local.git", "local")])
def test_repo_name_from_remote_urls(url, name):
    assert repo_name_from_url(url) == name


def test_project_from_remote_then_top_folder_then_folder(tmp_path, monkeypatch):
    repo = tmp_path / "clone"
    (repo / ".git").mkdir(parents=True)
    (repo / "nb").mkdir()
    (repo / ".git" / "config").write_text('[remote "upstream"]\n\turl = https://x/y/other.git\n'
                                          '[remote "origin"]\n\turl = https://x/y/the-repo.git\n')
    assert detect_project(repo / "nb") == "the-repo"
    (repo / ".git" / "config").write_text("[core]\n\tbare = false\n")
    assert detect_project(repo / "nb") == "clone"
    plain = tmp_path / "just-a-folder"
    plain.mkdir()
    assert detect_project(plain) == "just-a-folder"
    monkeypatch.setenv("JPY_SESSION_NAME", str(repo / "nb" / "x.ipynb"))
    assert detect_project() == "clone"


def test_project_of_a_worktree(tmp_path):
    main_git = tmp_path / "main" / ".git"
    (main_git / "worktrees" / "wt").mkdir(parents=True)
    (main_git / "config").write_text('[remote "origin"]\n\turl = git@h:o/shared-repo.git\n')
    (main_git / "worktrees" / "wt" / "commondir").write_text("../..\n")
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / ".git").write_text(f"gitdir: {main_git / 'worktrees' / 'wt'}\n")
    assert detect_project(wt) == "shared-repo"
