"""Handshakes answered per second by a responder: wgscope up or wireguard-go in namespace B.

The client (namespace A, this process's child) is wgscope's own sans-IO core: PEERS Devices,
each a distinct static key configured as a peer on the responder, each sending from its own
source address (the responder's per-source rate limiter, 20/s with a burst of 5 under load,
WG-GO ratelimiter.go, would otherwise be what is measured). The initiations are all made
*before* the clock starts (valid mac1, increasing TAI64N per peer), so the Python client's own
X25519 cost is not in the figure; they are then sent paced at OFFERED per second. A cookie
reply (the responder under load) is opened with the initiation's mac1 and later initiations
from that source carry mac2, as a real initiator would after its retry. The figure is the
handshake responses received per second of sending. The client paces by sleeping in epoll
(bursts of a few initiations a millisecond), not by spinning: a spinning client took a whole
core of the two the responders share. Beside the rate, the responder's CPU time per answered
handshake (utime + stime, all threads): on a machine others load, that moves less than the rate.

    python -m bench.handshakes [--reps 3] [--rounds 40] [--baseline EXE]

runs it alone, wgscope and wireguard-go alternately (bench.run.handshakes_alternating, as `make
bench` does), and prints each implementation's rate, the ratio per round and CPU per handshake.
`--baseline EXE` adds, in each round, a responder run by another build's `wgscope` executable
(e.g. main's, to measure a change before and after in the same rounds). For wgscope responders
the CPU of the loop thread alone (the one that answers; /proc/PID/task/PID) per answer is
reported too: the rate is 1 / that while the thread is at 100% (bench/README.md section 13).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .topology import WGGO, WGSCOPE, namespaces, unique, veth

BASELINE = "wgscope (baseline)"  # another build's wgscope, --baseline EXE
PEERS = 500
ROUND_INTERVAL = 0.06  # per peer: above the 1/50 s flood limit, and 16.7/s per source < 20/s
ROUNDS = 40
PORT = 51830
B4 = "192.0.2.2"
SOURCES = [f"198.51.100.{i}" for i in range(1, 251)] + [f"203.0.113.{i}" for i in range(1, 251)]

CLIENT = r"""
import json, select, socket, sys, time
sys.path.insert(0, sys.argv[1])
from wgscope.keytext import decode
from wgscope.events import EventBus
from wgscope.protocol.device import Device
from wgscope.protocol.constants import LABEL_COOKIE
from wgscope.protocol.crypto import HASH, MAC, XAEAD_OPEN, AuthenticationError
from wgscope.protocol.messages import parse_cookie_reply

spec = json.loads(sys.stdin.read())
server = (spec["server"], spec["port"])
responder = decode(spec["responder"])
cookie_key = HASH(LABEL_COOKIE + responder)
rounds, interval = spec["rounds"], spec["interval"]
devices, socks = [], []
for priv, src in zip(spec["privates"], spec["sources"]):
    d = Device(decode(priv), bus=EventBus(100))
    p = d.add_peer(responder, endpoint=server)
    devices.append((d, p))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((src, 0)); s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    socks.append(s)
t_gen = time.perf_counter()
plan = []  # (socket index, data)
mac1_of = {}  # sender index -> mac1 (to open a cookie reply)
for r in range(rounds):
    now = 10.0 + r * 6.0  # past REKEY_TIMEOUT each round: the core lets the peer initiate again
    for i, (d, p) in enumerate(devices):
        data = d.initiate_handshake(p, now)[0].data
        mac1_of[int.from_bytes(data[4:8], "little")] = data[-32:-16]
        plan.append((i, data))
gen_seconds = time.perf_counter() - t_gen
ep = select.epoll()
for i, s in enumerate(socks):
    ep.register(s.fileno(), select.EPOLLIN)
by_fd = {s.fileno(): i for i, s in enumerate(socks)}
cookies = {}
responses = cookie_replies = 0
gap = interval / len(devices)
last = [0.0]
def drain(timeout=0):
    global responses, cookie_replies
    for fd, _ in ep.poll(timeout):
        i = by_fd[fd]
        while True:
            try:
                data = socks[i].recv(2048)
            except BlockingIOError:
                break
            if data[0] == 2:
                responses += 1
                last[0] = time.perf_counter()
            elif data[0] == 3:
                cookie_replies += 1
                reply = parse_cookie_reply(data)
                mac1 = mac1_of.get(reply.receiver)
                if mac1 is not None:
                    try:
                        cookies[i] = XAEAD_OPEN(cookie_key, reply.nonce, reply.encrypted_cookie, mac1)
                    except AuthenticationError:
                        pass
t0 = time.perf_counter()
k = 0
while k < len(plan):  # paced without spinning: send what is due, then sleep in epoll until the next is
    due_k = min(len(plan), int((time.perf_counter() - t0) / gap) + 1)
    while k < due_k:
        i, data = plan[k]
        cookie = cookies.get(i)
        if cookie is not None:
            data = data[:-16] + MAC(cookie, data[:-16])
        try:
            socks[i].sendto(data, server)
        except OSError:
            pass
        k += 1
    drain(max(0.0, t0 + k * gap - time.perf_counter()))
sent_end = time.perf_counter()
end = sent_end + 0.5
while time.perf_counter() < end:
    drain(0.05)
print(json.dumps({"responses": responses, "cookie_replies": cookie_replies, "sent": len(plan),
                  "seconds": max(sent_end, last[0]) - t0, "send_seconds": sent_end - t0, "generation_seconds": gen_seconds}))
"""


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _thread_cpu_seconds(pid: int, tid: int) -> float:
    """utime + stime of one thread of a process, seconds."""
    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _udp_counters(ns) -> dict[str, int]:
    """The namespace's kernel UDP counters (/proc/net/snmp, "Udp:" lines)."""
    lines = [line.split() for line in ns.run("cat /proc/net/snmp").stdout.splitlines() if line.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


def measure(impl: str, tmp: Path, peers: int = PEERS, rounds: int = ROUNDS, executable: str | None = None) -> dict:
    """Run the client against `impl` as responder; also report the responder's RSS with `peers` peers.
    `executable`: a wgscope responder runs this `wgscope` (another build) instead of this tree's."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import livenet
    from livenet import Keys, start_wgscope, start_wireguard_go, wgscope_config

    tmp.mkdir(parents=True, exist_ok=True)
    clients = [Keys() for _ in range(peers)]
    sources = SOURCES[:peers]
    server = Keys()
    with namespaces("hA", "hB") as (a, b):
        va, vb = veth(a, "192.0.2.1/24", b, f"{B4}/24")
        batch = tmp / "addrs.batch"
        batch.write_text("".join(f"addr add {s}/32 dev {va}\n" for s in sources))
        a.run(f"ip -batch {batch}")
        b.run(f"ip route add 198.51.100.0/24 dev {vb}")
        b.run(f"ip route add 203.0.113.0/24 dev {vb}")
        ifname = unique("hsr")
        allowed = [f"10.77.{i // 250}.{i % 250 + 1}/32" for i in range(peers)]
        if impl == WGSCOPE:
            conf = wgscope_config(tmp / f"{ifname}.conf", server, listen_port=PORT, addresses=["10.76.0.1/24"],
                                  peers=[dict(public_key=c.public_b64, allowed_ips=[n]) for c, n in zip(clients, allowed)])
            saved, livenet.WGSCOPE = livenet.WGSCOPE, executable or livenet.WGSCOPE
            try:
                pid = start_wgscope(b, tmp, ifname, conf).proc.pid
            finally:
                livenet.WGSCOPE = saved
        else:
            pid = start_wireguard_go(b, ifname, server, tmp, listen_port=PORT).pid
            conf = tmp / f"{ifname}.wg.conf"
            conf.write_text("".join(f"[Peer]\nPublicKey = {c.public_b64}\nAllowedIPs = {n}\n\n"
                                    for c, n in zip(clients, allowed)))
            b.run(f"wg addconf {ifname} {conf}")
        time.sleep(0.5)
        rss = _rss_kib(pid)
        spec = {"server": B4, "port": PORT, "responder": server.public_b64, "rounds": rounds,
                "interval": ROUND_INTERVAL, "privates": [c.private_b64 for c in clients], "sources": sources}
        proc = a.popen([sys.executable, "-c", CLIENT, str(Path(__file__).resolve().parent.parent)],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        cpu_before, loop_before = _cpu_seconds(pid), _thread_cpu_seconds(pid, pid)
        udp_before = _udp_counters(a), _udp_counters(b)
        out, _ = proc.communicate(json.dumps(spec), timeout=300)
        cpu = _cpu_seconds(pid) - cpu_before
        loop_cpu = _thread_cpu_seconds(pid, pid) - loop_before
        udp_after = _udp_counters(a), _udp_counters(b)
        result = json.loads(out.strip().splitlines()[-1])
        result["handshakes_per_second"] = result["responses"] / result["seconds"]
        # the responder's CPU per answer: what a whole core would do, whatever else the machine runs
        result["cpu_us_per_handshake"] = round(1e6 * cpu / result["responses"], 1) if result["responses"] else None
        if impl == WGSCOPE:  # its loop thread answers; wireguard-go's main thread does not
            result["loop_cpu_us_per_handshake"] = round(1e6 * loop_cpu / result["responses"], 1) if result["responses"] else None
        result["offered_per_second"] = result["sent"] / result["send_seconds"]
        result["responder_rss_kib"] = rss
        # Where datagrams went in the kernel, the same for both responders: initiations the responder
        # had read by the end (InDatagrams counts at recvmsg) and those its socket refused (RcvbufErrors,
        # a full receive buffer); answers that came after the client stopped listening (NoPorts).
        (a0, b0), (a1, b1) = udp_before, udp_after
        result["kernel_udp"] = {"responder_read": b1["InDatagrams"] - b0["InDatagrams"],
                                "responder_rcvbuf_errors": b1["RcvbufErrors"] - b0["RcvbufErrors"],
                                "responder_sndbuf_errors": b1["SndbufErrors"] - b0["SndbufErrors"],
                                "answers_after_the_end": a1["NoPorts"] - a0["NoPorts"]}
        result["peers"] = peers
        return result


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.handshakes [--reps 3] [--rounds 40]`: wgscope and wireguard-go alternately."""
    import argparse
    import tempfile

    from .run import handshakes_alternating

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3, help="rounds, each wgscope then wireguard-go")
    p.add_argument("--rounds", type=int, default=ROUNDS, help="initiations per client peer in one run")
    p.add_argument("--baseline", metavar="EXE", help="also, in each round, a responder run by this wgscope executable")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="wgscope-hs-") as tmp:
        out = handshakes_alternating(Path(tmp), a.reps, a.rounds, a.baseline)
    for impl in (WGSCOPE, WGGO, BASELINE):
        h = out.get(impl)
        if h:
            print(f"{impl}: {h['handshakes_per_second']:.0f}/s (runs {h['runs_per_second']}), "
                  f"responder CPU {h['cpu_us_per_handshake']} us/handshake"
                  + (f", loop thread {h['loop_cpu_us_per_handshake']}" if h.get("loop_cpu_us_per_handshake") else "")
                  + f", offered {h['offered_per_second']:.0f}/s")
    print(f"handshakes/s wgscope / wireguard-go per round: {out['per_round']}; CPU/handshake "
          f"{out['cpu_us_per_handshake']}")
    if a.baseline:
        print(f"handshakes/s baseline / wireguard-go per round: {out['baseline_per_round']}; "
              f"wgscope / baseline per round: {out['per_round_to_baseline']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
