"""The teaching notebooks: they run top to bottom on the venv's kernel (so they never rot), their
saved outputs are the ones a run gives (so they read on a code host and stay true), and the
handshake notebook checks every step against wgscope's own handshake code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "notebooks"))
from save_outputs import execute  # noqa: E402


@pytest.fixture(scope="module")
def kernel():
    """Register this venv's python as the `python3` kernel (inside the venv, not system-wide)."""
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
                   check=True, capture_output=True, timeout=60)
    return "python3"


def outputs(nb) -> list:
    """What a reader sees: text streams, plain-text results and the kinds of rich output, per code cell.

    Consecutive pieces of one stream are joined: the kernel splits a cell's stdout into messages where
    its flush happens to fall (on a loaded machine one print loop came back as two), which a reader
    never sees."""
    seen = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.output_type == "stream" and seen and seen[-1][:2] == ("stream", o.name) and seen[-1][3] is cell:
                seen[-1] = ("stream", o.name, seen[-1][2] + o.text, cell)
            elif o.output_type == "stream":
                seen.append(("stream", o.name, o.text, cell))
            elif o.output_type == "error":
                seen.append(("error", o.ename, o.evalue))
            else:
                data = o.get("data", {})
                seen.append((o.output_type, sorted(data), data.get("text/plain", "")))
    return [("stream", o[2]) if o[0] == "stream" else o for o in seen]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_its_saved_outputs_are_what_it_prints(path, kernel):
    saved = nbformat.read(path, as_version=4)
    assert all(c.get("outputs") for c in saved.cells if c.cell_type == "code"), "a code cell has no saved output"
    ran = execute(path, kernel)
    assert not [o for o in outputs(ran) if o[0] == "error"]
    assert outputs(ran) == outputs(saved), "saved outputs are stale: make notebooks-outputs"


def test_the_three_notebooks_exist():
    assert {p.name for p in NOTEBOOKS} >= {"handshake-walkthrough.ipynb", "capture-analysis.ipynb",
                                           "timers-and-rekeying.ipynb"}


def test_handshake_notebook_checks_every_step():
    text = "".join(o[1] for o in outputs(nbformat.read(ROOT / "notebooks" / "handshake-walkthrough.ipynb", 4))
                   if o[0] == "stream")
    checked = [line for line in text.splitlines() if line.endswith("✓ same as wgscope")]
    for formula in ("Ci := HASH(CONSTRUCTION)", "DH(Ei_priv, Sr_pub)", "DH(Si_priv, Sr_pub)", "DH(Er_priv, Ei_pub)",
                    "DH(Er_priv, Si_pub)", "msg.static := AEAD", "msg.timestamp := AEAD", "msg.empty := AEAD",
                    "KDF3(Cr, Q)", "msg.mac1", "Hr := HASH(Hr || msg.empty)", "Ti_recv"):
        assert any(formula in line for line in checked), formula
    assert "[132:148]  mac2" in text and "cookie =" in text and "mac2 =" in text


def test_capture_notebook_draws_its_plot_once():
    nb = nbformat.read(ROOT / "notebooks" / "capture-analysis.ipynb", 4)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
