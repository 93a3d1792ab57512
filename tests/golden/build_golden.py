"""Regenerate the golden executed notebooks (``make golden``).

Each template in ``notebooks/`` is executed with papermill on the deterministic demo data
at the fixed ``AS_OF`` (every other parameter blank: temp folders, removed when the
kernel exits) and published as a job publishes it (``obslib.nbpublish.finalize_executed``:
the parameters cell holds ``as_of``, outputs bounded). ``make test`` re-executes these
copies with ``pytest --nbval`` (outputs compared, ``sanitize.cfg`` masking what changes
between runs), so a changed number fails CI with a diff; regenerate deliberately when a
change of the report is intended, and review the diff of the .ipynb files.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
AS_OF = "2026-11-26T09:40:00Z"  # a Thursday: the demo week 2026-11-23 has data in every section
NOTEBOOKS = ("weekly_report.ipynb", "dashboard_bundle.ipynb")
IMAGES = ("image/png", "image/jpeg")  # nbval skips them (without --nbdime)


def build(name: str) -> Path:
    import papermill

    from obslib.nbpublish import finalize_executed
    from obslib.notebook import check_parameters

    src, dst = REPO / "notebooks" / name, HERE / name
    params = {"as_of": AS_OF}
    check_parameters(src, params)
    papermill.execute_notebook(str(src), str(dst), parameters=params, kernel_name="obslib", progress_bar=False,
                               log_output=False, cwd=str(HERE))
    nb = finalize_executed(dst, params)
    nb.metadata.pop("papermill", None)  # run times and paths: not part of the golden output
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):  # nbval does not compare images: keep the files small
            for key in IMAGES:
                out.get("data", {}).pop(key, None)
    from nbformat.v4 import nbjson

    dst.write_text(nbjson.writes(nb) + "\n", encoding="utf-8")
    return dst


def main() -> int:
    for name in NOTEBOOKS:
        print(f"golden: {build(name).relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
