"""Which day partitions of an input a workflow's run for day D reads: its window.

``1d`` is day D, ``Nd`` the N days ``[D-N+1, D]``, ``all`` every day up to and including D. A
window never looks past D, so a day's output does not depend on later days or on the order days
ran in. An input kept as snapshots (a full dataset's cleaned table) has no day partitions to
span: ``1d`` is the snapshot of D and ``all`` the newest snapshot at or before D.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.common.partitions import format_date, parse_date

WINDOW_RE = re.compile(r"^(?:(?P<days>[1-9][0-9]{0,3})d|all)$")
WINDOW_RULE = "1d (day D), Nd (the N days up to D, N up to 9999) or all (every day up to D)"


@dataclass(frozen=True)
class Window:
    """How far back from day D an input reaches.

    :param days: N of ``Nd``; None for ``all``
    """

    days: int | None = 1

    @classmethod
    def parse(cls, text: object) -> Window:
        """``"1d"``, ``"3d"``, ``"all"`` (None: the default, ``1d``).

        :raises ValueError: anything else, saying what a window may be
        """
        if text is None:
            return cls()
        match = WINDOW_RE.match(str(text)) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"window {text!r} must be {WINDOW_RULE}")
        return cls(int(match["days"]) if match["days"] else None)

    def __str__(self) -> str:
        return "all" if self.days is None else f"{self.days}d"

    def days_of(self, ds: str | dt.date) -> tuple[str, str | None]:
        """``(last, first)``: the newest and the oldest day inside (first None: no bound)."""
        day = parse_date(ds)
        first = None if self.days is None else format_date(day - dt.timedelta(days=self.days - 1))
        return format_date(day), first

    def select(self, partitions: Iterable[str], ds: str | dt.date, *, snapshots: bool) -> list[str]:
        """The partitions the window holds for day ``ds``, oldest first.

        :param snapshots: the partitions are whole snapshots (a full dataset's cleaned table):
            ``1d`` is the snapshot of D, ``all`` the newest at or before D
        """
        last, first = self.days_of(ds)
        inside = sorted(p for p in partitions if p <= last and (first is None or p >= first))
        if snapshots:
            return inside[-1:] if self.days is None else [p for p in inside if p == last]
        return inside
