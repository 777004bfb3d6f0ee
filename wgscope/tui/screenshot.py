"""Make the README's dashboard picture from a live lab session: `python -m wgscope.tui.screenshot docs/dashboard.svg`.

The app draws itself (textual's SVG export) while attached through a real control socket
to a lab node with two peers: one with a session that has already rekeyed once, carrying
pings, and one behind a firewall, still retrying its handshake. With cairosvg installed a
PNG is written next to the SVG.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from ..runtime.lab import Lab
from .app import TopApp
from .lab_runner import serve_lab


def build_lab() -> tuple[Lab, object]:
    lab = Lab(seed=7)
    alpha = lab.add_node("alpha", "192.0.2.1", 51820, tunnel="10.0.0.1/24")
    bravo = lab.add_node("bravo", "192.0.2.2", 51820, tunnel="10.0.0.2/24")
    charlie = lab.add_node("charlie", "192.0.2.3", 51820, tunnel="10.0.0.3/24")
    lab.connect(alpha, bravo, keepalive=25)
    lab.connect(alpha, charlie)
    return lab, alpha


def play_scene(lab: Lab, alpha) -> None:
    for seq in range(1, 130, 4):  # two minutes of pings: the session rekeys at REKEY_AFTER_TIME
        alpha.ping("10.0.0.2", seq=seq)
        lab.run(4.0)
    lab.network.blocked.add(("192.0.2.1", "192.0.2.3"))  # charlie is unreachable: retries, staged packets
    alpha.ping("10.0.0.3")
    lab.run(7.0)


async def capture(out: Path, size: tuple[int, int], settle: float) -> str:
    lab, alpha = build_lab()
    with tempfile.TemporaryDirectory(prefix="wgscope-shot-") as tmp:
        async with serve_lab(lab, alpha, path=Path(tmp) / "alpha.ctl") as server:
            play_scene(lab, alpha)  # two and a half minutes in an instant; the socket keeps the story
            app = TopApp(server.path)
            async with app.run_test(size=size) as pilot:
                await pilot.pause(settle)
                return app.export_screenshot(title="wgscope top — lab node alpha")


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
    args = ap.parse_args(argv)
    cols, rows = (int(v) for v in args.size.lower().split("x"))
    svg = asyncio.run(capture(args.out, (cols, rows), args.settle))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(svg)
    png = args.out.with_suffix(".png")
    print(f"wrote {args.out}" + (f" and {png}" if to_png(svg, png) else " (no PNG: pip install cairosvg)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
