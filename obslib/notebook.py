"""Executing parameterised notebooks with papermill; the executed notebook and its HTML
page are then made by ``obslib.nbpublish``.

A notebook must have exactly one cell tagged ``parameters`` (refused before it runs).
Parameters are checked before execution against that cell
(``papermill.inspect_notebook``): an unknown name or a value whose type differs from
the declared default's type stops with a clear ``ObsError``. Execution uses the kernel
named in the notebook (``obslib``, registered inside the venv by ``make install``), with
a kernel-start timeout and a per-cell timeout, and shows no progress bar without a TTY.

Speed: a job starts its kernel first (``kernel_session``), so the kernel's ~1 s start-up
runs in parallel with the job's own preparation (preflight, papermill and nbconvert
imports); papermill then executes on that already-running kernel. Papermill writes the
executed notebook once at the end rather than after every cell (that cost ~0.15 s); a run
that fails keeps what it has: a failing or timed-out cell through papermill, a kernel that
dies through the ``obslib`` papermill engine registered here, which writes the partial
notebook before re-raising. papermill's log lines are not printed (the job's own error
message carries the cause). After the last cell the kernel is stopped at once: every
output has already arrived, and its history is in memory only (nothing to save).
"""

from __future__ import annotations

import functools
import gc
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import NOTEBOOK_DIR
from .errors import ObsError
from .kernel import PRELOAD_ENV
from .nbpublish import (
    INJECTED_TAG,
    PARAMETERS_TAG,
    export_html,
    finalize_executed,
    tagged,
    warm_up_html_export,
)

_TYPE_NAMES = {"str": str, "int": int, "float": float, "bool": bool}


class NotebookFailed(ObsError):
    """A cell raised; the partial executed notebook was kept at ``partial_path``."""

    def __init__(self, message: str, partial_path: Path | None):
        super().__init__(message)
        self.partial_path = partial_path


def check_parameters_cell(notebook: Path) -> None:
    """Raise ``ObsError`` unless exactly one cell of ``notebook`` is tagged ``parameters``:
    with none papermill has nowhere to put the values, and with several it injects after
    the first while a later one silently resets them (a report for the wrong week)."""
    import json

    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells") or []
    except (OSError, ValueError) as exc:
        raise ObsError(f"{notebook}: cannot read the notebook: {exc}") from exc
    found = tagged(cells, PARAMETERS_TAG)
    if len(found) != 1:
        where = f" (cells {', '.join(str(i + 1) for i in found)})" if found else ""
        raise ObsError(f"{notebook.name}: {len(found)} cells are tagged {PARAMETERS_TAG!r}{where}; exactly one is "
                       "needed (papermill injects the values after the first one, and a later one would reset them)")


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """``{name: {inferred_type_name, default}}`` from the notebook's ``parameters`` cell
    (``ObsError`` unless there is exactly one, see ``check_parameters_cell``)."""
    import papermill

    check_parameters_cell(notebook)
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


# as nbclient does for the kernels it starts: IPython history in memory, no sqlite file
KERNEL_ARGS = ["--HistoryManager.hist_file=:memory:"]
# the kernels' working folder is NOTEBOOK_DIR, as Jupyter runs a notebook in its own folder;
# it holds no Python files, so nothing in the caller's folder (say a checkout named obslib)
# can shadow a module the notebook imports (a kernel puts its working folder first on sys.path)


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


PRELOAD_MAX = 64  # modules a notebook may list (the list travels in one environment variable)
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def notebook_preload(notebook: Path) -> tuple[str, ...]:
    """The modules ``notebook`` lists in its metadata under ``obslib.preload`` (the ones its
    cells import; see ``obslib.kernel``): a list of dotted module names (a string is read
    as a comma-separated list). Entries that are not module names are dropped, and at most
    ``PRELOAD_MAX`` are kept. ``()`` when it lists none or cannot be read."""
    import json

    try:
        meta = json.loads(Path(notebook).read_text(encoding="utf-8")).get("metadata") or {}
        names = (meta.get("obslib") or {}).get("preload") or []
    except (OSError, ValueError, AttributeError):
        return ()
    if isinstance(names, str):
        names = names.split(",")
    if not isinstance(names, list):
        return ()
    good = [n.strip() for n in names if isinstance(n, str) and _MODULE_NAME.fullmatch(n.strip())]
    return tuple(good[:PRELOAD_MAX])


@contextmanager
def kernel_session(kernel_name: str, cwd: Path | None = None, notebook: Path | None = None) -> Iterator[Any]:
    """Start the Jupyter kernel ``kernel_name`` now and yield its (jupyter_client
    ``AsyncKernelManager``) manager; pass it to ``execute_to_html(km=...)``. The kernel boots in its
    own process while the caller goes on. On exit the kernel is stopped immediately and its
    connection file removed. ``cwd``: the kernel's working folder (default: ``notebooks/``).
    ``notebook``: the notebook it will run; the ``obslib`` kernel imports the modules it
    lists (``notebook_preload``) while papermill connects (``obslib.kernel``; another
    kernel ignores the list).
    The kernel's own stdout goes to /dev/null (cell output travels over ZeroMQ into the
    notebook); its stderr is the caller's when that is open, else /dev/null too, so a job
    started with closed streams still gets a kernel. Raises ``ObsError`` when the kernel is
    not installed or cannot start.
    """
    import subprocess

    from jupyter_client.kernelspec import NoSuchKernel
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    streams = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL,
               "stderr": None if _fd_open(2) else subprocess.DEVNULL}
    km = AsyncKernelManager(kernel_name=kernel_name)
    try:
        try:
            preload = notebook_preload(notebook) if notebook is not None else ()
            env = {**os.environ, PRELOAD_ENV: ",".join(preload)} if preload else None
            run_sync(km.start_kernel)(cwd=str(cwd or NOTEBOOK_DIR), extra_arguments=list(KERNEL_ARGS),
                                      **({"env": env} if env else {}), **streams)
        except NoSuchKernel as exc:
            raise ObsError(f"Jupyter kernel {kernel_name!r} is not installed: run `make install` "
                           "(it registers the kernel inside .venv)") from exc
        except OSError as exc:
            raise ObsError(f"Jupyter kernel {kernel_name!r} could not start: {exc}") from exc
        yield km
    finally:
        try:
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
        finally:
            run_sync(km.cleanup_resources)()


@functools.cache
def _register_engine() -> str:
    """Register (once) and name the papermill engine used here: papermill's nbclient engine
    that, when execution stops with an exception (a dead kernel, an interrupt), writes the
    notebook as far as it ran to ``partial_path`` first."""
    import logging

    import nbformat
    from papermill.engines import NBClientEngine, papermill_engines

    class KeepPartialEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, partial_path=None, **kwargs):
            try:
                return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)
            except BaseException:
                if partial_path is not None:
                    nbformat.write(nb_man.nb, str(partial_path))
                raise

    papermill_engines.register(ENGINE, KeepPartialEngine)
    logging.getLogger("papermill").addHandler(logging.NullHandler())
    return ENGINE


ENGINE = "obslib"


def _execute(notebook: Path, output: Path, params: dict[str, Any], *, km: Any, nb_cfg: Any) -> None:
    """Run papermill on the kernel ``km`` (from ``kernel_session``; still booting is fine)
    with the timeouts of ``nb_cfg``. Parameters must be checked already. Raises
    ``NotebookFailed`` (partial notebook kept at ``output``) when a cell fails or the kernel
    dies or does not answer within the start timeout."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=params, kernel_name=nb_cfg.kernel_name, km=km,
            engine_name=_register_engine(), partial_path=output, request_save_on_cell_execute=False,
            start_timeout=nb_cfg.start_timeout_s, execution_timeout=nb_cfg.cell_timeout_s,
            progress_bar=bool(sys.stderr and sys.stderr.isatty()), log_output=False,
        )
    except PapermillExecutionError as exc:
        raise NotebookFailed(f"{notebook.name}: cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}"[:2000],
                             output if output.exists() else None) from exc
    except (RuntimeError, TimeoutError) as exc:  # kernel died / did not start
        raise NotebookFailed(f"{notebook.name}: kernel error: {exc}"[:2000],
                             output if output.exists() else None) from exc


def keep_partial(exc: NotebookFailed, failed_path: Path, shown_relative_to: Path) -> NotebookFailed:
    """Move a failed run's partial notebook to ``failed_path`` and name it (relative to
    ``shown_relative_to``) in the error's message. Returns ``exc``."""
    if exc.partial_path is not None and exc.partial_path.exists():
        try:
            finalize_executed(exc.partial_path, None)  # bounded outputs; the injected cell kept for the audit
        except (OSError, ValueError):
            pass  # a partial notebook that does not parse is kept as it is
        failed_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(exc.partial_path, failed_path)
        exc.partial_path = failed_path
        exc.args = (f"{exc.args[0]} (partial notebook: {failed_path.relative_to(shown_relative_to)})",)
    return exc


class _Execution(threading.Thread):
    """``_execute`` in a daemon thread, then the kernel is killed; ``error`` holds what it
    raised. (papermill runs its own event loop in this thread and imports nothing new once
    ``check_parameters`` has run, so the caller's thread may import modules meanwhile.)"""

    def __init__(self, notebook: Path, output: Path, params: dict[str, Any], *, km: Any, nb_cfg: Any):
        super().__init__(name="obs-notebook", daemon=True)
        self._args, self._km, self._nb_cfg = (notebook, output, params), km, nb_cfg
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            _execute(*self._args, km=self._km, nb_cfg=self._nb_cfg)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.error = exc
        finally:
            _kill_kernel(self._km)


def _kill_kernel(km: Any) -> None:
    """SIGKILL the kernel's process group once the notebook has run (every output has
    arrived), so it dies while the caller exports HTML; ``kernel_session``'s exit then
    only reaps it and removes its files. Best effort: that exit stops it in any case."""
    import signal

    from jupyter_core.utils import ensure_async, run_sync

    async def kill() -> None:
        await ensure_async(km.signal_kernel(signal.SIGKILL))

    try:
        run_sync(kill)()
    except Exception:  # noqa: BLE001 - see docstring
        pass


def execute_to_html(notebook: Path, nb_out: Path, html_out: Path, params: dict[str, Any], *, failed_path: Path,
                    work_root: Path, nb_cfg: Any, km: Any, alongside: tuple[Callable[[], object], ...] = ()) -> None:
    """The jobs' notebook step: execute ``notebook`` into ``nb_out`` on the kernel ``km``
    (from ``kernel_session(nb_cfg.kernel_name)``; timeouts from ``nb_cfg``, a
    ``NotebookConfig``), keeping a failed run's partial notebook at ``failed_path``, then
    export ``html_out`` without re-execution.

    While the kernel works (papermill runs in a worker thread), this thread runs each of
    ``alongside`` (e.g. the job's input preflight), then readies nbconvert. If one of
    them raises, the notebook is left to stop (it fails on the same bad input, or ends),
    its partial notebook is not kept, and that error is raised: it says what is wrong.
    Raises ``NotebookFailed`` / ``ObsError``."""
    check_parameters(notebook, params)  # imports papermill; bad parameters stop here
    _register_engine()  # here too: the worker thread must import nothing
    run = _Execution(notebook, nb_out, params, km=km, nb_cfg=nb_cfg)
    # while this thread readies nbconvert (CPU-bound), the worker gets the GIL within 1 ms,
    # not 5 ms, to pass each kernel message on (about six per cell)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(min(switch, 0.001))
    run.start()
    try:
        for task in (*alongside, warm_up_html_export):
            task()
    except KeyboardInterrupt:
        raise  # the caller stops the kernel, which ends the worker
    except BaseException:
        run.join()
        raise
    finally:
        sys.setswitchinterval(switch)
    run.join()
    if isinstance(run.error, NotebookFailed):
        raise keep_partial(run.error, failed_path, Path(work_root))
    if run.error is not None:
        raise run.error
    # everything alive now (modules, the compiled exporter, papermill) lives until exit: out of
    # the cyclic collector's way, so a full collection during the export does not walk it all
    # (it took ~50 ms, on the path between the last cell and the page)
    gc.freeze()
    export_html(nb_out, html_out, nb=finalize_executed(nb_out, params))


__all__ = ["INJECTED_TAG", "NotebookFailed", "PARAMETERS_TAG", "check_parameters", "check_parameters_cell",
           "declared_parameters", "execute_to_html", "kernel_session", "keep_partial", "notebook_preload"]
