"""`pipelines infer`'s pieces that need no file: the clean name suggested for an awkward header,
and the kind a column has over several deliveries."""

from __future__ import annotations

import pytest

from pipelines.inspection.infer import clean_name, widened
from pipelines.lake.frames import REFUSED
from pipelines.project.registry_values import COLUMN_RE


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Water flow [l/s]", "water_flow_l_s"),
        ("Amount (EUR)", "amount_eur"),
        ("  Größe; in m ", "größe_in_m"),
        ("2024 sales", "column_2024_sales"),
        ("___", "column"),
        ("a=b,c{d}", "a_b_c_d"),
    ],
)
def test_a_clean_name_is_valid_and_storable(header, name):
    assert clean_name(header) == name
    assert COLUMN_RE.match(name) and not REFUSED.search(name) and not name.startswith("_")


@pytest.mark.parametrize(
    ("kinds", "wider"),
    [
        (("int", "float"), "float"),
        (("float", "int"), "float"),
        (("date", "timestamp"), "timestamp"),
        (("null", "bool"), "bool"),
        (("bool", "null"), "bool"),
        (("int", "string"), "string"),  # text holds both, in either order
        (("string", "int"), "string"),
        (("bool", "date"), "string"),
    ],
)
def test_a_kind_over_deliveries_fits_every_one(kinds, wider):
    assert widened(*kinds) == wider
