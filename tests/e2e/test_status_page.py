"""The ``pipelines status --html`` page in a real headless Chromium (Debian's ``chromium``): the
DOM after its script ran holds the rows, the late marks and the gaps, and a screenshot is taken.

Without chromium on PATH the test is skipped, with the reason, on a developer's machine; in CI
(``CI`` set) it fails instead: ``.ci/run`` installs the package when it is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from pipelines.cli import main
from tests.integration.test_status_command import NOW, built, sample  # noqa: F401 - fixtures

CHROMIUM = shutil.which("chromium")


@pytest.fixture
def chromium(tmp_path):
    """``chromium(page, *args)``: the standard output of a headless Chromium on ``page``."""
    if CHROMIUM is None:
        reason = "chromium is not on PATH (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; in CI it must be there: .ci/run installs it")
        pytest.skip(f"{reason}; CI fails here instead of skipping")

    def run(page: Path, *args: str) -> str:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,800"]
            + [f"--user-data-dir={tmp_path / 'chromium'}", *args, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    return run


def test_the_page_renders_its_rows_in_chromium(sample, chromium, tmp_path, capsys):  # noqa: F811
    page = tmp_path / "status.html"
    assert main(["status", "--now", NOW, "--html", str(page)]) == 0
    dom = chromium(page, "--dump-dom")
    assert 'data-rendered="9"' in dom  # the script ran to its end
    found = re.findall(r'<tr(?: class="([^"]*)")? id="row-(\w+)">', dom)
    rows = {name: cls for cls, name in found}
    assert list(rows)[:4] == ["orders", "customers", "events", "payments"] and len(rows) == 9
    late = {name for name, cls in rows.items() if cls == "late"}
    assert late == {"customers", "customer_features", "train_refund_model", "customers_by_country"}
    customers = dom.split('id="row-customers"', 1)[1].split("</tr>", 1)[0]
    assert '2d behind <span class="late-mark">late</span>' in customers
    orders = dom.split('id="row-orders"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="gap">2024-01-03</td>' in orders
    chart = dom.split('id="chart-orders"', 1)[1].split("</figure>", 1)[0]
    assert "<title>gap: 2024-01-03</title>" in chart
    assert chart.count('class="bar"') == 3 and chart.count('class="quarantined"') == 2
    assert 'id="chart-customers"' in dom and "late: 2024-01-03..2024-01-04" in dom
    shot = tmp_path / "status.png"
    chromium(page, f"--screenshot={shot}")
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24]) == (1200, 800)
