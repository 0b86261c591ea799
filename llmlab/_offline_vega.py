"""The Vega bundle behind offline ``alt.JupyterChart``s, built once and kept on disk.

``alt.JupyterChart.enable_offline()`` bundles vega, vega-lite and vega-embed from vl-convert
into the widget's ES module: about 1 MB and ~3 s of work, in every new kernel (every Voila page
load). The result depends only on the altair and vl-convert versions, so it is kept in
``<llmlab home>/cache/`` and later kernels read it back; charts then use a subclass of
``JupyterChart`` carrying the cached module. Anything unexpected falls back to altair's own
``enable_offline()``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import altair as alt

from .paths import default_home


def _cache_file() -> Path:
    import vl_convert

    source = (Path(alt.__file__).parent / "jupyter" / "js" / "index.js").read_bytes()
    key = hashlib.sha256(b"|".join([alt.__version__.encode(), vl_convert.__version__.encode(),
                                    source])).hexdigest()[:16]
    return default_home() / "cache" / f"vega-offline-{key}.js"


@functools.cache
def chart_class() -> type[alt.JupyterChart]:
    """A JupyterChart class whose ES module needs no network."""
    try:
        path = _cache_file()
        if path.is_file():
            bundle = path.read_text(encoding="utf-8")
            return type("OfflineJupyterChart", (alt.JupyterChart,), {"_esm": bundle})
    except (OSError, ValueError, ImportError):
        path = None
    alt.JupyterChart.enable_offline()
    bundle = getattr(alt.JupyterChart, "_esm", None)
    if path is not None and isinstance(bundle, str) and "esm.sh" not in bundle:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(bundle)
            os.replace(tmp, path)  # readers see the whole file or none
        except OSError:
            pass  # no cache this time; the charts still work
    return alt.JupyterChart
