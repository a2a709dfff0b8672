"""The one exception hierarchy of the package.

Errors a user can fix carry the place they come from (file, line, column) so that the CLI can print
them without a traceback; anything else reaching the top is a bug and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a config file, at a place a user can find.

    :param file: file name as the user knows it (``registry.csv``)
    :param line: physical line (1 = header) or ``None`` for YAML entries
    :param column: column or entry name the problem is about
    :param message: what is wrong, in words
    """

    file: str
    line: int | None
    column: str
    message: str

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


class LakeError(PipelinesError):
    """The lake cannot be read or written as asked (missing partition, bad path, conflict)."""


class CommitConflict(LakeError):
    """Another writer committed a new version of the table first; the caller retries."""


class SourceError(PipelinesError):
    """The source of a dataset cannot be read."""


class SchemaDriftError(PipelinesError):
    """The source's columns changed in a way the dataset's on_schema_change policy refuses."""


class QualityCheckFailed(PipelinesError):
    """A data quality check failed; downstream tasks must not run."""
