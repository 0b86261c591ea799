"""ipywidgets for llmlab: the dashboard and the pieces it is made of.

    import llmlab
    from llmlab.widgets import Dashboard
    Dashboard(llmlab.open())          # in a notebook, or under Voila (notebooks/dashboard.ipynb)

Layers: widgets -> charts -> query -> store. Nothing here runs SQL of its own.
"""

from __future__ import annotations

from .browser import CopyButton, DataTable, DownloadButton, UrlSync
from .controls import Controls
from .conversation import as_xml, messages
from .dashboard import Dashboard
from .state import PRESETS, TABS, ViewState

__all__ = [
    "Dashboard", "Controls", "ViewState", "PRESETS", "TABS",
    "DataTable", "CopyButton", "DownloadButton", "UrlSync", "messages", "as_xml",
]
