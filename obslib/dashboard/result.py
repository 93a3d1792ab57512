"""``ExportResult``: what one export did, as ``export_bundle`` returns it and the notebook
reads it back (``export_result.json``). Kept apart from ``bundle`` so that reading it
(``report.load_run`` in the kernel) imports nothing of the export (pandas, the builders)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ExportResult:
    sequence: int
    published: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    datasets: dict[str, dict] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)
    artefacts: list[str] = field(default_factory=list)
    # per dataset, its first WARNING_TEXTS warnings in words (the counts are in ``datasets``)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> dict:
        return {"sequence": self.sequence, "published": self.published, "failed": self.failed,
                "datasets": self.datasets, "history_pruned": len(self.pruned)}


__all__ = ["ExportResult"]
