"""Small anywidgets for what only the browser can do: the URL, the clipboard, file downloads,
and a table whose headers and rows are clickable.

Their JavaScript is inline (no CDN, no build step). Each keeps its logic in Python where it can
be: the table only draws the rows it is given and reports clicks; sorting happens in Python.
"""

from __future__ import annotations

from collections.abc import Callable

import anywidget
import traitlets

_URL_ESM = r"""
function render({ model, el }) {
  el.style.display = "none";
  if (!model.get("enabled")) return;
  const keys = () => model.get("params");
  const fromUrl = () => {
    const p = new URLSearchParams(window.location.search);
    const out = {};
    for (const k of keys()) if (p.get(k)) out[k] = p.get(k);
    return out;
  };
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  model.on("change:query", () => {
    const want = model.get("query");
    if (same(want, fromUrl())) return;
    const p = new URLSearchParams(window.location.search);
    for (const k of keys()) p.delete(k);
    for (const [k, v] of Object.entries(want)) p.set(k, v);
    const search = p.toString();
    const url = window.location.pathname + (search ? "?" + search : "") + window.location.hash;
    if (model.get("replace")) window.history.replaceState({ llmlab: true }, "", url);
    else window.history.pushState({ llmlab: true }, "", url);
  });
  window.addEventListener("popstate", () => {
    model.set("query", fromUrl());
    model.save_changes();
  });
  const initial = fromUrl();
  if (!same(initial, model.get("query"))) {
    model.set("query", initial);
    model.save_changes();
  }
}
export default { render };
"""


class UrlSync(anywidget.AnyWidget):
    """Mirrors ``query`` (a dict of the managed ``params``) into the page URL's query string.

    Python -> URL: a new ``query`` is pushed as a history entry (replaced if ``replace``).
    URL -> Python: back/forward and the URL the page was opened with set ``query``.
    Other parameters of the URL (e.g. ``token``) are left alone. Invisible.
    """

    _esm = _URL_ESM
    enabled = traitlets.Bool(False).tag(sync=True)
    params = traitlets.List(traitlets.Unicode()).tag(sync=True)
    query = traitlets.Dict().tag(sync=True)
    replace = traitlets.Bool(False).tag(sync=True)

    def show(self, query: dict, *, replace: bool = False) -> None:
        with self.hold_sync():
            self.replace = replace
            self.query = dict(query)


_COPY_ESM = r"""
function render({ model, el }) {
  const b = document.createElement("button");
  b.className = "llmlab-button llmlab-copy";
  const label = () => { b.textContent = model.get("label"); b.disabled = !model.get("text"); };
  label();
  model.on("change:text change:label", label);
  b.addEventListener("click", async () => {
    const text = model.get("text");
    let ok = false;
    try { await navigator.clipboard.writeText(text); ok = true; }
    catch (e) {
      // Plain http on another host has no clipboard API: the old way still works there.
      const area = document.createElement("textarea");
      area.value = text; area.style.position = "fixed"; area.style.opacity = "0";
      document.body.appendChild(area); area.select();
      try { ok = document.execCommand("copy"); } catch (e2) { ok = false; }
      area.remove();
    }
    b.textContent = ok ? "Copied ✓" : "Copy failed";
    setTimeout(label, 1500);
    if (ok) { model.set("copies", model.get("copies") + 1); model.save_changes(); }
  });
  el.appendChild(b);
}
export default { render };
"""


class CopyButton(anywidget.AnyWidget):
    """A button that puts ``text`` on the clipboard; ``copies`` counts successful copies."""

    _esm = _COPY_ESM
    label = traitlets.Unicode("Copy").tag(sync=True)
    text = traitlets.Unicode("").tag(sync=True)
    copies = traitlets.Int(0).tag(sync=True)


_DOWNLOAD_ESM = r"""
function render({ model, el }) {
  const b = document.createElement("button");
  b.className = "llmlab-button llmlab-download";
  const idle = () => { b.textContent = model.get("label"); b.disabled = false; };
  idle();
  model.on("change:label", idle);
  b.addEventListener("click", () => {
    b.disabled = true; b.textContent = "Preparing…";
    model.send({ event: "download" });
  });
  model.on("msg:custom", (msg, buffers) => {
    if (msg.event === "file") {
      const blob = new Blob(buffers, { type: msg.mime });
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url; a.download = msg.filename;
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      idle();
    } else if (msg.event === "error") {
      b.textContent = "Failed"; b.title = msg.message;
      setTimeout(idle, 2500);
    }
  });
  el.appendChild(b);
}
export default { render };
"""


class DownloadButton(anywidget.AnyWidget):
    """A button that asks Python for a file when clicked and saves what comes back.

    ``make`` is called on click and returns ``(filename, mime_type, bytes)``; the bytes travel
    as a binary buffer, so nothing is prepared before anyone asks for it.
    """

    _esm = _DOWNLOAD_ESM
    label = traitlets.Unicode("Download").tag(sync=True)

    def __init__(self, make: Callable[[], tuple[str, str, bytes]], **kw):
        super().__init__(**kw)
        self._make = make
        self.on_msg(self._on_message)

    def _on_message(self, _widget, content, _buffers) -> None:
        if content.get("event") != "download":
            return
        try:
            filename, mime, data = self._make()
        except Exception as exc:  # shown on the button; the page keeps working
            self.send({"event": "error", "message": str(exc)})
            return
        self.send({"event": "file", "filename": filename, "mime": mime}, buffers=[data])


_TABLE_ESM = r"""
function render({ model, el }) {
  const wrap = document.createElement("div");
  wrap.className = "llmlab-table-wrap";
  el.appendChild(wrap);
  function draw() {
    const cols = model.get("columns"), rows = model.get("rows");
    const sortBy = model.get("sort_by"), desc = model.get("descending");
    const selected = model.get("selected"), sortable = model.get("sortable");
    const table = document.createElement("table");
    table.className = "llmlab-table" + (model.get("clickable") ? " clickable" : "");
    const head = table.createTHead().insertRow();
    for (const c of cols) {
      const th = document.createElement("th");
      th.textContent = c.label;
      th.className = c.kind === "text" ? "text" : "num";
      if (sortable) {
        th.classList.add("sortable");
        if (c.key === sortBy) { th.classList.add("sorted"); th.textContent += desc ? " ▼" : " ▲"; }
        th.title = "sort by " + c.label;
        th.addEventListener("click", () => {
          if (c.key === sortBy) model.set("descending", !desc);
          else { model.set("sort_by", c.key); model.set("descending", c.kind !== "text"); }
          model.save_changes();
        });
      }
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      tr.dataset.key = r._key;
      if (r._key === selected) tr.classList.add("selected");
      for (const c of cols) {
        const td = tr.insertCell();
        td.textContent = r[c.key] ?? "";
        td.className = c.kind === "text" ? "text" : "num";
        if (r._title && c.key === cols[0].key) td.title = r._title;
      }
      if (model.get("clickable")) tr.addEventListener("click", () => {
        model.set("selected", r._key); model.save_changes();
      });
    }
    wrap.replaceChildren(table);
    if (!rows.length) {
      const empty = document.createElement("div");
      empty.className = "llmlab-table-empty";
      empty.textContent = model.get("empty_text");
      wrap.appendChild(empty);
    }
  }
  model.on("change:rows change:columns change:sort_by change:descending change:selected", draw);
  draw();
}
export default { render };
"""


class DataTable(anywidget.AnyWidget):
    """An HTML table of preformatted cells.

    ``columns``: ``[{"key", "label", "kind": "text"|"num"}]``; ``rows``: dicts of display strings
    keyed by column plus ``_key`` (the row's identity). Clicking a header sets ``sort_by`` /
    ``descending`` (Python re-sorts and sends new rows); clicking a row sets ``selected``.
    """

    _esm = _TABLE_ESM
    columns = traitlets.List(traitlets.Dict()).tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    sort_by = traitlets.Unicode("").tag(sync=True)
    descending = traitlets.Bool(True).tag(sync=True)
    sortable = traitlets.Bool(True).tag(sync=True)
    clickable = traitlets.Bool(True).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    empty_text = traitlets.Unicode("Nothing in this selection.").tag(sync=True)
