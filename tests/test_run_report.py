"""`hf-attrib report`: the pictures exist, are valid PNGs with the right number of panels, and index.html
renders offline in headless Chromium with every picture loaded."""

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hf_attrib import AttributionResult
from hf_attrib.report import GRID_PANEL_WIDTH, HISTOGRAM_WIDTH
from hf_attrib.run_report import build_report, find_results

DPI = 110


def text_run(folder, method, scores):
    result = AttributionResult(np.array(scores), ["q1", "q2"], ["a", "b", "c", "d", "e"], method=method)
    examples = {"q1": {"prompt": "Paris is the capital of", "target": "France"}, "q2": {"text": "<b>bold</b>"},
                **{c: {"text": f"abstract {c} says something"} for c in "abcde"}}
    return result.save(folder, relevant={"q1": {"b"}, "q2": {"e"}}, examples=examples)


def image_run(folder, k_candidates=6):
    rng = np.random.default_rng(0)
    ids = [f"img-{i}" for i in range(k_candidates)]
    pictures = {i: Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)) for i in ["gen", *ids]}
    result = AttributionResult(rng.normal(size=(1, k_candidates)), ["gen"], ids, method="nearest")
    return result.save(folder, relevant={"gen": {"img-2"}}, top_k=4,
                       examples={i: {"image": im, "caption": "a photo"} for i, im in pictures.items()})


@pytest.fixture
def run_dir(tmp_path):
    root = tmp_path / "demo-run"
    text_run(root / "forward_inf", "forward-inf", [[0.1, 0.9, 0.3, 0.2, 0.0], [0.5, 0.1, 0.2, 0.3, 0.4]])
    text_run(root / "bm25", "bm25", [[1.0, 0.2, 0.3, 0.2, 0.0], [0.5, 0.1, 0.2, 0.3, 0.9]])
    image_run(root / "images" / "nearest")
    (root / "model").mkdir()  # other things in a run folder are ignored
    return root


def png_size(path):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.format, image.size


def test_report_pictures_are_valid_pngs_with_the_right_panels(run_dir):
    assert [p.relative_to(run_dir).as_posix() for p in find_results(run_dir)] == [
        "bm25", "forward_inf", "images/nearest"]
    manifest = build_report(run_dir, top_k=5, text_top=3)
    pictures = json.loads((run_dir / "report" / "manifest.json").read_text())
    kinds = sorted((p["result"], p["kind"], p["panels"]) for p in pictures)
    assert kinds == [("all", "metric-chart", 1),
                     ("bm25", "histogram", 1), ("bm25", "ranked-table", 2),
                     ("forward_inf", "histogram", 1), ("forward_inf", "ranked-table", 2),
                     ("images-nearest", "histogram", 1), ("images-nearest", "image-grid", 5)]  # query + the 4 saved
    for picture in pictures:
        form, (width, height) = png_size(run_dir / "report" / picture["file"])
        assert form == "PNG" and width > 100 and height > 100
        if picture["kind"] == "image-grid":
            assert width == round(GRID_PANEL_WIDTH * picture["panels"] * DPI)
        if picture["kind"] == "histogram":
            assert width == round(HISTOGRAM_WIDTH * picture["panels"] * DPI)
    page = manifest.index.read_text()
    assert page.count("<img ") == len(pictures)
    assert "&lt;b&gt;bold&lt;/b&gt;" in page or "<b>bold</b>" not in page  # text is escaped
    assert "http://" not in page and "https://" not in page  # nothing fetched from outside


def test_text_ranking_marks_the_proponent(run_dir):
    build_report(run_dir)
    # forward_inf ranks b first for q1 (a proponent); the page's table stars it
    page = (run_dir / "report" / "index.html").read_text()
    assert re.search(r"<td>q1</td><td>1</td><td>b ★</td>", page)
    assert re.search(r"<td>q2</td><td>1</td><td>a</td>", page)


def test_report_on_a_single_result_and_clear_errors(tmp_path):
    folder = text_run(tmp_path / "one", "tracin", [[0.1, 0.9, 0.3, 0.2, 0.0], [0.5, 0.1, 0.2, 0.3, 0.4]])
    manifest = build_report(folder)
    assert {p.result for p in manifest.pictures} == {"run", "all"}
    with pytest.raises(ValueError, match="holds no attribution result"):
        build_report(tmp_path / "one" / "plots")
    done = subprocess.run([sys.executable, "-m", "hf_attrib.cli", "report", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "is not a folder" in done.stderr and "Traceback" not in done.stderr


CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium): "
                                             "the headless rendering check needs it")
def test_index_renders_offline_in_headless_chromium(run_dir, tmp_path):
    manifest = build_report(run_dir)
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    url = manifest.index.resolve().as_uri()
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True).stdout
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images="(\d+)"', dom)
    assert loaded and total, dom[:500]
    assert int(loaded.group(1)) == int(total.group(1)) == len(manifest.pictures)  # every picture decoded
    shot = tmp_path / "page.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,1600", url], capture_output=True,
                   timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1280) and pixels.std() > 10  # a rendered page, not a blank one
