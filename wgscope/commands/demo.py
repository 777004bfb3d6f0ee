"""`wgscope demo`: a scripted two-node story in the lab, no root and no network.

alpha and bravo handshake, ping both ways, rekey after two (fast-clocked) minutes, exchange
a cookie while bravo is forced under load, and alpha roams to a new address. Each step is
told from the nodes' own events.
"""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import UserError
from ..events import INFO
from ..narrate import describe
from ..plural import counted
from ..protocol.constants import REKEY_AFTER_TIME, REKEY_TIMEOUT
from ..runtime.lab import Lab
from ..sinks.setup import add_sink_arguments, attach_sinks
from ..tui.formatting import size


DEMO_CAPTURE = "captures/demo.pcapng"


def register(sub) -> None:
    p = sub.add_parser("demo", help="run a scripted two-node scenario in the in-process lab")
    p.add_argument("--seed", type=int, default=7, help="seed for the lab's randomness (default 7)")
    p.add_argument("--quiet", action="store_true", help="print only the summary")
    p.add_argument("--tui", action="store_true", help="run the story in real time with the dashboard attached "
                   "to alpha (q quits)")
    p.add_argument("--speed", type=float, default=10.0, help="with --tui: lab seconds per real second "
                   "(default 10)")
    add_sink_arguments(p)
    p.set_defaults(func=run, capture=DEMO_CAPTURE)


class Story:
    def __init__(self, console: Console, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet

    def chapter(self, title: str) -> None:
        if not self.quiet:
            self.console.print(f"\n[bold cyan]== {title}[/]")

    def say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)

    def attach(self, lab: Lab) -> None:
        for node in lab.nodes.values():
            node.bus.subscribe(lambda ev, n=node.name: self.tell(lab, n, ev), INFO)

    def tell(self, lab: Lab, who: str, ev) -> None:
        sentence = describe(ev)
        if sentence and not self.quiet:
            # one grid per line: a long sentence wraps under itself, not under the time column
            line = Table.grid(padding=(0, 1))
            line.add_column(no_wrap=True)
            line.add_column(no_wrap=True)
            line.add_column(overflow="fold")
            line.add_row(Text(f"  t={ev.time:8.3f}s", style="dim"), Text(f"{who:>5}", style="bold"),
                         Text(sentence))
            self.console.print(line)


def build(lab: Lab) -> tuple:
    return lab.alpha_bravo()


def script(lab: Lab, story: Story, results: dict):
    """The story as a generator: it yields how many lab seconds pass before its next act, so
    the same script runs at once (plain demo) or in real time under the dashboard (--tui)."""
    alpha, bravo = lab.nodes["alpha"], lab.nodes["bravo"]

    story.chapter("1. alpha pings bravo: the first packet starts a handshake")
    alpha.ping("10.0.0.2", 1)
    yield 1
    results["first_ping"] = alpha.echo_replies() == [1]

    story.chapter("2. pings both ways over the session")
    for seq in range(2, 5):
        alpha.ping("10.0.0.2", seq)
        bravo.ping("10.0.0.1", 100 + seq)
        yield 1
    results["pings"] = len(alpha.echo_replies()) == 4 and len(bravo.echo_replies()) == 3
    story.say(f"  alpha got {counted(len(alpha.echo_replies()), 'echo reply', 'echo replies')}, "
              f"bravo got {len(bravo.echo_replies())}")

    story.chapter(f"3. two minutes of traffic on a fast clock: alpha rekeys after REKEY_AFTER_TIME "
                  f"({REKEY_AFTER_TIME:.0f} s)")
    for seq in range(130):
        alpha.ping("10.0.0.2", 1000 + seq)
        yield 1
    results["rekey"] = alpha.peer(bravo).handshakes_completed >= 2

    story.chapter("4. bravo is forced under load: alpha's next handshake is answered with a cookie")
    bravo.device.set_forced_load(True, lab.now)
    yield REKEY_TIMEOUT
    alpha.apply(alpha.device.initiate_handshake(alpha.peer(bravo), lab.now))
    yield REKEY_TIMEOUT + 1  # the retry carries mac2 and gets through
    results["cookie"] = alpha.peer(bravo).cookies_received >= 1 and alpha.peer(bravo).handshakes_completed >= 3
    bravo.device.set_forced_load(None, lab.now)

    story.chapter("5. alpha roams to a new address; bravo follows it")
    alpha.move("198.51.100.1", 40000)
    alpha.ping("10.0.0.2", 5000)
    yield 1
    results["roaming"] = bravo.peer(alpha).endpoint == ("198.51.100.1", 40000) and 5000 in alpha.echo_replies()


def summary(lab: Lab, console: Console) -> None:
    """One row per node and peer, in 80 columns: tx/rx as packets over bytes in wg's units."""
    table = Table(title="what each node saw", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0),
                  pad_edge=False, show_edge=False)
    for col in ("node", "peer", "endpoint", "handshakes", "tx", "rx", "cookies rx", "drops"):
        table.add_column(col, no_wrap=col not in ("drops", "cookies rx"))
    for node in lab.nodes.values():
        for peer in node.device.peers.values():
            endpoint = f"{peer.endpoint[0]}:{peer.endpoint[1]}" if peer.endpoint else "-"
            table.add_row(node.name, peer.label or peer.name[:8], endpoint, str(peer.handshakes_completed),
                          f"{counted(peer.tx_packets, 'pkt')}\n{size(peer.tx_bytes)}",
                          f"{counted(peer.rx_packets, 'pkt')}\n{size(peer.rx_bytes)}", str(peer.cookies_received),
                          ", ".join(f"{k}={v}" for k, v in peer.drops.items()) or "-")
    console.print(table)


def run(args) -> int:
    if not 0 < args.speed < float("inf"):  # also refuses nan
        raise UserError(f"--speed must be a positive number of lab seconds per second, got {args.speed}")
    console = Console(highlight=False)
    lab = Lab(seed=args.seed)
    alpha, _ = build(lab)
    results: dict = {}
    if args.capture == DEMO_CAPTURE:  # the default's directory is made; a path the user gives must exist, as for up
        Path(DEMO_CAPTURE).parent.mkdir(parents=True, exist_ok=True)
    sinks = attach_sinks(alpha.bus, args, lambda: alpha.device.snapshot(lab.now), "alpha",
                         wall_offset=alpha.device.wall_offset, warn=None)
    try:
        if args.tui:
            from ..tui.lab_runner import run_demo_tui

            story = Story(console, quiet=True)
            status = run_demo_tui(lab, alpha, speed=args.speed, traffic=None,
                                  script=lambda lab: script(lab, story, results), capture=args.capture)
            console.print(f"demo: {len(results)} of 5 steps ran before the dashboard closed")
            return status
        story = Story(console, args.quiet)
        story.attach(lab)
        for wait in script(lab, story, results):
            lab.run(wait)
    finally:
        sinks.close()
    console.print()
    summary(lab, console)
    failed = [k for k, ok in results.items() if not ok]
    for step, ok in results.items():
        console.print(f"  {'[green]ok[/]' if ok else '[red]FAILED[/]'}  {step}")
    if args.capture:
        console.print(f"\nalpha's traffic is in {Path(args.capture).resolve()}: it carries its own keys, so "
                      f"`tshark -r {args.capture}` (or Wireshark) shows it decrypted, with wgscope's verdict "
                      f"as a comment on each packet.")
    if failed:
        console.print(f"[red]demo: steps failed: {', '.join(failed)}[/]")
        return 1
    console.print(f"[green]demo: all {len(results)} steps behaved as the protocol says "
                  f"({lab.now:.0f} s of protocol time)[/]")
    return 0
