"""report.html: one self-contained page per run, whose scores are metrics.json's, read back
from the file and from what headless Chromium renders of it."""

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from rnnkit.cli import main
from rnnkit.tasks import rundir
from rnnkit.tasks.classify import Classifier
from rnnkit.tasks.report import better

DATA = Path(__file__).parent / "data"
# CI installs Chromium (.ci/run) and sets this: there the browser test may not skip.
BROWSER_REQUIRED = os.environ.get("RNNKIT_REQUIRE_BROWSER") == "1"


class _Page(HTMLParser):
    """The score cells (row name, metric, value, marked best), images, scripts and links."""

    def __init__(self):
        super().__init__()
        self.cells, self.images, self.scripts, self.links, self._row = [], [], 0, [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-name" in attrs:
            self._row = attrs["data-name"]
        if tag == "td" and "data-metric" in attrs:
            best = "best" in attrs.get("class", "").split()
            self.cells.append((self._row, attrs["data-metric"], float(attrs["data-value"]), best))
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "script":
            self.scripts += 1
        if tag in ("link", "a") and attrs.get("href"):
            self.links.append(attrs["href"])


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    data = folder / "mr.tsv"
    data.write_text("\n".join((DATA / "mr_sample.tsv").read_text().splitlines()[:161]) + "\n")
    estimator = Classifier(hidden_size=4, embedding_dim=4, epochs=2, val=0.25, progress="none")
    rundir.train_run(estimator, data, folder / "run")
    return folder / "run"


def _check_scores(page: _Page, metrics: dict) -> None:
    scores = metrics["validation"]
    expected = {(name, metric): value for name, values in scores.items()
                for metric, value in values.items()
                if isinstance(value, int | float) and not isinstance(value, bool)}  # fmt: skip
    assert {(row, metric): value for row, metric, value, _ in page.cells} == expected
    for metric in {metric for _, metric in expected}:
        column = [(value, best) for _, m, value, best in page.cells if m == metric]
        pick = min if better(metric) == "lower" else max
        assert {best for value, best in column if value == pick(v for v, _ in column)} == {True}
        assert not any(best for value, best in column if value != pick(v for v, _ in column))


def test_train_writes_a_self_contained_page_whose_scores_are_the_runs(run):
    text = (run / "report.html").read_text()
    page = _parse(text)
    _check_scores(page, json.loads((run / "metrics.json").read_text()))
    assert page.scripts == 0 and page.links == []
    assert page.images and all(src.startswith("data:image/png;base64,") for src in page.images)
    assert "http://" not in text and "https://" not in text
    for section in ("Data", "Training", "Pictures", "Warnings", "Settings"):
        assert f"<h2>{section}</h2>" in text
    assert json.loads((run / "metrics.json").read_text())["sources"]["train"] in text


def test_the_report_command_writes_a_page_anywhere(run, tmp_path):
    out = tmp_path / "page.html"
    result = CliRunner().invoke(main, ["report", "--run", str(run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == (run / "report.html").read_text()
    missing = CliRunner().invoke(main, ["report", "--run", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "nothing" in missing.output


def test_warnings_the_run_showed_are_on_its_page(tmp_path):
    data = tmp_path / "m.tsv"
    data.write_text("\n".join((DATA / "mr_sample.tsv").read_text().splitlines()[:41]) + "\n")
    estimator = Classifier(hidden_size=4, embedding_dim=4, epochs=1, val=0, progress="none")
    with pytest.warns(UserWarning) as shown:
        import warnings

        with rundir.noted_warnings(noted := []):
            warnings.warn("a warning the run shows", UserWarning, stacklevel=1)
    assert noted == ["UserWarning: a warning the run shows"] and len(shown) == 1
    rundir.train_run(estimator, data, tmp_path / "run")
    assert "The run warned about nothing." in (tmp_path / "run" / "report.html").read_text()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _headless(*arguments: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars"]  # fmt: skip
    return subprocess.run(
        [_chromium(), *flags, *arguments], capture_output=True, text=True, timeout=120
    )


def test_chromium_renders_the_page_with_the_runs_scores(run, tmp_path):
    if _chromium() is None:
        if BROWSER_REQUIRED:
            pytest.fail("Chromium is not installed, and CI requires the browser test")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    url = (run / "report.html").resolve().as_uri()
    profile = f"--user-data-dir={tmp_path / 'profile'}"
    rendered = _headless(profile, "--dump-dom", url)
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    _check_scores(_parse(rendered.stdout), json.loads((run / "metrics.json").read_text()))
    for width, height in ((390, 844), (1280, 900)):  # a phone, a laptop
        shot = tmp_path / f"report_{width}.png"
        done = _headless(profile, f"--window-size={width},{height}", f"--screenshot={shot}", url)
        assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
