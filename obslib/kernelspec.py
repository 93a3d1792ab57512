"""Register the ``obslib`` Jupyter kernel inside the running venv (``make install``).

The notebooks name this kernel, so papermill works under cron with no user-level
kernel. It runs ``python -m obslib.kernel`` (the IPython kernel without a debugger, with
figures drawn once and errors-only logging: see ``obslib.kernel``).
Usage: ``python -m obslib.kernelspec [--name obslib]``; prints the kernelspec's folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def kernel_argv(python: str | None = None) -> list[str]:
    """The kernel's command line as ``kernel.json`` holds it (``{connection_file}`` is
    filled in by Jupyter)."""
    return [python or sys.executable, "-m", "obslib.kernel", "-f", "{connection_file}"]


def install(name: str = "obslib", display_name: str = "obslib (.venv)") -> Path:
    """Install the kernelspec under ``sys.prefix`` (``share/jupyter/kernels/<name>/``,
    with ipykernel's logos) and return its folder. Idempotent: rewrites ``kernel.json``."""
    from ipykernel.kernelspec import install as _install

    from .storage import atomic_write_text

    path = Path(_install(kernel_name=name, display_name=display_name, prefix=sys.prefix))
    spec_file = path / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec["argv"] = kernel_argv()
    spec.setdefault("metadata", {})["debugger"] = False  # obslib.kernel has none
    atomic_write_text(spec_file, json.dumps(spec, indent=1) + "\n")
    return path


if __name__ == "__main__":  # pragma: no cover
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="obslib")
    a = ap.parse_args()
    print(install(a.name))
