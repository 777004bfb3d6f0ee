"""Make the README's dashboard picture from `wgscope demo --tui`: `python -m wgscope.tui.screenshot docs/dashboard.svg`.

The picture is the demo itself: the same lab, nodes and story as `wgscope demo --tui`
(wgscope/commands/demo.py: build and script), played to its end on the lab clock, with the
app attached to alpha through a real control socket, as the demo attaches it. What the
README shows is therefore what a reader sees when the demo's story has run (rekeyed
session, a cookie exchanged, alpha roamed). With cairosvg installed a PNG is written next
to the SVG.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from ..commands import demo
from ..runtime.lab import Lab
from .app import TopApp
from .lab_runner import serve_lab


def build_demo(seed: int = 7) -> tuple[Lab, object]:
    """`wgscope demo`'s lab and its node alpha, before the story."""
    lab = Lab(seed=seed)
    alpha, _ = demo.build(lab)
    return lab, alpha


def play_demo(lab: Lab) -> dict:
    """`wgscope demo`'s whole story on the lab clock, told to nobody (as under --tui); its step results."""
    results: dict = {}
    story = demo.Story(Console(file=open(os.devnull, "w")), quiet=True)
    for wait in demo.script(lab, story, results):
        lab.run(wait)
    return results


async def capture(size: tuple[int, int], settle: float, seed: int = 7) -> str:
    lab, alpha = build_demo(seed)
    with tempfile.TemporaryDirectory(prefix="wgscope-shot-") as tmp:
        async with serve_lab(lab, alpha, path=Path(tmp) / "alpha.ctl", traffic=None) as server:
            results = play_demo(lab)  # 150 lab seconds in an instant; the socket keeps recent events
            if not all(results.values()):
                raise SystemExit(f"the demo's story did not run as told: {results}")
            app = TopApp(server.path)
            async with app.run_test(size=size) as pilot:
                await pilot.pause(settle)
                return app.export_screenshot(title="wgscope demo --tui — lab node alpha")


def to_png(svg: str, path: Path) -> bool:
    try:
        import cairosvg
    except ImportError:
        return False
    # textual's SVG asks for Fira Code from the web; render offline with a local monospace font.
    local = svg.replace('"Fira Code"', '"DejaVu Sans Mono"').replace("Fira Code,", "DejaVu Sans Mono,")
    cairosvg.svg2png(bytestring=local.encode(), write_to=str(path), output_width=1400)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wgscope.tui.screenshot", description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="SVG file to write (a .png beside it when cairosvg is installed)")
    ap.add_argument("--size", default="100x30", help="terminal COLUMNSxROWS (default 100x30)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds of live session before the shot")
    ap.add_argument("--seed", type=int, default=7, help="the demo's seed (default 7, as `wgscope demo`)")
    args = ap.parse_args(argv)
    cols, rows = (int(v) for v in args.size.lower().split("x"))
    svg = asyncio.run(capture((cols, rows), args.settle, args.seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(svg)
    png = args.out.with_suffix(".png")
    print(f"wrote {args.out}" + (f" and {png}" if to_png(svg, png) else " (no PNG: pip install cairosvg)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
