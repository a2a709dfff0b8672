"""`pipelines validate --sources` says what `pipelines run` will say about a source it refuses:
a file that is not text in its encoding, a delivery symlinked out of include/ (on any day, not
only the one validate opens), rows that are not CSV. Both call the same checks
(:mod:`pipelines.steps.sources`), so the validate line is the run's failure, word for word."""

from __future__ import annotations

import random

import pytest

from pipelines.cli import main
from pipelines.project.config import load_project
from tests import sample_database

ORDERS = "sample/orders/orders_{ds}.csv"


def random_bytes(path, outside) -> None:
    """A "CSV" of random bytes: the first is never UTF-8 (a continuation byte)."""
    path.write_bytes(b"\x80" + random.Random(26).randbytes(4000))


def symlinked_out(path, outside) -> None:
    """The delivery moved out of include/ and linked back in."""
    target = outside / path.name
    target.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(target)


def extra_fields(path, outside) -> None:
    """A row with two more fields than the header (pandas refuses the file)."""
    lines = path.read_text().splitlines()
    lines[2] += ",extra,fields"
    path.write_text("\n".join(lines) + "\n")


# (case, what is done to the delivery, its day, the start of what both say after "orders: ")
CASES = [
    ("random-bytes", random_bytes, "2024-01-01", "cannot read "),
    ("symlink-out", symlinked_out, "2024-01-01", "source 'sample/orders/orders_2024-01-01.csv' "),
    ("symlink-out-later-day", symlinked_out, "2024-01-03", "source 'sample/orders/orders_2024-0"),
    ("extra-fields", extra_fields, "2024-01-01", "cannot read "),
]


@pytest.mark.parametrize(("case", "spoil", "day", "said"), CASES, ids=[c[0] for c in CASES])
def test_validate_says_what_the_run_says(
    home, airflow_db, tmp_path, capsys, case, spoil, day, said
):
    sample_database.without_database_sources(home / "include")  # validate opens every source
    (tmp_path / "outside").mkdir()
    spoil(home / "include" / ORDERS.format(ds=day), tmp_path / "outside")
    line = load_project(home / "include").dataset("orders").line

    assert main(["validate", "--sources"]) == 1
    validated = capsys.readouterr().out.splitlines()
    assert main(["run", "orders", "--date", day]) == 1
    ran = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("FAIL ")]

    assert len(ran) == 1 and "ingest.extract failed: " in ran[0], ran
    run_says = ran[0].split("ingest.extract failed: ", 1)[1]
    assert run_says.startswith(f"orders: {said}"), run_says
    assert validated == [f"registry.csv:{line}: source: {run_says}"]
