"""notebooks/tour.ipynb run for real: papermill, a kernel, and a running Jupyter server.

The server is a real ``jupyter server`` subprocess with the llmlab extension (base_url
``/a%40b/``). The kernel finds it the way a JupyterLab kernel does, through the Jupyter runtime
folder, sends a call to ``llmlab/offline`` through the proxy and waits until the server's flusher
has ingested it. The test then checks every output, and the call in the store itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from proxy_server import ProxyServer

from llmlab.client import detect_project

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "tour.ipynb"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("tour")
    srv = ProxyServer(root)
    llmlab_cli = Path(sys.executable).parent / "llmlab"
    subprocess.run([str(llmlab_cli), "demo", "--quiet", "--home", str(srv.home)],
                   check=True, capture_output=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def executed(server, tmp_path_factory):
    out = tmp_path_factory.mktemp("tour-out") / "tour.ipynb"
    env = {**os.environ, "LLMLAB_HOME": str(server.home),
           # The kernel looks for the server's jpserver-<pid>.json here, as in JupyterLab.
           "JUPYTER_RUNTIME_DIR": str(server.runtime_dir),
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("LLMLAB_SERVER_URL", None)
    run = subprocess.run(
        [sys.executable, "-m", "papermill", str(NOTEBOOK), str(out), "--cwd", str(NOTEBOOK.parent),
         "-p", "home", str(server.home), "-p", "flush_timeout", "60", "--log-level", "WARNING"],
        env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-4000:] + server.log()[-2000:]
    return nbformat.read(out, as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _text(cell) -> str:
    parts = []
    for o in cell.outputs:
        if o.output_type == "stream":
            parts.append(o.text)
        elif "data" in o:
            parts.append(o.data.get("text/plain", ""))
            parts.append(o.data.get("text/html", ""))
    return "\n".join(parts)


def _cell_with(nb, snippet: str):
    (cell,) = [c for c in _code_cells(nb) if snippet in c.source]
    return cell


def test_the_tour_has_one_parameters_cell_and_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "home = None" in tagged[0].source
    assert all(not c.outputs and c.execution_count is None for c in _code_cells(nb))


def test_every_cell_ran_without_an_error(executed):
    for cell in _code_cells(executed):
        assert all(o.output_type != "error" for o in cell.outputs), cell.source
        assert cell.execution_count is not None, cell.source


def test_helpers_and_sql_show_tables_of_the_demo_data(executed, server):
    import llmlab

    lab = llmlab.open(server.home)
    for snippet in ("lab.summary(", "lab.daily(since=month_ago)", "lab.by_model(", "lab.by_project(",
                    'lab.by("client"', 'lab.requests(project="atlas"', "lab.sql("):
        html = _text(_cell_with(executed, snippet))
        assert "<table" in html, snippet
    assert "atlas" in _text(_cell_with(executed, "lab.by_project("))
    # Providers of the demo's last four weeks (inside the notebook's 30 days, whatever the hour).
    providers = set(lab.sql(
        "select distinct provider from requests where status_code < 400 and provider is not null "
        "and started_at >= current_date - 28 and model not like 'llmlab/%'")["provider"])
    sql_out = _text(_cell_with(executed, "lab.sql("))
    assert len(providers) >= 4 and all(p in sql_out for p in providers), (providers, sql_out)


def test_the_chart_is_an_offline_jupyter_chart_widget(executed):
    cell = _cell_with(executed, "charts.jupyter_chart(")
    views = [o for o in cell.outputs if "data" in o and
             "application/vnd.jupyter.widget-view+json" in o.data]
    assert views, cell.outputs
    assert "JupyterChart" in views[0].data["text/plain"]


def test_the_call_sent_through_the_running_server_appears_in_the_store(executed, server):
    send = _text(_cell_with(executed, "llmlab.client("))
    assert server.proxy_url + "/" in send                  # found through the runtime folder
    request_id = send.split("request id:")[1].split()[0]
    found = _text(_cell_with(executed, "lab.request(request_id)"))
    assert request_id in found and "llmlab/offline" in found
    assert request_id in _text(_cell_with(executed, 'lab.requests(model="llmlab/offline"'))

    (row,) = server.rows("request_id = ?", [request_id])
    assert row["model"] == "llmlab/offline" and row["status_code"] == 200
    assert row["project"] == detect_project(NOTEBOOK.parent)   # the notebook's folder
    assert row["tags"] == ["tour"]
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert str(row["output_tokens"]) in send                # the usage the client printed
    assert row["cost_usd"] is not None and float(row["cost_usd"]) == 0.0   # priced, at 0
