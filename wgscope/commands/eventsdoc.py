"""`wgscope events-doc`: print the event reference (docs/events.md is this output)."""

from __future__ import annotations

import sys

from ..events import CATALOGUE, LEVEL_NAMES

HEADER = """\
# wgscope events

Every decision wgscope's protocol core makes is announced as one event from this catalogue
(wgscope/events.py). An event has a stable `event` name, a `time` (the protocol clock,
seconds), the same instant as wall-clock time (`timestamp`, ISO 8601 UTC; `Event.wall`, Unix
seconds, from the node's own offset), the `peer` it concerns (base64 public key, or null) and
the typed fields below.

Sinks render them: `--events FILE.jsonl` writes JSON lines (`timestamp`, `level`, `event`,
`category`, `node`, `peer`, `time`, then the fields); `--events -` a console line on a
terminal, headed by the wall time of day; `--events FILE.wgtrace` a binary trace, read back
with `wgscope events FILE` (JSON or console lines, filtered by kind, peer, level and time) or
`wgscope.trace.frame.load_events(FILE)` (a pandas DataFrame, one column per field name
below). The control socket (`wgscope top`) carries the same names and fields.

Levels: `info` events are always built; `debug` adds timers, keepalives and slot changes;
`trace` adds one event per data packet, built only when a sink asked for `--events-level
trace` (the core checks one attribute first, so leaving it off costs nothing). Per-packet
events travel as a few integers and become these fields when read, so a binary trace of
every level costs the tunnel little (bench/README.md); as JSON lines they cost much more.
A sink that cannot keep up says so with `events_lost`.

Keys never appear in events. They leave the core only through `--keylog` and `--capture`.

This page is generated: `wgscope events-doc > docs/events.md`.
"""


def render_markdown() -> str:
    out = [HEADER]
    categories: dict[str, list] = {}
    for et in CATALOGUE.values():
        categories.setdefault(et.category, []).append(et)
    out.append("## Contents\n")
    for category, events in categories.items():
        out.append(f"- **{category}**: " + ", ".join(f"[`{e.name}`](#{e.name})" for e in events))
    out.append("")
    for category, events in categories.items():
        out.append(f"## {category}\n")
        for et in events:
            out.append(f"### {et.name}\n")
            out.append(f"Level `{LEVEL_NAMES.get(et.level, et.level)}`. {et.doc}\n")
            if et.fields:
                out.append("| field | type | meaning |")
                out.append("|---|---|---|")
                for name, spec in et.fields.items():
                    kind, _, meaning = spec.partition(":")
                    meaning = meaning.strip() or "—"
                    out.append(f"| `{name}` | `{kind.strip()}` | {meaning.strip().replace('|', '/')} |")
                out.append("")
            else:
                out.append("No fields beyond `event`, `time` and `peer`.\n")
    return "\n".join(out).rstrip() + "\n"


def register(sub) -> None:
    p = sub.add_parser("events-doc", help="print the event reference (Markdown) generated from the catalogue")
    p.set_defaults(func=run)


def run(args) -> int:
    sys.stdout.write(render_markdown())
    return 0
