"""The deadline callback's path before the package was laid out by layer: DAGs serialized then
call ``pipelines.freshness.log_late``."""

from pipelines.wiring.freshness import log_late  # noqa: F401
