"""The dashboard, headless (textual's pilot), attached through a real control socket to a lab node."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from rich.console import Console

from conftest import require_tools

from lab_helpers import pair

from wgscope import cli
from wgscope.tui import formatting as fmt
from wgscope.tui.app import DetailScreen, TopApp, XRayScreen
from wgscope.tui.lab_runner import LabDriver, run_demo_tui, serve_lab, tell_when_finished
from wgscope.tui.widgets import NodeBar


def lab_pair():
    return pair(seed=5)


def plain(renderable, width: int = 120) -> str:
    console = Console(width=width, record=True, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


def pane_text(app) -> str:
    return "\n".join(strip.text for strip in app.main.query_one("#events").lines)


async def until(pilot, pred, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await pilot.pause(0.05)


def cell(app, key: str, column: str) -> str:
    return str(app.main.query_one("#peers").get_cell(key, column))


def test_formatting():
    assert fmt.seconds(None) == "—" and fmt.seconds(0.42) == "0.42s" and fmt.seconds(9.81) == "9.8s"
    assert fmt.seconds(123) == "2m03s" and fmt.seconds(3725) == "1h02m"
    assert fmt.size(100) == "100 B" and fmt.size(2048) == "2.0 KiB"
    assert fmt.index(0x3A4F) == "00003a4f"
    assert fmt.matches({"event": "timer_armed"}, None, ["-timer"]) is False
    assert fmt.matches({"event": "cookie_reply_sent"}, None, ["cookie"]) is True
    assert fmt.matches({"event": "cookie_reply_sent", "peer": "x"}, "y", []) is False
    assert fmt.session_state({"keypairs": {}, "timers": {"retransmit_handshake": 1.0}})[0] == "handshaking"


def test_countdowns_churn_and_wall_clock_formatting():
    mine = {"age": 20.0, "initiator": True}
    theirs = {"age": 20.0, "initiator": False}
    assert fmt.rekey_in(mine) == 100.0 and fmt.rekey_in(theirs) is None and fmt.rekey_in(None) is None
    assert fmt.rekey_text(mine) == "in 1m40s (we initiated)" and "by the peer" in fmt.rekey_text(theirs)
    assert fmt.rekey_text({"age": 130.0, "initiator": True}).startswith("due with our next packet")
    assert fmt.keepalive_in({"timers": {"send_keepalive": 9.5, "persistent_keepalive": 3.0}}) == 3.0
    assert fmt.keepalive_in({"timers": {"send_keepalive": None}}) is None
    assert fmt.is_churn("timer_armed") and fmt.is_churn("transport_sent") and not fmt.is_churn("handshake_completed")
    assert not fmt.is_churn("keepalive_sent") and not fmt.is_churn("route_missing")
    assert fmt.is_churn("local_traffic_ignored")  # a healthy tunnel's IPv6 router solicitations stay behind `t`
    assert not fmt.matches({"event": "timer_armed"}, None, [], show_churn=False)
    assert fmt.matches({"event": "timer_armed"}, None, ["timer"], show_churn=False)  # asked for by name
    assert fmt.matches({"event": "endpoint_changed"}, None, [], show_churn=False)
    msg = {"event": "handshake_completed", "time": 1.5, "fields": {}}
    assert fmt.event_text(msg, {}, wall_offset=1_767_225_600.0).plain.startswith("00:00:01.500 ")
    assert fmt.event_text(dict(msg, wall=1_767_225_662.25), {}, None).plain.startswith("00:01:02.250 ")
    assert fmt.event_text(msg, {}, wall_offset=1_767_225_600.0, wall=False).plain.split()[0] == "1.500"
    counts = fmt.handshake_counts({"handshakes": 0, "initiations_sent": 3, "retries": 2,
                                   "initiations_since_handshake": 3, "unanswered_initiations": 3})
    assert counts.startswith("0 completed, 3 initiations since the last, 3 unanswered in a row")
    one = fmt.handshake_counts({"handshakes": 1, "initiations_sent": 2, "retries": 1,
                                "initiations_since_handshake": 1, "unanswered_initiations": 0})
    assert one == "1 completed, 1 initiation since the last, 0 unanswered in a row, 2 initiations sent in all (1 retry)"


def test_counts_are_pluralised():
    from wgscope.plural import counted
    from wgscope.tui.widgets import peer_card

    assert counted(1, "retry", "retries") == "1 retry" and counted(0, "retry", "retries") == "0 retries"
    assert counted(1, "peer") == "1 peer" and counted(2, "peer") == "2 peers"
    peer = {"public_key": "k" * 44, "keypairs": {}, "timers": {}, "tx_bytes": 32, "tx_packets": 1, "rx_bytes": 0,
            "rx_packets": 0, "staged": 0, "staged_limit": 128, "handshakes": 0, "cookies_received": 0,
            "cookies_sent": 0, "keepalives_sent": 0, "keepalives_received": 0, "retries": 1, "initiations_sent": 1}
    card = plain(peer_card(peer))
    assert "tx 32 B 1 pkt " in card and "rx 0 B 0 pkts" in card and "(1 retry)" in card


def test_dashboard_follows_traffic_and_clock_jump(tmp_path):
    lab, a, b = lab_pair()
    key = a.peer(b).name

    async def main():
        async with serve_lab(lab, a, path=tmp_path / "alpha.ctl", traffic=None, speed=1.0) as server:
            app = TopApp(server.path, retry=0.2)
            async with app.run_test(size=(80, 24)) as pilot:
                await until(pilot, lambda: app.connected and app.snapshot is not None)
                assert cell(app, key, "state") == "no session" and cell(app, key, "tx") == "0 B"

                a.ping("10.0.0.2")
                lab.run(1.0)
                await until(pilot, lambda: cell(app, key, "state") == "established")
                await until(pilot, lambda: "handshake_completed" in pane_text(app))
                assert cell(app, key, "hs") == "1" and cell(app, key, "tx") != "0 B"
                reject_before = app.peer(key)["keypairs"]["current"]["age"]
                assert cell(app, key, "reject").startswith("2m5")  # REJECT_AFTER_TIME - ~1 s
                card = plain(app.main.query_one("#card").content)
                assert "reject in 2m5" in card and "keepalive" in card and "staged 0/128" in card
                assert "rekey      in 1m5" in card and "(we initiated)" in card  # alpha initiated
                assert cell(app, key, "rekey").startswith("1m5")
                # timer churn stays out of the default pane; `t` brings it in, `w` the protocol clock
                assert "handshake_initiation_sent" in pane_text(app) and "timer_armed" not in pane_text(app)
                await pilot.press("t")
                await until(pilot, lambda: "timer_armed" in pane_text(app))
                armed = next(line for line in pane_text(app).splitlines() if "timer_armed" in line)
                assert armed.startswith("00:00:0")  # the lab's wall clock starts at 00:00:00 UTC
                await pilot.press("w", "t")
                await until(pilot, lambda: "timer_armed" not in pane_text(app))
                assert "protocol clock" in app.main.query_one("#events").border_title

                # Jump 100 s: countdowns move on, counters grow with new traffic.
                lab.advance(100)
                a.ping("10.0.0.2", seq=2)
                lab.run(1.0)
                await until(pilot, lambda: cell(app, key, "reject").startswith("1m1"))
                assert app.peer(key)["keypairs"]["current"]["age"] > reject_before + 99
                await until(pilot, lambda: app.peer(key)["tx_packets"] >= 2)
                await until(pilot, lambda: app.peer(key)["rx_packets"] >= 2)

                # The screen is usable at 80x24: every part has room.
                for wid in ("#bar", "#peers", "#card", "#events"):
                    assert app.main.query_one(wid).region.height >= 1, wid
                assert app.main.query_one("#events").region.height >= 4
        assert app.return_code in (None, 0)

    asyncio.run(main())


def test_pause_filter_and_detail(tmp_path):
    lab, a, b = lab_pair()
    key = a.peer(b).name

    async def main():
        async with serve_lab(lab, a, path=tmp_path / "alpha.ctl", traffic=None) as server:
            app = TopApp(server.path, retry=0.2)
            async with app.run_test(size=(100, 30)) as pilot:
                a.ping("10.0.0.2")
                lab.run(1.0)
                await until(pilot, lambda: app.snapshot and cell(app, key, "state") == "established")

                await pilot.press("space")
                frozen = cell(app, key, "reject")
                lab.advance(30)
                await pilot.pause(0.5)
                assert app.paused and cell(app, key, "reject") == frozen
                await pilot.press("space")
                await until(pilot, lambda: cell(app, key, "reject") != frozen)

                await pilot.press("slash", *"session", "enter")
                pane = app.main.query_one("#events")
                assert pane.terms == ["session"]
                await until(pilot, lambda: "keypair_created" in pane_text(app))
                assert "handshake_initiation_sent" not in pane_text(app)
                await pilot.press("p")
                assert pane.peer_filter == key and "bravo" in pane.border_title

                assert app.main.query_one("#peers").border_title == "1 peer"

                await pilot.press("enter")
                await until(pilot, lambda: isinstance(app.screen, DetailScreen))
                detail = plain(app.screen.query_one("#detail-card").content)
                assert key in detail and "10.0.0.2/32" in detail and "retry —" in detail
                # The main view's filters are not the detail view's: hidden from its footer, and inert.
                offered = set(app.screen.active_bindings)
                assert {"p", "slash", "c"}.isdisjoint(offered), offered
                assert app.screen.active_bindings["d"].binding.action == "app.pop_screen"  # d: back, not detail
                assert {"t", "w", "x", "space", "escape", "q"} <= offered, offered
                events = app.main.query_one("#events")
                first = events.kept[0]
                await pilot.press("p", "slash", "c")
                assert isinstance(app.screen, DetailScreen) and events.peer_filter == key
                assert events.terms == ["session"] and events.kept[0] is first
                assert not app.main.query_one("#filter").has_class("shown")
                # The event switches do act on the detail view's own pane.
                mine = app.screen.query_one("#detail-events")

                def detail_text() -> str:
                    return "\n".join(strip.text for strip in mine.lines)

                assert "timer_fired" not in detail_text()
                await pilot.press("t")
                await until(pilot, lambda: "timer_fired" in detail_text())
                await pilot.press("t")
                await until(pilot, lambda: "timer_fired" not in detail_text())
                # the handshake x-ray of this session: alpha initiated it; its indices and both keys
                await pilot.press("x")
                await until(pilot, lambda: isinstance(app.screen, XRayScreen))
                xray = str(app.screen.query_one("#xray").content)
                cur = app.peer(key)["keypairs"]["current"]
                assert "we were the initiator" in xray and f"Sr_pub (responder) {key}" in xray
                assert f"initiation sender index {cur['local_index']:08x}" in xray
                assert "(Cr, τ, κ) := KDF3(Cr, Q)" in xray and "a PSK mismatch fails exactly here" in xray
                await pilot.press("t")  # the event switches do nothing over the x-ray
                await pilot.press("escape")
                await until(pilot, lambda: isinstance(app.screen, DetailScreen))
                await pilot.press("escape")
                await until(pilot, lambda: not isinstance(app.screen, DetailScreen))

    asyncio.run(main())


def test_node_gone_then_back(tmp_path):
    lab, a, b = lab_pair()
    path = tmp_path / "alpha.ctl"

    async def main():
        app = TopApp(path, retry=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.attempts >= 1)
            assert not app.connected and "node gone" in app.status and "no control socket" in app.status
            async with serve_lab(lab, a, path=path, traffic=None):
                await until(pilot, lambda: app.connected and app.snapshot is not None)
            await until(pilot, lambda: not app.connected)
            assert "node gone" in app.status
            assert "node gone" in pane_text(app) and "attached to lab-alpha" in pane_text(app)
            assert app.main.query_one("#peers").has_class("stale")
            async with serve_lab(lab, a, path=path, traffic=None):  # the node comes back
                await until(pilot, lambda: app.connected)
            await pilot.press("q")

    asyncio.run(main())


def test_top_command_without_a_node(tmp_path, capsys):
    assert cli.main(["top", "--socket-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no running node found" in err
    assert cli.main(["top", "nosuch", "--socket-dir", str(tmp_path)]) == 1
    assert "no node named 'nosuch'" in capsys.readouterr().err


def test_lab_driver_plays_a_script_in_lab_time():
    lab, a, b = lab_pair()
    seen = []

    def story(lab):
        a.ping("10.0.0.2", seq=1)
        yield 2.0
        seen.append(round(lab.now, 3))
        lab.advance(150)  # a clock jump inside the story
        a.ping("10.0.0.2", seq=2)
        yield 1.0
        seen.append(round(lab.now, 3))

    driver = LabDriver(lab, traffic=None, steps=[(1.0, lambda lab: seen.append("step"))], script=story)
    for _ in range(40):
        driver.step(0.1)
    assert seen == ["step", 2.0, 153.0] and driver.finished
    assert a.echo_replies() == [1, 2] and a.peer(b).handshakes_completed == 2  # rekeyed after the jump


def test_the_dashboard_says_when_the_story_is_over(tmp_path):
    """`wgscope demo --tui`: once its script has run, the event pane says so (the lab goes on)."""
    lab, a, b = lab_pair()

    def story(lab):
        a.ping("10.0.0.2", seq=1)
        yield 2.0

    async def main():
        async with serve_lab(lab, a, path=tmp_path / "alpha.ctl", traffic=None, script=story) as server:
            app = TopApp(server.path, retry=0.2)
            told = asyncio.ensure_future(tell_when_finished(server.driver, app))
            async with app.run_test(size=(100, 30)) as pilot:
                await until(pilot, lambda: "the story is over" in pane_text(app))
                lines = pane_text(app).splitlines()
                said = next(n for n, line in enumerate(lines) if "the story is over" in line)
                assert any("handshake_completed" in line for line in lines[:said])  # after the story's acts
                assert server.driver.finished and told.done()

    asyncio.run(main())


def test_demo_tui_runs_headless(tmp_path):
    lab, a, b = lab_pair()
    with contextlib.suppress(SystemExit):
        assert run_demo_tui(lab, a, speed=20.0, path=tmp_path / "demo.ctl", headless=True, exit_after=1.5) == 0
    assert a.echo_replies(), "the default traffic pinged the peer"
    assert not (tmp_path / "demo.ctl").exists()


@pytest.mark.root
@pytest.mark.timeout(90)
def test_dashboard_attached_to_live_node(tmp_path):
    """`wgscope up` (a real process, TUN and UDP) against wireguard-go; the dashboard reads its control socket."""
    require_tools("wireguard-go", "wg", "ping")
    from livenet import Keys, ping, start_wgscope, start_wireguard_go, wg_peer, wgscope_config
    from netns import namespaces, unique, veth, wait_for

    ctl = tmp_path / "ctl"
    with namespaces("A", "B") as (a, b):
        veth(a, "192.0.2.1/24", b, "192.0.2.2/24")
        ka, kb = Keys(), Keys()
        ifa, ifb = unique("wtu"), unique("wtg")
        conf = wgscope_config(tmp_path / f"{ifa}.conf", ka, listen_port=51820, addresses=["10.9.0.1/24"],
                              peers=[dict(public_key=kb.public_b64, allowed_ips=["10.9.0.2/32"],
                                          endpoint="192.0.2.2:51821")])
        node = start_wgscope(a, tmp_path, ifa, conf, env={"WGSCOPE_CONTROL_DIR": str(ctl)})
        start_wireguard_go(b, ifb, kb, tmp_path, listen_port=51821, address=["10.9.0.2/24"])
        wg_peer(b, ifb, ka.public_b64, allowed=["10.9.0.1/32"])
        wait_for(lambda: (ctl / f"{ifa}.ctl").exists(), 10, what="control socket")
        ping(a, "10.9.0.2", count=2)

        async def main():
            app = TopApp(ctl / f"{ifa}.ctl", retry=0.2)
            async with app.run_test(size=(80, 24)) as pilot:
                await until(pilot, lambda: app.snapshot is not None, timeout=10)
                assert cell(app, kb.public_b64, "state") == "established"
                assert app.peer(kb.public_b64)["rx_packets"] >= 2
                bar = str(app.query_one(NodeBar).content)
                assert "pkt/read" in bar, bar  # the live node's TUN counters reach the node bar
                node.terminate()
                await until(pilot, lambda: not app.connected, timeout=10)
                assert "node gone" in app.status

        asyncio.run(main())


def test_readme_picture_is_the_demo(tmp_path):
    """The screenshot helper draws `wgscope demo --tui`'s own lab after its story: peers the demo makes only."""
    from wgscope.tui import screenshot

    svg = asyncio.run(screenshot.capture((100, 30), settle=2.0)).replace("&#160;", " ")
    assert "wgscope demo --tui — lab node alpha" in svg and "bravo" in svg and "charlie" not in svg
    assert "handshake_completed" in svg and "cookie_used" in svg and "(we initiated)" in svg
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "docs/dashboard.png" in readme
    assert "charlie" not in (Path(__file__).resolve().parent.parent / "docs" / "dashboard.svg").read_text()


def test_xray_with_the_nodes_capture_shows_real_values(tmp_path):
    """Given the node's --capture file (it carries the session keys), x shows the session's handshake
    with its real values, re-computed from that capture."""
    import argparse

    from wgscope.sinks.setup import add_sink_arguments, attach_sinks

    lab, a, b = lab_pair()
    key = a.peer(b).name
    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    capture = tmp_path / "alpha.pcapng"
    sinks = attach_sinks(a.bus, parser.parse_args(["--capture", str(capture)]), lambda: a.device.snapshot(lab.now),
                         "alpha", wall_offset=a.device.wall_offset, warn=None)

    async def main():
        async with serve_lab(lab, a, path=tmp_path / "alpha.ctl", traffic=None) as server:
            a.ping("10.0.0.2")
            lab.run(1.0)
            app = TopApp(server.path, retry=0.2, capture=capture)
            async with app.run_test(size=(100, 30)) as pilot:
                await until(pilot, lambda: app.snapshot and cell(app, key, "state") == "established")
                await pilot.press("enter")
                await until(pilot, lambda: isinstance(app.screen, DetailScreen))
                await pilot.press("x")
                await until(pilot, lambda: isinstance(app.screen, XRayScreen))
                return str(app.screen.query_one("#xray").content), app.peer(key)["keypairs"]["current"]

    try:
        text, cur = asyncio.run(main())
    finally:
        sinks.close()
    assert "which carries the session keys" in text and "redacted" not in text
    assert f"[  4:  8] sender     {cur['local_index'].to_bytes(4, 'little').hex()}" in text
    assert "(Ti_send = Tr_recv, Ti_recv = Tr_send) := KDF2(Cr, ε)" in text


def test_a_snapshot_between_opening_the_detail_view_and_its_mount(tmp_path):
    """Snapshots and events arrive whenever the node sends them: one that lands after the detail view
    is pushed but before it is composed must not find it half-built (it crashed the control worker)."""
    lab, a, b = lab_pair()
    key = a.peer(b).name

    async def main():
        async with serve_lab(lab, a, path=tmp_path / "alpha.ctl", traffic=None) as server:
            a.ping("10.0.0.2")
            lab.run(1.0)
            app = TopApp(server.path, retry=0.2)
            async with app.run_test(size=(100, 30)) as pilot:
                await until(pilot, lambda: app.snapshot and cell(app, key, "state") == "established")
                app.push_screen(DetailScreen(key))  # not awaited: the screen is on the stack, not yet composed
                app.on_control({"type": "snapshot", "data": app.snapshot})
                app.on_control({"type": "event", "event": "keepalive_sent", "peer": key, "time": lab.now})
                app._flush_events()
                await pilot.press("space", "space")  # pause and resume reach the detail pane too
                await until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.query("#detail-events"))
                detail = app.screen.query_one("#detail-events")
                await until(pilot, lambda: any("keepalive_sent" in s.text for s in detail.lines))
                assert key in plain(app.screen.query_one("#detail-card").content)

    asyncio.run(main())
