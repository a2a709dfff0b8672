"""Which day partitions of an input a workflow's run for day D reads: its window, both ways.

``1d`` is day D, ``Nd`` the N days ``[D-N+1, D]``, ``all`` every day up to and including D. A
window never looks past D, so a day's output does not depend on later days or on the order days
ran in. An input kept as snapshots (a full dataset's cleaned table) has no day partitions to
span: ``1d`` is the snapshot of D and ``all`` the newest snapshot at or before D.

A :class:`Window` answers both directions of that mapping (as Dagster's
``TimeWindowPartitionMapping`` does): :meth:`Window.reads` the days D's window reads,
:meth:`Window.reached_by` the days whose windows hold a day C (the runs a change to C reaches).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
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
        match = WINDOW_RE.fullmatch(str(text)) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"window {text!r} must be {WINDOW_RULE}")
        return cls(int(match["days"]) if match["days"] else None)

    def __str__(self) -> str:
        return "all" if self.days is None else f"{self.days}d"

    def reads(self, ds: str | dt.date, *, snapshots: bool = False) -> Days:
        """The days the window of day ``ds`` reads (upstream): ``[D-N+1, D]``, or every day up
        to D for ``all``.

        :param snapshots: the input is kept as snapshots: D's own (for ``all``, when D has none,
            :meth:`select` falls back to the newest before it)
        """
        day = parse_date(ds)
        if snapshots:
            return Days(format_date(day), format_date(day))
        first = None if self.days is None else format_date(day - dt.timedelta(days=self.days - 1))
        return Days(first, format_date(day))

    def reached_by(self, ds: str | dt.date, *, snapshots: bool = False) -> Days:
        """The days whose windows hold day ``ds`` (downstream), the inverse of :meth:`reads`:
        ``[C, C+N-1]``, or every day from C on for ``all``.

        :param snapshots: the input is kept as snapshots: C's own day only (each later day has a
            snapshot of its own)
        """
        day = parse_date(ds)
        if snapshots:
            return Days(format_date(day), format_date(day))
        last = None if self.days is None else format_date(day + dt.timedelta(days=self.days - 1))
        return Days(format_date(day), last)

    def needs(self, ds: str | dt.date, start: str | dt.date | None, *, snapshots: bool = False):
        """The days that must have landed before day ``ds``'s window is whole: those it reads
        from ``start`` on (a day before its producer's start_date is not missing; ``all``
        reaches back to ``start``), oldest first. A snapshot input needs D's own snapshot.

        :param start: the producer's first day (None: D alone can be asked of ``all``)
        """
        days = self.reads(ds, snapshots=snapshots)
        first = days.first
        if start is not None:
            start = format_date(parse_date(start))
            first = start if first is None else max(first, start)
        return list(Days(first or days.last, days.last)) if (first or "") <= str(days.last) else []

    def days_of(self, ds: str | dt.date) -> tuple[str, str | None]:
        """``(last, first)``: the newest and the oldest day inside (first None: no bound)."""
        days = self.reads(ds)
        return str(days.last), days.first

    def select(self, partitions: Iterable[str], ds: str | dt.date, *, snapshots: bool) -> list[str]:
        """The partitions the window holds for day ``ds``, oldest first.

        :param snapshots: the partitions are whole snapshots (a full dataset's cleaned table):
            ``1d`` is the snapshot of D, ``all`` the newest at or before D
        """
        inside = self.reads(ds).of(partitions)
        if snapshots:
            return inside[-1:] if self.days is None else self.reads(ds, snapshots=True).of(inside)
        return inside


def ranges(days: Iterable[str]) -> list[tuple[str, str]]:
    """Consecutive days as ``(first, last)`` ranges, oldest first."""
    found: list[tuple[str, str]] = []
    for day in sorted(set(days)):
        if found and format_date(parse_date(found[-1][1]) + dt.timedelta(days=1)) == day:
            found[-1] = (found[-1][0], day)
        else:
            found.append((day, day))
    return found


def range_text(first: str, last: str) -> str:
    """``2024-01-03`` or ``2024-01-03..2024-01-05``."""
    return first if first == last else f"{first}..{last}"


def ranges_text(days: Iterable[str], shown: int = 3) -> str:
    """``2024-01-01, 2024-01-03..2024-01-05`` (the first ``shown`` ranges, then how many more)."""
    found = ranges(days)
    text = ", ".join(range_text(*r) for r in found[:shown])
    return text + (f" (+{len(found) - shown} more)" if len(found) > shown else "")


@dataclass(frozen=True)
class Days:
    """The days ``[first, last]`` (``YYYY-MM-DD``), both included; None: no bound that side."""

    first: str | None
    last: str | None

    def __contains__(self, day: object) -> bool:
        return (self.first is None or day >= self.first) and (self.last is None or day <= self.last)

    @property
    def bounded(self) -> bool:
        return self.first is not None and self.last is not None

    def of(self, days: Iterable[str]) -> list[str]:
        """The days of ``days`` inside, oldest first."""
        return sorted(d for d in days if d in self)

    def __iter__(self) -> Iterator[str]:
        """Every day inside, oldest first.

        :raises ValueError: a range without a bound has no end to count to
        """
        if self.first is None or self.last is None:
            raise ValueError(f"{self} has no bound to count from or to")
        first, last = parse_date(self.first), parse_date(self.last)
        return (format_date(first + dt.timedelta(days=n)) for n in range((last - first).days + 1))

    def __str__(self) -> str:
        return f"[{self.first or '...'}, {self.last or '...'}]"
