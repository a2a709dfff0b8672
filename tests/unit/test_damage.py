"""A table's damaged files found (lake/damage.py) and set aside, the table put back at its last
good version (lake/heal.py): on small Delta tables in a temp folder."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipelines.exceptions import CorruptFile, OutsideNamespace
from pipelines.lake import damage, delta, heal
from pipelines.lake.storage import Storage


def days_table(root: Path, days: int = 3) -> Path:
    """A table partitioned by ``ds``, one day appended per version (version = days - 1)."""
    path = root / "ns" / "cleaned" / "t"
    for d in range(days):
        rows = pa.table({"k": [f"{d}-{i}" for i in range(5)], "ds": [f"2024-01-0{d + 1}"] * 5})
        write_deltalake(str(path), rows, mode="append", partition_by=["ds"])
    return path


def rows_of(path: Path, version: int | None = None) -> list[str]:
    return sorted(DeltaTable(str(path), version=version).to_pyarrow_table()["k"].to_pylist())


def entry(path: Path, version: int) -> Path:
    return path / "_delta_log" / f"{version:020d}.json"


@pytest.fixture
def storage(tmp_path) -> Storage:
    return Storage(str(tmp_path), conn_id="aws_default", writable=str(tmp_path / "ns"))


def test_a_sound_table_has_no_damage(tmp_path, storage):
    path = days_table(tmp_path)
    assert heal.find(str(path), storage) == []


@pytest.mark.parametrize("mark", ["\u2028", "\u0085", "\u2029"], ids=repr)
def test_a_text_value_holding_a_line_mark_other_than_newline_is_no_damage(tmp_path, storage, mark):
    """The log's statistics hold a column's min and max text: a value holding a character that
    str.splitlines splits at stays inside one JSON line of the entry."""
    path = tmp_path / "ns" / "cleaned" / "t"
    rows = pa.table({"k": [f"a{mark}b", "c"], "ds": ["2024-01-01"] * 2})
    write_deltalake(str(path), rows, mode="append", partition_by=["ds"])
    assert mark in entry(path, 0).read_text()  # in the stats: the case the split must survive
    assert damage.log_damage(str(path), storage) == []
    assert heal.find(str(path), storage) == []
    assert delta._added(str(path), storage, 0)  # the commit's files, found


def test_a_log_entry_cut_short_is_named_by_every_open(tmp_path, storage):
    path = days_table(tmp_path)
    newest = entry(path, 2)
    newest.write_bytes(newest.read_bytes()[:-1])
    [found] = damage.log_damage(str(path), storage)
    assert (found.path, found.kind, found.version) == (str(newest), "commit", 2)
    assert "not JSON" in found.why
    with pytest.raises(CorruptFile) as caught:
        delta.open_table(str(path), storage)
    assert str(newest) in str(caught.value) and "\n" not in str(caught.value)


def test_an_emptied_newest_entry_is_damage_not_a_commit_of_nothing(tmp_path, storage):
    path = days_table(tmp_path)
    entry(path, 2).write_bytes(b"")
    assert len(DeltaTable(str(path)).file_uris()) == 2  # delta-rs alone: day 3 silently gone
    with pytest.raises(CorruptFile, match="empty"):
        delta.open_table(str(path), storage)
    assert [d.version for d in damage.log_damage(str(path), storage)] == [2]


def test_a_data_file_of_another_size_is_named(tmp_path, storage):
    path = days_table(tmp_path)
    target = Path(DeltaTable(str(path)).file_uris()[0].removeprefix("file://"))
    data = target.read_bytes()
    target.write_bytes(data[:100] + data[101:])
    [found] = damage.data_damage(DeltaTable(str(path)), storage)
    assert found.path == str(target) and f"its log entry says {len(data)}" in found.why


def flipped(target: Path, at: int) -> bytes:
    """Change the byte at ``at`` of the file (its size unchanged); the bytes it held."""
    data = target.read_bytes()
    target.write_bytes(data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :])
    return data


def newest_file(path: Path) -> Path:
    table = DeltaTable(str(path))
    return Path([u for u in table.file_uris() if "2024-01-03" in u][0].removeprefix("file://"))


def test_a_data_file_with_a_byte_changed_in_its_footer_is_healed_by_a_footer_read(
    tmp_path, storage
):
    """Its size is the one its log says: only a read finds it. Every repair reads the footers
    (small); the sizes alone (status, readers) do not see it."""
    path = days_table(tmp_path)
    good = rows_of(path, 1)
    target = newest_file(path)
    data = target.read_bytes()
    footer = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    flipped(target, footer)
    assert damage.data_damage(DeltaTable(str(path)), storage) == []
    [found] = damage.data_damage(DeltaTable(str(path)), storage, read=damage.FOOTER)
    assert found.path == str(target) and found.why.startswith("does not read as Parquet")
    aside = heal.aside_folder(str(tmp_path / "ns"))
    healed = heal.heal(str(path), storage, str(tmp_path / "ns"), aside)
    assert healed.lost_from == 2 and healed.restored == 1
    assert rows_of(path) == good and not target.exists()


def test_a_data_file_with_a_byte_changed_inside_a_page_is_found_by_a_whole_read(tmp_path, storage):
    """The footer reads; the page does not: found only when the file is read whole (a repair
    of one table)."""
    path = days_table(tmp_path)
    good = rows_of(path, 1)
    target = newest_file(path)
    flipped(target, 4)  # the first page's header, just after the magic bytes
    with pytest.raises(Exception):  # noqa: B017, PT011 - delta-rs's error names no file
        rows_of(path)
    ns = str(tmp_path / "ns")
    assert damage.data_damage(DeltaTable(str(path)), storage, read=damage.FOOTER) == []
    assert heal.heal(str(path), storage, ns, heal.aside_folder(ns)) is None
    healed = heal.heal(str(path), storage, ns, heal.aside_folder(ns), whole=True)
    assert [d.path for d in healed.damage] == [str(target)]
    assert healed.lost_from == 2 and healed.restored == 1
    assert rows_of(path) == good and not target.exists()


def test_a_checkpoint_pointer_or_checkpoint_damaged_is_named(tmp_path, storage):
    path = days_table(tmp_path)
    DeltaTable(str(path)).create_checkpoint()
    pointer = path / "_delta_log" / "_last_checkpoint"
    checkpoint = path / "_delta_log" / f"{2:020d}.checkpoint.parquet"
    checkpoint.write_bytes(checkpoint.read_bytes()[:-1])
    [found] = damage.checkpoint_damage(str(path), storage)
    assert found.path == str(checkpoint) and found.kind == "checkpoint"
    pointer.write_text("{")
    [found] = damage.checkpoint_damage(str(path), storage)
    assert found.path == str(pointer)


def test_heal_sets_a_damaged_entry_aside_and_keeps_versions_counting(tmp_path, storage):
    path = days_table(tmp_path)
    newest = entry(path, 2)
    newest.write_bytes(newest.read_bytes()[:-1])
    damaged = newest.read_bytes()
    aside = heal.aside_folder(str(tmp_path / "ns"))
    healed = heal.heal(str(path), storage, str(tmp_path / "ns"), aside)
    assert healed.lost_from == 2 and healed.restored == 1 and healed.version == 2
    [(source, kept)] = healed.moved
    assert source == str(newest) and Path(kept).read_bytes() == damaged
    assert kept.startswith(aside + "/cleaned/t/_delta_log/")
    assert rows_of(path) == rows_of(path, 1)  # the last good version's rows, at version 2
    assert heal.heal(str(path), storage, str(tmp_path / "ns"), aside) is None


def test_heal_restores_the_version_before_a_damaged_data_file(tmp_path, storage):
    path = days_table(tmp_path)
    good = rows_of(path, 1)
    table = DeltaTable(str(path))
    added = [u for u in table.file_uris() if "2024-01-03" in u][0].removeprefix("file://")
    Path(added).write_bytes(b"")
    aside = heal.aside_folder(str(tmp_path / "ns"))
    healed = heal.heal(str(path), storage, str(tmp_path / "ns"), aside)
    assert healed.lost_from == 2 and healed.restored == 1 and healed.version == 3
    assert rows_of(path) == good and not Path(added).exists()
    assert Path(healed.moved[0][1]).read_bytes() == b""  # kept, as it was


@pytest.mark.parametrize("damaged", ["log entry", "data file"])
def test_heal_refuses_a_table_holding_a_link_before_moving_anything(tmp_path, storage, damaged):
    # a repair writes the table (restore, no-row commits) like any writer: the same guard, so a
    # link planted in the table (here a partition folder into another namespace) is refused
    path = days_table(tmp_path)
    other = tmp_path / "serving" / "cleaned" / "t" / "ds=2024-01-09"
    other.mkdir(parents=True)
    (path / "ds=2024-01-09").symlink_to(other)
    if damaged == "log entry":
        cut = entry(path, 2)
    else:
        uris = DeltaTable(str(path)).file_uris()
        cut = Path([u for u in uris if "01-03" in u][0].removeprefix("file://"))
    cut.write_bytes(cut.read_bytes()[:-1])
    before = sorted(p.name for p in (path / "_delta_log").iterdir())
    aside = heal.aside_folder(str(tmp_path / "ns"))
    with pytest.raises(OutsideNamespace, match="symbolic link"):
        heal.heal(str(path), storage, str(tmp_path / "ns"), aside)
    assert sorted(p.name for p in (path / "_delta_log").iterdir()) == before
    assert cut.exists() and not Path(aside).exists()  # nothing set aside, nothing committed


def test_salvage_recommits_the_rows_of_an_append_set_aside(tmp_path, storage):
    path = days_table(tmp_path)
    everything = rows_of(path)
    newest = entry(path, 2)
    newest.write_bytes(newest.read_bytes()[:-1])
    aside = heal.aside_folder(str(tmp_path / "ns"))
    healed = heal.heal(str(path), storage, str(tmp_path / "ns"), aside)
    assert heal.salvage(healed, storage) == 5
    assert rows_of(path) == everything


def test_a_read_names_a_file_cut_short_and_leaves_a_missing_one_to_its_retry(tmp_path, storage):
    from pipelines.lake.tables import Table

    path = days_table(tmp_path)
    table = Table(storage, str(path), "ds")
    files = [u.removeprefix("file://") for u in DeltaTable(str(path)).file_uris()]
    cut = Path(files[0])
    cut.write_bytes(cut.read_bytes()[:-1])
    with pytest.raises(CorruptFile) as caught:
        table.read()
    assert caught.value.path == str(cut) and "\n" not in str(caught.value)
    Path(files[0]).unlink()  # as a concurrent commit and vacuum would: read the new version
    with pytest.raises(FileNotFoundError):
        table.read()


def test_a_read_of_a_file_with_a_byte_changed_points_to_the_repair_of_its_table(tmp_path, storage):
    """Its size is right, so the read cannot name the file (the sizes say nothing): the line
    names the table and the repair that reads each of its files."""
    from pipelines.exceptions import LakeError
    from pipelines.lake.tables import Table

    path = days_table(tmp_path)
    flipped(newest_file(path), 4)
    with pytest.raises(LakeError) as caught:
        Table(storage, str(path), "ds").read()
    said = str(caught.value)
    assert said.startswith(f"{path}: a data file does not read (") and "\n" not in said
    assert "): `pipelines repair t` reads each of its files, sets the damaged one aside" in said
