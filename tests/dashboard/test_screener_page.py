"""The screener page: the newest finished run in figures, its pairs ranked, its heatmap, the form for staff."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape as html_unescape
from http import HTTPStatus

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from analytics.models import Pair, ScreenerRun
from dashboard.views.screener import screen_bands, screen_p_text

pytestmark = pytest.mark.django_db

AS_OF = 1_796_066_700_000  # 2026-11-30 19:25:00 UTC
SYMBOLS = ["BTCUSDT", "DOTUSDT", "LTCUSDT", "SUIUSDT"]


def screened_pair(a, b, n=1000, p=None, q=None, fdr=0.05, hl=None, beta=None, corr=None, adf=None) -> dict:
    return {
        "symbol_a": a,
        "symbol_b": b,
        "n": n,
        "coint_pvalue": p,
        "qvalue": q,
        "significant": q is not None and q < fdr,
        "hedge_ratio": beta,
        "half_life": hl,
        "correlation": corr,
        "adf_pvalue": adf,
    }


#: A run's pairs, ranked as the screener ranks them (q, then half-life; untested last).
PAIRS = [
    screened_pair("DOTUSDT", "SUIUSDT", p=1.339e-29, q=2.8e-28, hl=1.248, beta=3.4171, corr=0.774, adf=0.0),
    screened_pair("LTCUSDT", "SUIUSDT", p=0.0021, q=0.0042, hl=30.5, beta=52.97, corr=0.884, adf=2.5e-30),
    screened_pair("DOTUSDT", "LTCUSDT", p=0.02, q=0.03, hl=2.0, beta=0.0644, corr=0.688, adf=0.012),
    screened_pair("BTCUSDT", "SUIUSDT", p=0.3, q=0.6, hl=12.5, beta=-1.68, corr=-0.006, adf=0.0086),
    screened_pair("BTCUSDT", "DOTUSDT", p=0.7, q=0.84, hl=None, beta=130.6, corr=-0.039, adf=0.4),
    screened_pair("BTCUSDT", "LTCUSDT", n=12),
]


def make_run(*, finished: datetime | None = None, **fields) -> ScreenerRun:
    """A done screen of four symbols (one more left out), as the runner stores it."""
    finished = finished or timezone.now()
    values = {
        "status": ScreenerRun.Status.DONE,
        "progress": 1.0,
        "requested": {"symbols": None, "top": 5, "interval": "5m", "window": 1000, "fdr": 0.05},
        "as_of": AS_OF,
        "interval": "5m",
        "window": 1000,
        "fdr": 0.05,
        "symbols": SYMBOLS,
        "skipped": {"XRPUSDT": "12 closed 5m bars in the window, 20 needed"},
        "pairs": PAIRS,
        "took_ms": 84_200,
        "started_at": finished - timedelta(seconds=84.2),
        "finished_at": finished,
        **fields,
    }
    return ScreenerRun.objects.create(**values)


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(User.objects.create_user("desk", password="pw", is_staff=True))
    return client


def embedded(html: str, element_id: str):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no #{element_id} in the page"
    return json.loads(match.group(1))


def text_of(html: str) -> str:
    return " ".join(html_unescape(re.sub(r"<[^>]+>", " ", html)).split())


def section(html: str, element_id: str) -> str:
    """The element with id ``element_id``, from its start tag to its own end tag."""
    start = re.search(rf'<(\w+)[^>]*\bid="{element_id}"', html)
    assert start, f"no #{element_id} in the page"
    depth = 0
    for tag in re.finditer(rf"<(/?){start.group(1)}\b[^>]*>", html[start.start() :]):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return html[start.start() : start.start() + tag.end()]
    raise AssertionError(f"#{element_id} is not closed")


def table_rows(html: str) -> list[dict[str, str]]:
    """The table's rows: their data-* and their cells' words."""
    rows = []
    for attrs, body in re.findall(r"<tr (data-rank=[^>]*)>(.*?)</tr>", section(html, "sc-rows"), re.S):
        row = dict(re.findall(r'data-(\w+)="([^"]*)"', attrs))
        row["cells"] = [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
        row["class"] = (re.search(r'class="([^"]*)"', attrs) or [None, ""])[1]
        row["html"] = body
        rows.append(row)
    return rows


# -- links ------------------------------------------------------------------------------


def test_the_overview_and_every_page_link_to_the_screener(client):
    html = client.get("/").content.decode()
    assert 'href="/screener/" id="screener-link"' in html
    assert '<a href="/screener/">Screener</a>' in html  # the top bar's links, on every page


# -- before any run ---------------------------------------------------------------------


def test_before_any_run_has_finished_the_page_says_so_and_anonymous_visitors_are_asked_to_sign_in(client):
    response = client.get("/screener/")
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert text_of(section(html, "sc-none")).startswith("No screen has finished yet")
    assert 'id="sc-table"' not in html and 'id="sc-heat"' not in html
    assert 'id="sc-form"' not in html and "csrfmiddlewaretoken" not in html
    signin = section(html, "sc-signin")
    assert "Sign in as staff to run a screen or watch a pair" in text_of(signin)
    assert 'href="/admin/login/?next=%2Fscreener%2F"' in signin
    assert "every 5 minutes" in text_of(section(html, "sc-schedule"))
    config = embedded(html, "screener-config")
    assert config["can_run"] is False and config["shown"] is None and config["active"] is None
    assert config["runs_url"] == "/api/screener/runs/" and config["pairs_url"] == "/api/pairs/"
    assert "dashboard/screener.js" in html


def test_staff_see_the_form_with_the_screeners_settings(staff, settings):
    settings.SCREENER_TOP, settings.SCREENER_INTERVAL, settings.SCREENER_WINDOW = 25, "1m", 500
    response = staff.get("/screener/")
    html = response.content.decode()
    form = section(html, "sc-form")
    assert "csrfmiddlewaretoken" in form and "csrftoken" in response.cookies
    assert 'name="top" step="1" inputmode="numeric" value="25"' in form
    assert '<option value="1m" selected>1m</option><option value="5m">5m</option>' in form
    assert 'name="window" step="1" inputmode="numeric" value="500"' in form
    assert 'name="fdr" step="any" inputmode="decimal" value="0.05"' in form
    assert 'type="text" name="symbols"' in form
    for field in ("top", "symbols", "interval", "window", "fdr"):
        assert f'class="field-error" data-for="{field}"' in form, field
    assert 'id="sc-signin"' not in html
    assert embedded(html, "screener-config")["can_run"] is True
    assert "Start one with the form" in text_of(section(html, "sc-none"))


def test_a_user_who_is_not_staff_is_asked_to_sign_in_as_staff():
    make_run()
    client = Client()
    client.force_login(User.objects.create_user("viewer", password="pw"))
    html = client.get("/screener/").content.decode()
    assert 'id="sc-form"' not in html and 'id="sc-signin"' in html
    assert "sc-watch" not in section(html, "sc-table") and 'id="sc-watch-note"' in html


# -- a done run -------------------------------------------------------------------------


def test_a_done_run_in_figures(client):
    run = make_run()
    html = client.get("/screener/").content.decode()
    assert f'id="sc-run" data-run-id="{run.id}" data-interval="5m" data-window="1000"' in html
    ran = text_of(section(html, "sc-ran"))
    assert ran == f"finished {run.finished_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC · took 1m 24s"
    assert text_of(section(html, "sc-as-of")) == "Bars to 11-30 19:25 2026-11-30 · newest bar, UTC"
    assert text_of(section(html, "sc-settings")) == "Interval · window 5m · 1000 closed bars per pair"
    assert text_of(section(html, "sc-fdr")) == "FDR 0.05 significant: q < 0.05"
    assert text_of(section(html, "sc-universe")) == "Universe 4 symbols screened · 1 left out"
    assert text_of(section(html, "sc-pairs")) == "Pairs 6 5 tested"
    assert text_of(section(html, "sc-significant")) == "Significant 3 q < 0.05 (Benjamini-Hochberg)"
    assert 'data-tone="pos"' in section(html, "sc-significant")
    what = text_of(section(html, "sc-run"))
    assert "The top 5 USDT perpetuals by 24 h quote volume · 1 left out · 5 of 6 pairs tested" in what
    # The symbols left out, each with why.
    skipped = section(html, "sc-skipped")
    assert text_of(skipped) == "Left out 1 symbol, not in the run XRPUSDT 12 closed 5m bars in the window, 20 needed"
    assert embedded(html, "screener-config")["shown"] == run.id


def test_the_table_lists_the_pairs_in_rank_order_significant_ones_marked(client, api):
    make_run()
    html = client.get("/screener/").content.decode()
    rows = table_rows(html)
    served = api.get("/api/screener/").json()["pairs"]
    assert [r["pair"] for r in rows] == [f"{p['symbol_a']}/{p['symbol_b']}" for p in served]
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert [r["sig"] for r in rows] == ["true", "true", "true", "false", "false", "false"]
    assert [r["class"] for r in rows] == ["sig", "sig", "sig", "", "", ""]
    assert ["sig" in r["cells"][1] for r in rows] == [True, True, True, False, False, False]
    # #, pair, q, EG p, half-life in bars and in time (bars x 5m), β, ρ, ADF p, n
    assert rows[0]["cells"][:10] == [
        "1", "DOTUSDT / SUIUSDT sig", "2.8e-28", "1.3e-29", "1.2", "6m 14s", "3.417", "0.774", "0", "1,000",
    ]  # fmt: skip
    assert rows[1]["cells"][2:10] == ["0.0042", "0.0021", "30.5", "2h 33m", "52.97", "0.884", "2.5e-30", "1,000"]
    assert rows[4]["cells"][4:6] == ["—", "—"]  # no half-life: not reverting
    assert rows[5]["cells"][2:10] == ["—", "—", "—", "—", "—", "—", "—", "12"]  # no test
    # The numbers the headings sort by, in full; none where there is none.
    assert rows[0]["q"] == "2.8e-28" and rows[0]["hl"] == "1.248" and rows[0]["n"] == "1000.0"
    assert rows[5]["q"] == "" and rows[5]["hl"] == ""
    headings = re.findall(r'<th class="[^"]*" data-key="(\w+)"', section(html, "sc-table"))
    assert headings == ["rank", "q", "p", "hl", "hl", "beta", "corr", "adf", "n"]


def test_staff_can_watch_each_pair_and_a_watched_one_links_to_its_page(staff, client):
    make_run()
    watched = Pair.objects.create(symbol_a="LTCUSDT", symbol_b="SUIUSDT", interval="5m", window=1000)
    Pair.objects.create(symbol_a="DOTUSDT", symbol_b="SUIUSDT", interval="1m", window=1000)  # another interval
    rows = table_rows(staff.get("/screener/").content.decode())
    for row in rows:
        if row["pair"] == "LTCUSDT/SUIUSDT":
            assert f'<a class="sc-open" href="/pairs/{watched.id}/"' in row["html"] and "sc-watch" not in row["html"]
        else:
            a, b = row["pair"].split("/")
            ghost = "" if row["sig"] == "true" else " btn-ghost"  # the significant ones stand out
            assert f'class="btn btn-small{ghost} sc-watch" data-a="{a}" data-b="{b}">watch</button>' in row["html"]
    # Anonymous: no button, the pair already watched linked, and a note to sign in.
    html = client.get("/screener/").content.decode()
    assert "sc-watch" not in section(html, "sc-table")
    assert html.count('class="sc-open"') == 1
    note = text_of(section(html, "sc-watch-note"))
    assert note == "Sign in as staff to watch a pair: it is added as a live pair (5m, window 1000) and its page opens."


def test_the_heatmap_has_every_pair_of_the_universe_and_a_legend(client):
    make_run()
    html = client.get("/screener/").content.decode()
    heat = embedded(html, "sc-heat-data")
    assert heat["symbols"] == SYMBOLS and heat["interval_ms"] == 300_000 and heat["fdr"] == 0.05
    index = {s: k for k, s in enumerate(SYMBOLS)}
    assert heat["cells"] == [
        [index[p["symbol_a"]], index[p["symbol_b"]], p["qvalue"], p["coint_pvalue"], p["half_life"],
         p["hedge_ratio"], p["correlation"], int(p["significant"]), rank]
        for rank, p in enumerate(PAIRS, start=1)
    ]  # fmt: skip
    legend = [text_of(li) for li in re.findall(r"<li>(.*?)</li>", section(html, "sc-legend"), re.S)]
    assert legend == ["q < 0.001", "q < 0.01", "q < 0.05", "0.05 ≤ q < 0.25", "q ≥ 0.25", "no test"]


@pytest.mark.parametrize(
    ("fdr", "labels"),
    [
        (0.01, ["q < 0.001", "q < 0.01", "0.01 ≤ q < 0.25", "q ≥ 0.25", "no test"]),
        (0.001, ["q < 0.001", "0.001 ≤ q < 0.25", "q ≥ 0.25", "no test"]),
        (0.3, ["q < 0.001", "q < 0.01", "q < 0.3", "q ≥ 0.3", "no test"]),
    ],
)
def test_the_heatmaps_bands_follow_the_runs_fdr(fdr, labels):
    assert [b["label"] for b in screen_bands(fdr)] == labels


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (0.0, "0"), (1.0, "1.0000"), (0.04999, "0.0500"), (0.0001, "0.0001"), (9.96e-05, "1.0e-4"),
     (2.8e-28, "2.8e-28"), (1.339e-29, "1.3e-29")],
)  # fmt: skip
def test_p_and_q_values_are_written_in_scientific_notation_when_tiny(value, text):
    assert screen_p_text(value) == text


# -- other runs ---------------------------------------------------------------------------


def test_a_newer_failed_run_is_named_above_the_last_good_one(client):
    good = make_run(finished=timezone.now() - timedelta(minutes=5))
    failed = ScreenerRun.objects.create(
        status=ScreenerRun.Status.FAILED,
        requested={"symbols": None, "top": 30, "interval": "5m", "window": 1000, "fdr": 0.05},
        interval="5m",
        window=1000,
        fdr=0.05,
        error="cannot reach the exchange at http://127.0.0.1:9 (ConnectError): try again",
        finished_at=timezone.now(),
    )
    html = client.get("/screener/").content.decode()
    assert text_of(section(html, "sc-failed")) == (
        f"Screen #{failed.id} failed ({failed.finished_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC): cannot reach "
        f"the exchange at http://127.0.0.1:9 (ConnectError): try again. The last good run, #{good.id}, is shown below."
    )
    assert f'id="sc-run" data-run-id="{good.id}"' in html and len(table_rows(html)) == len(PAIRS)
    runs = embedded(html, "screener-runs")
    assert [(r["id"], r["status"]) for r in runs] == [(failed.id, "failed"), (good.id, "done")]
    assert runs[0]["error"] == failed.error and runs[1]["significant"] == 3 and runs[1]["universe"] == 4
    # A good run after it: the failure is old news.
    newer = make_run()
    html = client.get("/screener/").content.decode()
    assert 'id="sc-failed"' not in html and f'id="sc-run" data-run-id="{newer.id}"' in html


def test_an_earlier_run_is_shown_with_run_id(client):
    old = make_run(finished=timezone.now() - timedelta(minutes=5), pairs=PAIRS[:2])
    make_run()
    html = client.get(f"/screener/?run={old.id}").content.decode()
    assert f'id="sc-run" data-run-id="{old.id}"' in html and len(table_rows(html)) == 2
    assert client.get("/screener/?run=999").status_code == HTTPStatus.NOT_FOUND
    assert client.get("/screener/?run=abc").status_code == HTTPStatus.NOT_FOUND
    assert client.get("/screener/runs/999/").status_code == HTTPStatus.NOT_FOUND


def test_a_run_in_progress_shows_its_progress_and_its_part_once_it_ends(client):
    good = make_run(finished=timezone.now() - timedelta(minutes=5))
    running = ScreenerRun.objects.create(
        status=ScreenerRun.Status.RUNNING,
        progress=0.42,
        requested={"symbols": ["DOTUSDT", "SUIUSDT"], "top": None, "interval": "1m", "window": 200, "fdr": 0.1},
        interval="1m",
        window=200,
        fdr=0.1,
    )
    html = client.get("/screener/").content.decode()
    active = section(html, "sc-active")
    assert f'data-run-id="{running.id}" data-status="running"' in active and " hidden" not in active.split(">")[0]
    assert 'aria-valuenow="42"' in active
    assert text_of(section(html, "sc-progress-text")) == "running: 42 %"
    assert text_of(section(html, "sc-active-what")) == "1m · window 200 · FDR 0.1"
    assert embedded(html, "screener-config")["active"] == running.id
    assert f'id="sc-run" data-run-id="{good.id}"' in html  # the last good run meanwhile
    # Once it ends, the page script swaps in the result part as the server renders it.
    ScreenerRun.objects.filter(pk=running.pk).update(
        status=ScreenerRun.Status.DONE,
        progress=1.0,
        finished_at=timezone.now(),
        as_of=AS_OF,
        symbols=["DOTUSDT", "SUIUSDT"],
        pairs=PAIRS[:1],
        took_ms=900,
    )
    fragment = client.get(f"/screener/runs/{running.id}/")
    assert fragment.status_code == HTTPStatus.OK
    part = fragment.content.decode()
    assert "<html" not in part and f'id="sc-run" data-run-id="{running.id}" data-interval="1m"' in part
    assert [r["pair"] for r in table_rows(part)] == ["DOTUSDT/SUIUSDT"]
    assert 'id="sc-active"' not in part
    # A run that failed: the last good one, and why.
    ScreenerRun.objects.filter(pk=running.pk).update(
        status=ScreenerRun.Status.FAILED, error="fewer than 2 symbols have 1m bars to screen"
    )
    part = client.get(f"/screener/runs/{running.id}/").content.decode()
    assert f"Screen #{running.id} failed" in text_of(section(part, "sc-failed"))
    assert f'id="sc-run" data-run-id="{good.id}"' in part
    html = client.get("/screener/").content.decode()
    assert " hidden" in section(html, "sc-active").split(">")[0]
