"""``pipelines status --html``: the status table as one self-contained page, with a chart of
rows per day for every row, written atomically.

The page needs no network: its style and script are inline, and its data is the same rows as
``pipelines status --json`` (plus the table's cells), embedded as JSON. The script builds the
table and the charts from it (inline SVG, one bar a day: rows kept, rows quarantined on top, a
mark under a day whose checks, or whose workflow run, failed; a workflow's stale day in its own
colour, its reason in the bar's tip; a band over each gap, and over the days due but not landed,
red when the row is late). Names and messages reach the page through ``textContent`` only, never
as markup.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

from pipelines.inspection.status import COLUMNS, RUN_COLUMN, Status

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 20px; margin: 0 0 4px; }
p.where { color: #57606a; margin: 0 0 16px; }
table { border-collapse: collapse; margin-bottom: 24px; }
th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid #d0d7de; }
td { white-space: nowrap; }
th { background: #f6f8fa; font-size: 12px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.late td { background: #fff1f0; }
.late-mark { color: #fff; background: #cf222e; border-radius: 3px; padding: 0 5px; }
.late-mark, .bad { font-weight: 600; }
.bad { color: #cf222e; }
.gap { color: #9a6700; }
.stale { color: #8250df; }
td.stale { max-width: 32em; overflow: hidden; text-overflow: ellipsis; }
#charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 12px; }
figure { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 8px; }
figure.late { border-color: #cf222e; }
figcaption { font-size: 12px; display: flex; justify-content: space-between; }
svg text { font-size: 9px; fill: #57606a; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
"""

SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("status-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var W = 340, H = 56, TOP = 10, DAY = 86400000;

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function svg(tag, attrs, title) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (title) {
      var tip = document.createElementNS(SVG, "title");
      tip.textContent = title;
      node.appendChild(tip);
    }
    return node;
  }
  function day(ds) { var p = ds.split("-"); return Date.UTC(+p[0], p[1] - 1, +p[2]) / DAY; }
  function iso(n) { return new Date(n * DAY).toISOString().slice(0, 10); }

  data.rows.forEach(function (row) {
    row.days = row.days.map(function (d) {
      return { ds: d[0], rows: d[1], quarantined: d[2], failed: d[3] === 1, stale: d[4] === 1 };
    });
  });
  document.getElementById("where").textContent =
    "namespace " + data.namespace + " \u00b7 lake " + data.lake + " \u00b7 as of " + data.now;
  var head = document.querySelector("#status thead");
  var body = document.querySelector("#status tbody");
  var tr = el("tr");
  data.columns.forEach(function (c) { tr.appendChild(el("th", c)); });
  head.appendChild(tr);
  data.rows.forEach(function (row) {
    var line = el("tr", undefined, row.freshness.late ? "late" : "");
    line.id = "row-" + row.name;
    row.cells.forEach(function (cell, i) {
      var column = data.columns[i], td = el("td");
      if (column === "ROWS" || column === "QUARANTINED") td.className = "num";
      if (column === "FRESHNESS" && row.freshness.late) {
        td.appendChild(document.createTextNode(cell.replace(/, late$/, "") + " "));
        td.appendChild(el("span", "late", "late-mark"));
      } else {
        td.textContent = cell;
      }
      var damaged = (row.damaged || []).length > 0;
      if (column === "CHECKS" && ((row.checks || "").indexOf("failed") === 0 || damaged)) {
        td.className = "bad";
      }
      if (column === "CHECKS" && (row.checks || damaged)) {
        td.title = damaged ? row.damaged.join("\n") : row.checks;
      }
      if (column === "GAPS" && row.gaps.length) td.className = "gap";
      if (column === "STALE" && row.stale.days.length) {
        td.className = "stale";
        td.title = row.stale.days.map(function (ds) {
          return ds + ": " + row.stale.reasons[ds];
        }).join("\n");
      }
      line.appendChild(td);
    });
    body.appendChild(line);
  });

  var charts = document.getElementById("charts");
  data.rows.forEach(function (row) { charts.appendChild(chart(row)); });

  function chart(row) {
    var fresh = row.freshness, first = day(row.start), last = first;
    row.days.forEach(function (d) { last = Math.max(last, day(d.ds)); });
    if (fresh.expected) last = Math.max(last, day(fresh.expected));
    var n = last - first + 1, bw = W / n, most = 1;
    row.days.forEach(function (d) { most = Math.max(most, d.rows); });
    var fig = el("figure", undefined, fresh.late ? "late" : "");
    fig.id = "chart-" + row.name;
    var cap = el("figcaption");
    cap.appendChild(el("b", row.name + " (" + row.kind + ")"));
    cap.appendChild(el("span", fresh.text, fresh.late ? "bad" : ""));
    fig.appendChild(cap);
    var high = H + TOP + 14;
    var box = svg("svg", { width: W, height: high, viewBox: "0 0 " + W + " " + high });
    box.appendChild(svg("line", { x1: 0, y1: TOP + H, x2: W, y2: TOP + H, stroke: "#d0d7de" }));
    function band(from, to, fill, title, cls) {
      var x = (from - first) * bw;
      box.appendChild(svg("rect", { x: x, y: TOP, width: Math.max((to - from + 1) * bw, 2),
        height: H, fill: fill, "class": cls }, title));
    }
    row.gaps.forEach(function (g) {
      var shown = g[0] === g[1] ? g[0] : g[0] + ".." + g[1];
      band(day(g[0]), day(g[1]), "#ffcecb", "gap: " + shown, "gap");
    });
    if (fresh.expected && (!fresh.newest || fresh.newest < fresh.expected)) {
      var from = fresh.newest ? day(fresh.newest) + 1 : first;
      band(from, day(fresh.expected), fresh.late ? "#ff8182" : "#eaeef2",
        (fresh.late ? "late: " : "not landed: ") + iso(from) + ".." + fresh.expected, "due");
    }
    row.days.forEach(function (d) {
      var x = (day(d.ds) - first) * bw, w = Math.max(bw - (bw > 3 ? 1 : 0), 1);
      var kept = d.rows - d.quarantined, hk = kept / most * H, hq = d.quarantined / most * H;
      var tip = d.ds + ": " + d.rows + " rows"
        + (d.quarantined ? ", " + d.quarantined + " quarantined" : "")
        + (d.failed ? (row.kind === "workflow" ? ", run failed" : ", checks failed") : "")
        + (d.stale ? ", stale: " + row.stale.reasons[d.ds] : "");
      function bar(y, h, fill, cls) {
        var attrs = { x: x, y: y, width: w, height: h, fill: fill, "class": cls };
        box.appendChild(svg("rect", attrs, tip));
      }
      if (d.stale) bar(TOP + H - hk, hk, "#8250df", "stale");
      else bar(TOP + H - hk, hk, "#0969da", "bar");
      if (hq > 0) bar(TOP + H - hk - hq, hq, "#fb8f44", "quarantined");
      if (d.failed) { w = Math.max(w, 3); bar(TOP + H + 1, 4, "#cf222e", "failed"); }
    });
    function label(x, y, text, anchor) {
      var t = svg("text", { x: x, y: y, "text-anchor": anchor });
      t.textContent = text;
      box.appendChild(t);
    }
    label(0, TOP + H + 13, iso(first), "start");
    label(W, TOP + H + 13, iso(last), "end");
    label(0, TOP - 2, "max " + most + " rows/day", "start");
    fig.appendChild(box);
    return fig;
  }
  document.body.setAttribute("data-rendered", data.rows.length);
})();
"""

LEGEND = (
    ("#0969da", "rows"),
    ("#fb8f44", "quarantined"),
    ("#cf222e", "checks failed (a workflow: its run)"),
    ("#8250df", "stale (an input rewritten, or the code changed)"),
    ("#ffcecb", "gap (no delivery)"),
    ("#eaeef2", "due, not landed"),
    ("#ff8182", "late"),
)


def render(rows: list[Status], *, namespace: str, lake: str, now: dt.datetime) -> str:
    """The whole page for ``rows``, as of ``now``."""
    with_run = any(r.run is not None for r in rows)
    data = {
        "namespace": namespace,
        "lake": lake,
        "now": now.strftime("%Y-%m-%d %H:%M UTC"),
        "columns": [*COLUMNS, *([RUN_COLUMN] if with_run else [])],
        "rows": [_row(r, with_run) for r in rows],
    }
    embedded = json.dumps(data, default=str, separators=(",", ":"))
    embedded = embedded.replace("<", "\\u003c")  # no "</script>" can end it early
    legend = "".join(f'<span><i style="background:{c}"></i>{t}</span>' for c, t in LEGEND)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>pipelines status: {_escape(namespace)}</title>\n<style>{STYLE}</style>\n"
        "</head>\n<body>\n<h1>pipelines status</h1>\n"
        '<p class="where" id="where"></p>\n'
        '<table id="status"><thead></thead><tbody></tbody></table>\n'
        f'<p class="legend">{legend}</p>\n<section id="charts"></section>\n'
        "<noscript>This page draws its table and charts with its inline script: allow "
        "scripts, or run <code>pipelines status --json</code>.</noscript>\n"
        f'<script type="application/json" id="status-data">{embedded}</script>\n'
        f"<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def _row(row: Status, with_run: bool) -> dict:
    """A row as the page's script reads it: the table's cells, and its days as compact
    ``[ds, rows, quarantined, failed, stale]`` lists (a year of days is most of the page)."""
    body = row.as_dict()
    body["cells"] = row.cells(with_run=with_run)
    body["days"] = [[d.ds, d.rows, d.quarantined, int(d.failed), int(d.stale)] for d in row.days]
    return body


def write(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically: a temporary file beside it, then a rename (a
    reader, or a web server, sees the old page or the new one, never half of one).

    :raises OSError: the folder does not exist or cannot be written
    """
    target = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
