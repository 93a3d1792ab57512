"""The ``obslib`` Jupyter kernel: ipykernel, set up for executing reports without a person
at a frontend (papermill in the jobs, nbval in the tests).

``kernel.json`` (written by ``obslib.kernelspec``) starts it as
``python -m obslib.kernel -f {connection_file}``. It is the stock IPython kernel
(``ipykernel.kernelapp.IPKernelApp``) with these settings for report kernels:

- **No debugger.** ipykernel imports debugpy at start-up for frontends that debug cells
  (~0.1 s of every kernel start, on the critical path of every report); nothing ever
  attaches a debugger to a report kernel. ``import debugpy`` fails in this kernel, and
  the kernelspec says ``"debugger": false`` so a frontend does not offer it.
- **Preload.** A job that knows which modules its notebook imports names them in
  ``OBSLIB_KERNEL_PRELOAD`` (comma-separated; ``notebook.kernel_session(notebook=...)``
  passes what the notebook lists in its metadata, ``obslib.preload``).
  They are imported once the kernel's sockets are up and before it answers its first
  request: papermill is still connecting then, so the imports (matplotlib: ~0.3 s) leave
  the first cells instead of delaying them. A module that fails to import (any exception,
  ``sys.exit()`` included) is skipped here; the cell that imports it reports the error as
  usual. The variable is removed from the kernel's environment once read, and everything
  loaded so far is moved out of the cyclic collector's way (``gc.freeze``: full passes over
  matplotlib's objects slowed the cells). Without the variable the
  kernel preloads nothing (nbval, a by-hand run, papermill on its own).
- **No 3D axes in a job's kernel.** Only when it preloads (a job runs one of obslib's
  report notebooks in it, and they draw no 3D axes), matplotlib's 3D toolkit
  (``mpl_toolkits.mplot3d``, ~55 ms of matplotlib's import) is not loaded: matplotlib then
  has no ``projection="3d"``. Kernels without ``OBSLIB_KERNEL_PRELOAD`` (nbval, an
  analyst's session) have it as usual.
- **Quiet.** ``log_level = ERROR``, so cron mail only carries real kernel errors.

Run it by hand like any kernel: ``python -m obslib.kernel -f kernel-123.json``.
"""

from __future__ import annotations

import importlib
import os
import sys

# what the kernel app is given, besides the command line; see the module docstring
KERNEL_CONFIG = {
    "IPKernelApp": {"log_level": "ERROR"},
}
PRELOAD_ENV = "OBSLIB_KERNEL_PRELOAD"


def preload(names: str) -> list[str]:
    """Import each module of the comma-separated ``names``; returns those imported. A
    module that fails to import is skipped (its cell will raise the real error)."""
    done = []
    for name in filter(None, (n.strip() for n in names.split(","))):
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001,S112 - even sys.exit(): the cell that imports it reports it
            continue
        done.append(name)
    return done


def main(argv: list[str] | None = None) -> None:
    """Start the kernel (blocks until it is shut down). ``argv``: ipykernel's own
    arguments (default ``sys.argv[1:]``, e.g. ``-f <connection file>``)."""
    # like ipykernel_launcher: the working folder leaves sys.path while the kernel loads
    # (IPython puts it back for the cells), so no file there can shadow a kernel module
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    sys.modules.setdefault("debugpy", None)  # type: ignore[arg-type]  # no debugger (see above)
    from ipykernel.kernelapp import IPKernelApp
    from traitlets.config import Config

    app = IPKernelApp.instance(config=Config(KERNEL_CONFIG))
    app.initialize(argv)  # sockets bound, MPLBACKEND set to the inline backend
    names = os.environ.pop(PRELOAD_ENV, "")
    if names:  # a job's kernel: see "No 3D axes" and "Preload" above
        import gc
        import warnings

        sys.modules.setdefault("mpl_toolkits.mplot3d", None)  # type: ignore[arg-type]
        warnings.filterwarnings("ignore", message="Unable to import Axes3D")
        preload(names)
        gc.freeze()  # the kernel and the preloaded modules live until it stops: out of the collector's way
    app.start()


if __name__ == "__main__":  # pragma: no cover - run as the kernel process
    main()
