"""Executing parameterised notebooks with papermill and exporting HTML with nbconvert.

Parameters are checked before execution against the notebook's tagged ``parameters``
cell (``papermill.inspect_notebook``): an unknown name or a value whose type differs from
the declared default's type stops with a clear ``ObsError``. Execution uses the kernel
named in the notebook (``obslib``, registered inside the venv by ``make install``), with
a kernel-start timeout and a per-cell timeout, and shows no progress bar without a TTY.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .errors import ObsError

_TYPE_NAMES = {"str": str, "int": int, "float": float, "bool": bool}


class NotebookFailed(ObsError):
    """A cell raised; the partial executed notebook was kept at ``partial_path``."""

    def __init__(self, message: str, partial_path: Path | None):
        super().__init__(message)
        self.partial_path = partial_path


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """``{name: {inferred_type_name, default}}`` from the notebook's ``parameters`` cell."""
    import papermill

    return papermill.inspect_notebook(str(notebook))


def check_parameters(notebook: Path, params: dict[str, Any]) -> None:
    """Raise ``ObsError`` for a parameter the notebook does not declare or of the wrong type
    (``None`` is allowed for declared ``None``/str defaults; ints are accepted for floats)."""
    declared = declared_parameters(notebook)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ObsError(f"{notebook.name}: unknown parameter(s) {unknown}; declared: {sorted(declared)}")
    for name, value in params.items():
        tname = (declared[name].get("inferred_type_name") or "").split("|")[0].strip()
        typ = _TYPE_NAMES.get(tname)
        if typ is None or value is None:
            continue
        ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ObsError(f"{notebook.name}: parameter {name!r} must be {tname}, got {type(value).__name__} "
                           f"({value!r})")


def execute(notebook: Path, output: Path, params: dict[str, Any], *, kernel_name: str, start_timeout_s: int,
            cell_timeout_s: int, cwd: Path | None = None) -> Path:
    """Execute ``notebook`` into ``output`` with ``params``. Returns ``output``.

    Raises ``NotebookFailed`` (partial notebook kept at ``output``) when a cell fails, and
    ``ObsError`` for bad parameters or a kernel that does not start.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    check_parameters(notebook, params)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=params, kernel_name=kernel_name,
            start_timeout=start_timeout_s, execution_timeout=cell_timeout_s,
            progress_bar=sys.stderr.isatty(), log_output=False, cwd=str(cwd) if cwd else None,
        )
    except PapermillExecutionError as exc:
        raise NotebookFailed(f"{notebook.name}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}"[:2000],
                             output if output.exists() else None) from exc
    except (RuntimeError, TimeoutError) as exc:  # kernel died / did not start
        raise NotebookFailed(f"{notebook.name}: kernel error: {exc}"[:2000],
                             output if output.exists() else None) from exc
    return output


def export_html(executed: Path, html_path: Path) -> Path:
    """Write ``html_path`` from an executed notebook without re-executing it (atomic)."""
    import nbformat
    from nbconvert import HTMLExporter

    from .storage import atomic_write_text

    nb = nbformat.read(str(executed), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    atomic_write_text(html_path, body)
    return html_path


def warm_up_html_export() -> None:
    """Import nbconvert and render a one-cell notebook once (template and pygments setup),
    so the real export afterwards is fast."""
    import nbformat
    from nbconvert import HTMLExporter

    HTMLExporter().from_notebook_node(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]))


def start_html_warm_up():
    """Start ``warm_up_html_export``'s render in a daemon thread and return the thread
    (``join`` it before exporting). Every module involved (papermill, jupyter_client,
    nbconvert, IPython) is imported here, in the calling thread, first: importing them
    from two threads at once can fail (a partially initialised module)."""
    import threading

    import IPython  # noqa: F401
    import IPython.lib.lexers  # noqa: F401
    import nbclient  # noqa: F401
    import nbconvert  # noqa: F401
    import nbformat  # noqa: F401
    import papermill  # noqa: F401
    import papermill.engines  # noqa: F401
    import papermill.exceptions  # noqa: F401
    import pygments.lexers.python  # noqa: F401
    from jupyter_client.manager import AsyncKernelManager  # noqa: F401
    from nbconvert import HTMLExporter  # noqa: F401

    t = threading.Thread(target=warm_up_html_export, name="html-warm-up", daemon=True)
    t.start()
    return t


def execute_keeping_partial(notebook: Path, output: Path, params: dict[str, Any], *, failed_path: Path,
                            shown_relative_to: Path, **kwargs: Any) -> Path:
    """``execute``; when a cell fails, move the partial notebook to ``failed_path`` and
    re-raise ``NotebookFailed`` with that path (relative to ``shown_relative_to``) in the
    message. ``kwargs`` go to ``execute``."""
    import os

    try:
        return execute(notebook, output, params, **kwargs)
    except NotebookFailed as exc:
        if exc.partial_path is not None and exc.partial_path.exists():
            failed_path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(exc.partial_path, failed_path)
            exc.args = (f"{exc.args[0]} (partial notebook: {failed_path.relative_to(shown_relative_to)})",)
        raise


def execute_to_html(notebook: Path, nb_out: Path, html_out: Path, params: dict[str, Any], *, failed_path: Path,
                    work_root: Path, nb_cfg: Any, cwd: Path) -> None:
    """The jobs' notebook step: execute ``notebook`` into ``nb_out`` (kernel and timeouts
    from ``nb_cfg``, a ``NotebookConfig``), keeping a failed run's partial notebook at
    ``failed_path``, then export ``html_out`` without re-execution. nbconvert is warmed up
    in the background while the kernel runs. Raises ``NotebookFailed`` / ``ObsError``."""
    warm = start_html_warm_up()
    execute_keeping_partial(notebook, nb_out, params, failed_path=failed_path, shown_relative_to=Path(work_root),
                            kernel_name=nb_cfg.kernel_name, start_timeout_s=nb_cfg.start_timeout_s,
                            cell_timeout_s=nb_cfg.cell_timeout_s, cwd=cwd)
    warm.join()
    export_html(nb_out, html_out)
