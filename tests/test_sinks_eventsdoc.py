"""docs/events.md is generated from the catalogue and must not drift from it."""

import pathlib
import subprocess
import sys

from wgscope.commands.eventsdoc import render_markdown
from wgscope.events import CATALOGUE

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_docs_events_md_is_up_to_date():
    doc = (ROOT / "docs" / "events.md").read_text()
    assert doc == render_markdown(), "docs/events.md is stale: run `wgscope events-doc > docs/events.md`"


def test_every_event_and_field_is_documented():
    doc = render_markdown()
    for et in CATALOGUE.values():
        assert f"### {et.name}\n" in doc
        for field in et.fields:
            assert f"| `{field}` |" in doc


def test_events_doc_command_prints_the_reference():
    out = subprocess.run([sys.executable, "-m", "wgscope.cli", "events-doc"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == render_markdown()
