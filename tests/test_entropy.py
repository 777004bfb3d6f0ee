"""The injected source of randomness, and the core calls that act at once."""

from lab_helpers import pair

from wgscope.events import EventBus
from wgscope.protocol import tai64n
from wgscope.protocol.actions import SendDatagram
from wgscope.protocol.crypto import public_key
from wgscope.protocol.device import Device
from wgscope.protocol.entropy import Entropy
from wgscope.protocol.messages import parse_initiation


def _draws(e: Entropy) -> list:
    return [e.index("initiation", bytes(32)), e.ephemeral_private("initiation", bytes(32)), e.jitter(0.334),
            e.cookie_secret(), e.cookie_nonce(), e.private_key(), e.preshared_key(), e.fraction(),
            e.derive().index("response", bytes(32))]


def test_seeded_is_deterministic_and_the_default_is_not():
    assert _draws(Entropy.seeded(5)) == _draws(Entropy.seeded(5))
    assert _draws(Entropy.seeded(5)) != _draws(Entropy.seeded(6))
    assert _draws(Entropy()) != _draws(Entropy())
    key = Entropy.seeded(5).private_key()
    assert key[0] & 7 == 0 and key[31] & 0xC0 == 0x40  # clamped as wg genkey does


class Given(Entropy):
    """As replay will: the index, ephemeral and timestamp of a known initiation."""

    INDEX, EPHEMERAL, STAMP = 0x0A0B0C0D, bytes(range(1, 33)), tai64n.stamp(1_767_225_600.5)

    def __init__(self) -> None:
        super().__init__(seed=1)
        self.calls = []

    def index(self, message, peer):
        self.calls.append(("index", message, peer))
        return self.INDEX

    def ephemeral_private(self, message, peer):
        self.calls.append(("ephemeral", message, peer))
        return self.EPHEMERAL

    def tai64n(self, wall):
        self.calls.append(("tai64n", wall))
        return self.STAMP


def test_an_entropy_subclass_decides_what_goes_on_the_wire():
    given = Given()
    me = Device(Entropy.seeded(1).private_key(), bus=EventBus(), entropy=given, wall_offset=1000.0)
    them = Device(Entropy.seeded(2).private_key(), bus=EventBus())
    peer = me.add_peer(them.public_key, endpoint=("192.0.2.2", 51820))
    them.add_peer(me.public_key)
    (action,) = me.initiate_handshake(peer, 3.0)
    msg = parse_initiation(action.data)
    assert msg.sender == Given.INDEX and msg.ephemeral == public_key(Given.EPHEMERAL)
    assert given.calls == [("index", "initiation", them.public_key), ("ephemeral", "initiation", them.public_key),
                           ("tai64n", 1003.0)]
    answer = them.receive_datagram(action.data, ("192.0.2.1", 51820), 0.0)
    assert [type(a) for a in answer] == [SendDatagram]  # a response: the initiation authenticated
    assert them.peers[me.public_key].handshake.last_timestamp == Given.STAMP


def test_force_handshake_and_send_keepalive_now():
    lab, a, b = pair()
    peer = a.peer(b)
    assert len(a.device.initiate_handshake(peer, lab.now)) == 1
    assert a.device.initiate_handshake(peer, lab.now) == []  # one per REKEY_TIMEOUT for the timers
    forced = a.device.force_handshake(peer, lab.now)
    assert len(forced) == 1 and a.recorder.of("handshake_initiation_sent")[-1].fields["attempt"] == 1
    a.apply(forced)
    lab.run(1)
    (keepalive,) = a.device.send_keepalive_now(peer, lab.now)
    assert len(keepalive.data) == 32 and a.recorder.of("keepalive_sent")[-1].fields["reason"] == "persistent"
