"""Register the ``obslib`` Jupyter kernel inside the running venv (``make install``).

The notebooks name this kernel, so papermill works under cron with no user-level
kernel. The kernel logs only errors, keeping cron mail quiet.
Usage: ``python -m obslib.kernelspec [--name obslib]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def install(name: str = "obslib", display_name: str = "obslib (.venv)") -> Path:
    """Install the kernelspec under ``sys.prefix`` and return its folder."""
    from ipykernel.kernelspec import install as _install

    path = Path(_install(kernel_name=name, display_name=display_name, prefix=sys.prefix))
    spec_file = path / "kernel.json"
    spec = json.loads(spec_file.read_text())
    flag = "--IPKernelApp.log_level=ERROR"
    if flag not in spec["argv"]:
        spec["argv"].append(flag)
    spec["argv"][0] = sys.executable
    spec_file.write_text(json.dumps(spec, indent=1) + "\n")
    return path


if __name__ == "__main__":  # pragma: no cover
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="obslib")
    a = ap.parse_args()
    print(install(a.name))
