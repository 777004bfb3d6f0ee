"""What an attacker or a broken network can do to a lab node, and how to check nothing changed."""


def fingerprint(device) -> dict:
    """Protocol state that a dropped packet must not change."""
    peers = {}
    for key, p in device.peers.items():
        hs = p.handshake
        peers[key] = (
            p.endpoint, hs.state, hs.local_index, hs.remote_index, hs.last_timestamp, hs.chaining_key,
            tuple((k.local_index, k.remote_index, k.send_counter, k.replay.last, tuple(k.replay.ring))
                  for k in (p.keypairs.current, p.keypairs.previous, p.keypairs.next) if k),
            len(p.staged), p.rx_packets, p.tx_packets, p.cookies.cookie,
            tuple(sorted((n, t.deadline) for n, t in p.timers.items())),
        )
    return {"peers": peers, "indices": sorted(device.index_table)}


class Capture:
    """Every datagram that crossed the lab network, by message type."""

    def __init__(self, lab):
        self.wires = []
        lab.network.taps.append(self.wires.append)

    def of_type(self, kind: int, src=None):
        return [w for w in self.wires if w.data and w.data[0] == kind and (src is None or w.src == src)]
