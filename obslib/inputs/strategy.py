"""One canonical key per strategy (DESIGN.md "Strategy ids").

The research repository names one strategy several ways: the state archive has folders
``day_orb_5m``, ``day_orb_5m.DayORB5m`` and ``strategies.day_orb_5m.DayORB5m``; the router
telemetry says ``day_orb_5m_v1``. Every dataset, payload section and plot keys a strategy
by ``strategy_id(raw)`` and keeps the raw name beside it (``strategy_source``).

The mapping, in order:

1. surrounding blanks dropped; a leading ``strategies.`` package prefix dropped;
2. a trailing class name dropped: the last dotted part when it starts with an upper-case
   letter (``day_orb_5m.DayORB5m`` -> ``day_orb_5m``);
3. the module name kept: the last remaining dotted part (``fx.day_orb_5m`` -> ``day_orb_5m``);
4. a trailing version tag ``_v<digits>`` dropped (``day_orb_5m_v1`` -> ``day_orb_5m``).

A name the rules would reduce to nothing is kept as given. On the real data:

==================================================================  ===============================
raw name                                                            ``strategy_id``
==================================================================  ===============================
``day_orb_5m``, ``day_orb_5m.DayORB5m``,                            ``day_orb_5m``
``strategies.day_orb_5m.DayORB5m``, ``day_orb_5m_v1``
``mean_reversion.MeanReversionStrategy``,                           ``mean_reversion``
``strategies.mean_reversion.MeanReversionStrategy``
``strategies.session_momentum_continuation.SessionMomentumContinuation``  ``session_momentum_continuation``
``strategies.tokyo_micro_mean_reversion.TokyoMicroMeanReversion``,  ``tokyo_micro_mean_reversion``
``tokyo_micro_mean_reversion_v0``
==================================================================  ===============================

Where a section holds one value per strategy (the telemetry's ``execution_health``), two
raw names with the same id would overwrite each other: ``strategy_keys`` then keeps those
raw names as their keys (two versions live at once are two things to look at).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

PACKAGE_PREFIX = "strategies."
_VERSION_TAG = re.compile(r"_v\d+$")


def strategy_id(raw: str) -> str:
    """The canonical strategy key of a raw strategy name (module doc), e.g.
    ``strategy_id("strategies.day_orb_5m.DayORB5m") == "day_orb_5m"``."""
    name = str(raw).strip()
    if name.startswith(PACKAGE_PREFIX):
        name = name[len(PACKAGE_PREFIX):]
    parts = [p for p in name.split(".") if p]
    if len(parts) > 1 and parts[-1][:1].isupper():
        parts = parts[:-1]
    module = parts[-1] if parts else ""
    module = _VERSION_TAG.sub("", module)
    return module or str(raw)


def strategy_keys(raws: Iterable[str]) -> dict[str, str]:
    """``{raw: key}`` for a section with one entry per raw name: the canonical id, except
    that raw names sharing an id keep their raw name as the key (module doc)."""
    raws = list(dict.fromkeys(raws))
    counts = Counter(strategy_id(r) for r in raws)
    return {r: strategy_id(r) if counts[strategy_id(r)] == 1 else r for r in raws}


__all__ = ["strategy_id", "strategy_keys"]
