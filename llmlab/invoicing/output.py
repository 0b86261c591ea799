"""Turning the invoice notebook into files: papermill run, HTML (nbconvert) and PDF (Chromium).

    execute_notebook(...)   papermill with the python3 kernel of *this* Python environment
    export_html(nb, html)   nbconvert with llmlab's template: outputs only, no code, no scripts
    print_pdf(html, pdf)    headless Chromium --print-to-pdf, offline, no sandbox needed as root
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ..errors import InvoiceError

NBCONVERT_TEMPLATES = Path(__file__).parent / "nbconvert"
NBCONVERT_TEMPLATE = "llmlab_invoice"
KERNEL_LOG = "kernel.log"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-extensions", "--disable-sync", "--no-first-run",
                  "--no-default-browser-check", "--no-pdf-header-footer", "--hide-scrollbars")


def kernel_manager_class(socket_dir: str):
    """A kernel manager class for this interpreter's ipykernel.

    Looking ``python3`` up in the kernelspec path could find a user-level spec that points at
    another Python (without llmlab); the native spec is always ``sys.executable``. On POSIX the
    kernel talks over Unix sockets in ``socket_dir`` (a private temporary folder), not TCP.
    A class, not an instance: nbclient shuts down only kernels whose manager it created.
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class InvoiceKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs["kernel_spec_manager"] = KernelSpecManager(kernel_dirs=[],
                                                              ensure_native_kernel=True)
            if os.name == "posix":
                kwargs.update(transport="ipc", ip=os.path.join(socket_dir, "kernel"))
            super().__init__(**kwargs)

        async def _async_launch_kernel(self, kernel_cmd, **kw):
            # The kernel's own stderr (shutdown chatter such as "KeyboardInterrupt caught in
            # kernel") goes to a log that a failed run quotes, not onto the user's terminal.
            with open(os.path.join(socket_dir, KERNEL_LOG), "ab") as log:
                kw.setdefault("stderr", log)
                await super()._async_launch_kernel(kernel_cmd, **kw)

    return InvoiceKernelManager


def execute_notebook(notebook: Path, output: Path, parameters: dict[str, Any], *,
                     cwd: Path, progress: bool = False, timeout: float = 600) -> None:
    """Run the invoice notebook with papermill; an InvoiceError inside it comes out as one."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llmlab-kernel-") as sockets:
        try:
            papermill.execute_notebook(
                str(notebook), str(output), parameters=parameters, kernel_name="python3",
                kernel_manager_class=kernel_manager_class(sockets), cwd=str(cwd),
                progress_bar=progress, log_output=False, execution_timeout=timeout,
                start_timeout=120)
        except PapermillExecutionError as exc:
            raise InvoiceError(f"{exc.evalue} (the failed run is saved in {output})"
                               if exc.ename == "InvoiceError"
                               else f"the invoice notebook failed with {exc.ename}: {exc.evalue} "
                                    f"(see {output})") from None
        except Exception as exc:  # noqa: BLE001 - a kernel that died or never started
            raise InvoiceError(f"the invoice kernel failed: {type(exc).__name__}: {exc}"
                               + _log_tail(Path(sockets) / KERNEL_LOG)) from exc


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return ("\nkernel log:\n" + "\n".join(text.splitlines()[-lines:])) if text else ""


def export_html(notebook: Path, html: Path) -> Path:
    """The executed notebook as invoice HTML: displayed outputs only (nbconvert, no input)."""
    import nbformat
    from nbconvert import HTMLExporter

    try:
        nb = nbformat.read(str(notebook), as_version=4)
    except (OSError, ValueError) as exc:
        raise InvoiceError(f"cannot read the executed notebook {notebook}: {exc}") from exc
    exporter = HTMLExporter(extra_template_basedirs=[str(NBCONVERT_TEMPLATES)],
                            template_name=NBCONVERT_TEMPLATE, exclude_input=True,
                            exclude_input_prompt=True, exclude_output_prompt=True)
    title = _invoice_title(nb) or notebook.stem
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title},
                                                         "invoice_title": title})
    if "llmlab-invoice" not in body:
        raise InvoiceError(f"{notebook} has no rendered invoice in its outputs; was it executed?")
    html.write_text(body, encoding="utf-8")
    return html


def _invoice_title(nb) -> str | None:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("llmlab_invoice")
            if meta:
                return f"Invoice {meta['number']}"
    return None


def find_chromium() -> str:
    """``$LLMLAB_CHROMIUM`` or the first Chromium/Chrome on PATH; a clear error if none."""
    configured = os.environ.get("LLMLAB_CHROMIUM")
    if configured:
        if shutil.which(configured):
            return shutil.which(configured)
        raise InvoiceError(f"LLMLAB_CHROMIUM={configured!r} is not an executable")
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise InvoiceError(
        "no Chromium found to print the PDF (looked for " + ", ".join(CHROMIUM_NAMES) + "). "
        "Install it (Debian/Ubuntu: apt-get install -y chromium) or set LLMLAB_CHROMIUM to its "
        "path; the notebook, HTML and invoice.json are written already (--no-pdf skips the PDF)")


def print_pdf(html: Path, pdf: Path, *, timeout: float = 120) -> Path:
    """Print the invoice HTML to PDF with headless Chromium (no network: the page needs none)."""
    browser = find_chromium()
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="llmlab-chromium-") as profile:
        cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
               f"--print-to-pdf={pdf.resolve()}", html.resolve().as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env={**os.environ, "HOME": profile}, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise InvoiceError(f"Chromium did not print {html} within {timeout:.0f}s") from None
    if done.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        tail = (done.stderr or done.stdout or "").strip().splitlines()[-5:]
        raise InvoiceError(f"Chromium ({browser}) could not print {html} to PDF "
                           f"(exit {done.returncode}): " + " | ".join(tail))
    return pdf
