"""The one exception hierarchy of the package.

Errors a user can fix carry the place they come from (file, line, column) so that the CLI can print
them without a traceback; anything else reaching the top is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MESSAGE_CHARS = 1000  # a problem's message is cut here: a value it quotes may be any size


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a config file, at a place a user can find.

    :param file: file name as the user knows it (``registry.csv``)
    :param line: physical line (1 = header) or ``None`` for YAML entries
    :param column: column or entry name the problem is about
    :param message: what is wrong, in words
    :param whole_file: the file as a whole cannot be read (not one entry of it)

    A message longer than :data:`MESSAGE_CHARS` is cut there, saying how much was cut: the
    values it quotes come from the user's file, and one line must stay one readable line.
    """

    file: str
    line: int | None
    column: str
    message: str
    whole_file: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        cut = len(self.message) - MESSAGE_CHARS
        if cut > 0:
            said = f"{self.message[:MESSAGE_CHARS]}... ({cut:,} character{'s' * (cut > 1)} cut)"
            object.__setattr__(self, "message", said)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.column}: {self.message}"


class PipelinesError(Exception):
    """Base class: a user-facing error, printed without a traceback by the CLI."""


class ConfigError(PipelinesError):
    """One or more problems in registry.csv, aggregates.yaml or cookbooks.yaml."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0))
        super().__init__("\n".join(str(p) for p in self.problems))


class RegistryError(ConfigError):
    """Problems in registry.csv."""


class UnknownNameError(PipelinesError):
    """A name that is not a dataset, aggregate or cookbook of the project, or not of the kind
    asked for (an aggregate where a dataset is wanted)."""


class DateError(PipelinesError):
    """A date that cannot be run or read as asked: not a date, before the dataset's start_date,
    off its schedule, in the future, or an interval that has not ended yet."""


class LakeError(PipelinesError):
    """The lake cannot be read or written as asked (missing partition, bad path, conflict)."""


class OutsideNamespace(LakeError):
    """A write or delete outside the namespace's own prefix, or through a symbolic link below the
    lake root (which could lead outside it): never retried."""


class CorruptFile(LakeError):
    """A file of a table (a Delta log entry, a checkpoint, a data file) is damaged: cut short,
    empty, or not what its log says it is. The message names the file; ``pipelines repair``
    sets it aside and restores the table.

    :param path: the damaged file
    :param table: the root of the table it belongs to
    """

    def __init__(self, message: str, *, path: str = "", table: str = ""):
        super().__init__(message)
        self.path = path
        self.table = table


class CommitConflict(LakeError):
    """Another writer committed a new version of the table first; the caller retries."""


class SourceError(PipelinesError):
    """The source of a dataset cannot be read (perhaps for now: Airflow retries)."""


class SourceRefused(SourceError):
    """The source refuses what was asked, and will again: no such connection, a refused login,
    an unknown table or column. No retry."""


class SchemaDriftError(PipelinesError):
    """The source's columns changed in a way the dataset's on_schema_change policy refuses."""


class QualityCheckFailed(PipelinesError):
    """A data quality check failed; downstream tasks must not run."""


class WorkflowError(PipelinesError):
    """A workflow function failed, or returned something that cannot be kept; nothing is
    written."""


class NamespaceError(PipelinesError):
    """The namespace cannot be resolved or used as asked: a name that normalises to nothing, two
    branches sharing one name, a namespace that may not be dropped, a missing upstream."""


class AirflowError(PipelinesError):
    """A real Airflow cannot do what a client asked: it answered with an error, or not at all."""


class AirflowUnreachable(AirflowError):
    """Nothing answers at the Airflow URL (the message names it)."""


class LoginRefused(AirflowError):
    """Airflow refused the user name and password, or the token."""


class DagPaused(AirflowError):
    """The DAG is paused in Airflow: a run of it would be queued and never start."""


class RunFailed(AirflowError):
    """A run ended failed: the message names the task and ends with the last lines of its log."""


class RunTimeout(AirflowError):
    """The wait for a run ran out; the run goes on (the message names its id and web page)."""
