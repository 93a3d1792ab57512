"""The executed notebook as published, and its HTML page.

- ``finalize_executed``: outputs bounded (``truncate_outputs``: each code cell's text past
  ``MAX_CELL_OUTPUT_CHARS`` cut with a visible note, an oversized image replaced by a
  note) and, for a successful run, the run's parameters written into the ``parameters``
  cell with papermill's injected cell dropped (``publish_parameters``), so the notebook
  re-executes on its own (``papermill <it> <out.ipynb> -p out_dir DIR``).
- ``export_html``: the page, through the ``obslib_report`` nbconvert template
  (``obslib/templates/``: JupyterLab's page without require.js, MathJax, mermaid or widget
  scripts, with the report styles), without input cells, prompts, parameters cells or
  code cells that printed nothing; titled by the ``obslib.title`` an output carries.

``obslib.notebook`` executes notebooks and calls these once a run has ended.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def tagged(cells: list[dict], tag: str) -> list[int]:
    """Indexes of the cells carrying ``tag``."""
    return [i for i, c in enumerate(cells) if tag in (c.get("metadata") or {}).get("tags", [])]


TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "obslib_report"  # lab's HTML without network requests, with the report styles


@functools.cache
def _html_exporter():
    """The process's one ``HTMLExporter`` (its jinja templates are compiled per instance):
    the ``obslib_report`` template, input cells and prompts left out (the executed
    notebook keeps the code; the page shows results)."""
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATES)], exclude_input=True,
                        exclude_input_prompt=True, exclude_output_prompt=True)


def _page(nb: Any) -> Any:
    """What the HTML page shows of an executed notebook: no parameters cells, no code cell
    without output; its ``<title>`` is the ``obslib.title`` an output carries (a report's
    summary), else the notebook's own."""
    import copy

    page = copy.copy(nb)
    page.cells = [c for c in nb.cells
                  if not {PARAMETERS_TAG, INJECTED_TAG} & set(c.get("metadata", {}).get("tags", []))
                  and not (c.get("cell_type") == "code" and not c.get("outputs"))]
    for c in page.cells:
        for o in c.get("outputs", []):
            title = ((o.get("metadata") or {}).get("obslib") or {}).get("title")
            if title:
                page.metadata = copy.deepcopy(nb.metadata)
                page.metadata["title"] = title
                return page
    return page


def export_html(executed: Path, html_path: Path, nb: Any = None) -> Path:
    """Write ``html_path`` from an executed notebook (read from ``executed`` unless given
    as ``nb``) without re-executing it (atomic). Self-contained: nothing is fetched from
    the network, plots are inline PNG. Reuses one ``HTMLExporter`` per process
    (compiling its templates takes ~0.3 s)."""
    import nbformat

    from .storage import atomic_write_text

    node = nbformat.from_dict(nb) if nb is not None else nbformat.read(str(executed), as_version=4)
    body, _ = _html_exporter().from_notebook_node(_page(node))
    atomic_write_text(html_path, body)
    return html_path


def warm_up_html_export() -> None:
    """Create the process's ``HTMLExporter`` and render a one-cell notebook once (template
    compilation, pygments and markdown setup), so the real export afterwards is fast."""
    import nbformat

    _html_exporter().from_notebook_node(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]))


# --- the executed notebook as published ---------------------------------------------------

MAX_CELL_OUTPUT_CHARS = 100_000  # text kept per cell (its streams, text/plain and HTML together)
MAX_IMAGE_CHARS = 4_000_000  # base64 characters of one image output (~3 MB)
_TEXT_TYPES = ("text/html", "text/markdown", "text/latex", "image/svg+xml", "application/json", "text/plain")
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")


def _text(v: Any) -> str:
    return "".join(v) if isinstance(v, list) else str(v) if not isinstance(v, str) else v


def _output_chars(o: dict) -> tuple[int, int]:
    """(characters, lines) of an output's text as shown (HTML when it has some)."""
    if o.get("output_type") == "stream":
        t = _text(o.get("text", ""))
    elif o.get("output_type") == "error":
        t = "\n".join(o.get("traceback") or [])
    else:
        data = o.get("data") or {}
        t = next((_text(data[k]) for k in _TEXT_TYPES if k in data), "")
    return len(t), t.count("\n") + (1 if t and not t.endswith("\n") else 0)


def _note(total: int, lines: int, limit: int) -> str:
    return (f"\n[output truncated: this cell printed {total:,} characters ({lines:,} lines); the first {limit:,} "
            f"are kept (obslib.nbpublish.MAX_CELL_OUTPUT_CHARS)]\n")


def truncate_outputs(nb: dict, limit: int = MAX_CELL_OUTPUT_CHARS, image_limit: int = MAX_IMAGE_CHARS) -> int:
    """Bound the published notebook and page: in each code cell, text outputs past
    ``limit`` characters in total are cut (the first ones kept) and a visible note says how
    much there was; an image larger than ``image_limit`` is replaced by a note. Works on
    the notebook's JSON dict in place; returns the number of cells cut."""
    cut_cells = 0
    for cell in nb.get("cells", []):
        outputs = cell.get("outputs") or []
        sizes = [_output_chars(o) for o in outputs]
        total, lines = sum(c for c, _ in sizes), sum(n for _, n in sizes)
        budget, kept, cut = limit, [], False
        for o, (chars, _) in zip(outputs, sizes, strict=True):
            data = o.get("data") or {}
            image = any(k in data for k in _IMAGE_TYPES)
            for k in _IMAGE_TYPES:
                if k in data and len(_text(data[k])) > image_limit:
                    o["data"] = {"text/plain": f"[image of {len(_text(data[k])):,} base64 characters left out: "
                                               f"over obslib.nbpublish.MAX_IMAGE_CHARS]"}
            if cut:  # past the limit: text goes (the note is there), images (bounded above) and errors stay
                if image or o.get("output_type") == "error":
                    kept.append(o)
                continue
            if chars <= budget:
                budget -= chars
                kept.append(o)
                continue
            cut = True
            if o.get("output_type") == "stream":
                o["text"] = _text(o.get("text", ""))[:budget] + _note(total, lines, limit)
                kept.append(o)
            else:
                if budget > 0 and o.get("output_type") != "error":
                    plain = _text(data.get("text/plain", ""))[:budget]
                    kept.append({"output_type": "display_data", "metadata": {}, "data": {"text/plain": plain}})
                if o.get("output_type") == "error":
                    o["traceback"] = [_text(o.get("traceback") or [])[:budget]]
                    kept.append(o)
                kept.append({"output_type": "stream", "name": "stdout", "text": _note(total, lines, limit)})
        if cut:
            cell["outputs"] = kept
            cut_cells += 1
    return cut_cells


_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_]\w*)(?P<annotation>\s*:\s*[A-Za-z_][\w.\[\], |]*)?\s*=\s*"
                         r"(?P<value>.*?)(?P<comment>\s+#.*)?$")


def _literal(value: Any) -> str:
    """A parameter value as Python source (strings in double quotes, as the notebooks write them)."""
    import json

    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def publish_parameters(nb: dict, params: dict[str, Any]) -> None:
    """Make an executed notebook re-executable on its own: its ``parameters`` cell gets the
    run's values and papermill's ``injected-parameters`` cell goes, so ``papermill
    <notebook> <out> -p out_dir DIR`` (or a plain re-execution) rebuilds the same report.
    Values the notebook's metadata names in ``obslib.rerun_blank`` (where to write, the
    job id) stay blank, so a re-run never writes into the folder the notebook was
    published in. Works on the notebook's JSON dict in place."""
    blank = set(((nb.get("metadata") or {}).get("obslib") or {}).get("rerun_blank") or [])
    cells = nb.get("cells", [])
    nb["cells"] = cells = [c for c in cells if INJECTED_TAG not in (c.get("metadata") or {}).get("tags", [])]
    (i,) = tagged(cells, PARAMETERS_TAG)
    out = ["# The values of the run that made this notebook; re-run it with",
           "#   papermill <this notebook> <out.ipynb> -p out_dir <new folder>"]
    for line in _text(cells[i].get("source", "")).split("\n"):
        m = _ASSIGNMENT.match(line)
        if m and m["name"] in params and m["name"] not in blank:
            line = f"{m['name']}{(m['annotation'] or '').rstrip()} = {_literal(params[m['name']])}{m['comment'] or ''}"
        out.append(line)
    cells[i]["source"] = "\n".join(out)


def finalize_executed(nb_path: Path, params: dict[str, Any] | None) -> dict:
    """The executed notebook as published: outputs bounded (``truncate_outputs``) and,
    when ``params`` are given, its parameters made its own (``publish_parameters``);
    rewritten in place (atomic). Returns the notebook (a ``NotebookNode``)."""
    from nbformat.v4 import nbjson  # reads/writes as nbformat does, without a validation pass

    from .storage import atomic_write_text

    nb = nbjson.reads(Path(nb_path).read_text(encoding="utf-8"))
    truncate_outputs(nb)
    if params is not None:
        publish_parameters(nb, params)
    atomic_write_text(nb_path, nbjson.writes(nb) + "\n")
    return nb


__all__ = ["INJECTED_TAG", "MAX_CELL_OUTPUT_CHARS", "MAX_IMAGE_CHARS", "PARAMETERS_TAG", "export_html",
           "finalize_executed", "publish_parameters", "tagged", "truncate_outputs", "warm_up_html_export"]
