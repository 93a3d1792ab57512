"""The exact sketch text (``x1:<v1>;<v2>;...``, ``Sketch.to_text``) of many sketches at once.

A value's text is ``repr(float)`` with a final ``.0`` dropped. ``repr`` costs ~0.3 us a
value, most of a first run's formatting, so two vectorised ways give the same bytes:

- ``ValueTexts.from_cells``: the event log's own latency text, where it provably equals
  that ``repr``: a plain decimal (``0`` or ``[1-9][0-9]*``, optional ``.digits``, no sign,
  no exponent, no leading zero) with its fraction's trailing zeros (and a bare ``.``)
  removed, at most 15 digits, value 0 or >= 1e-4. Such a decimal round-trips through a
  double (15 <= DBL_DIG), and no other decimal of at most 15 digits reads as the same
  double, so it is the shortest round-trip text ``repr`` prints, in ``repr``'s fixed
  notation (1e-4 <= v < 1e16). Any other value gets ``repr`` itself.
- ``repr_texts``: one ``repr`` of a whole list (a C loop) cut into sketches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PLAIN_RE = r"^(?:0|[1-9][0-9]*)(?:\.[0-9]*)?$"  # the cells whose trimmed text may be the repr
MAX_DIGITS = 15


@dataclass
class ValueTexts:
    """The text of values: value ``i`` is ``buf[pos[i]:pos[i] + size[i]]`` (ASCII)."""

    buf: np.ndarray
    pos: np.ndarray
    size: np.ndarray

    def take(self, idx: np.ndarray) -> ValueTexts:
        return ValueTexts(self.buf, self.pos[idx], self.size[idx])

    @staticmethod
    def concat(parts: list[ValueTexts]) -> ValueTexts:
        shift = np.cumsum([0] + [p.buf.size for p in parts[:-1]])
        return ValueTexts(np.concatenate([p.buf for p in parts]),
                          np.concatenate([p.pos + s for p, s in zip(parts, shift.tolist(), strict=True)]),
                          np.concatenate([p.size for p in parts]))

    @classmethod
    def from_cells(cls, buf: np.ndarray, off: np.ndarray, plain: np.ndarray, values: np.ndarray,
                   has: np.ndarray) -> ValueTexts:
        """Texts of ``values`` (float64; ``has``: the cells with a value) from the log's
        cells ``buf``/``off`` (uint8 bytes, int64 offsets, n + 1): a ``plain`` cell (see the
        module doc) without its fraction's trailing zeros and a bare ``.``, when at most
        ``MAX_DIGITS`` digits remain and the value is 0 or >= 1e-4; ``repr`` otherwise."""
        start, end = off[:-1], off[1:].copy()
        dots = np.concatenate(([0], np.cumsum(buf == ord(".")))) if buf.size else np.zeros(1, dtype=np.int64)
        dot = (dots[end] - dots[start]) > 0
        trail = np.flatnonzero(plain & dot)  # (non-empty cells) trailing zeros stop at the dot at the latest
        while trail.size:
            trail = trail[buf[end[trail] - 1] == ord("0")]
            end[trail] -= 1
        bare = np.zeros(dot.size, dtype=bool)
        cand = np.flatnonzero(plain & dot)
        bare[cand[buf[end[cand] - 1] == ord(".")]] = True
        end[bare] -= 1
        pos, size = start.copy(), end - start
        ok = plain & (size - (dot & ~bare) <= MAX_DIGITS) & ((values >= 1e-4) | (values == 0))
        other = np.flatnonzero(has & ~ok)
        if other.size:  # repr itself (a sign, an exponent, leading zeros, > 15 digits ...)
            extra = [r[:-2] if (r := repr(v)).endswith(".0") else r for v in values[other].tolist()]
            size[other] = [len(x) for x in extra]
            pos[other] = buf.size + np.cumsum(size[other]) - size[other]
            buf = np.concatenate([buf, np.frombuffer("".join(extra).encode("ascii"), dtype=np.uint8)])
        size[~has] = 0
        return cls(buf, pos, size)

    def joined(self, ends: np.ndarray) -> list[str]:
        """The texts of consecutive exact sketches: sketch ``j`` holds the values before
        ``ends[j]`` (and after the previous end), in order."""
        if self.size.size == 0:
            return []
        slot = self.size + 1  # each value and its separator
        out_pos = np.cumsum(slot) - slot
        total = int(slot.sum())
        out = np.full(total, ord(";"), dtype=np.uint8)
        out[out_pos[ends - 1] + self.size[ends - 1]] = 0
        nb = int(self.size.sum())
        first = np.cumsum(self.size) - self.size
        within = np.arange(nb, dtype=np.int64) - np.repeat(first, self.size)
        out[np.repeat(out_pos, self.size) + within] = self.buf[np.repeat(self.pos, self.size) + within]
        s = out.tobytes().decode("ascii")
        return ("x1:" + s.replace("\x00", "\x00x1:")).split("\x00")[:-1]


def repr_texts(v: np.ndarray, ends: np.ndarray) -> list[str]:
    """The texts of consecutive exact sketches of the sorted values ``v`` (sketch ``j``
    ends before ``ends[j]``): one ``repr`` of a list with a NaN after each sketch, cut
    there (no value is NaN)."""
    s = repr(np.insert(v, ends, np.nan).tolist())
    s = (s[1:-1] + ", ").replace(".0, ", ", ").replace(", nan, ", "\x00x1:").replace(", ", ";")
    return ("x1:" + s).split("\x00")[:-1]

