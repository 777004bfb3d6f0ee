"""The handshake look-ahead (protocol/lookahead.py, runtime/handshake_ahead.py): a second thread
computes DH(Sr, Ei) of a wake-up's initiations early; nothing the device does may differ.

The same flood (valid initiations, a bad mac1, an unknown key, a source sending twice, a replay)
goes through two responders with the same key and seeded Entropy, one with the look-ahead and
one without: the datagrams sent and the events (names, peers, fields, order) must be equal."""

from __future__ import annotations

import time

from wgscope.events import DEBUG, EventBus
from wgscope.protocol.actions import SendDatagram
from wgscope.protocol.cookie import endpoint_bytes
from wgscope.protocol.device import Device
from wgscope.protocol.entropy import Entropy
from wgscope.protocol.lookahead import EPHEMERAL, candidates
from wgscope.protocol.messages import parse_cookie_reply
from wgscope.protocol.crypto import DH, MAC, XAEAD_OPEN, clamp, public_key
from wgscope.protocol.ratelimiter import RateLimiter
from wgscope.runtime.handshake_ahead import POOL, HandshakeAhead

RESPONDER_KEY = Entropy.seeded("look-ahead responder").private_key()


def _responder(ahead: HandshakeAhead | None, client_keys: list[bytes]) -> tuple[Device, list]:
    events: list = []
    bus = EventBus(DEBUG)
    bus.subscribe(lambda ev: events.append((ev.name, ev.time, ev.peer, ev.fields)), DEBUG)
    device = Device(RESPONDER_KEY, bus=bus, entropy=Entropy.seeded(7))
    for key in client_keys:
        device.add_peer(key)
    device.ahead = ahead
    return device, events


def _clients(n: int) -> list[tuple[Device, object]]:
    out = []
    for i in range(n):
        d = Device(Entropy.seeded(f"client {i}").private_key(), entropy=Entropy.seeded(100 + i))
        out.append((d, d.add_peer(Device(RESPONDER_KEY).identity.public, endpoint=("192.0.2.2", 51820))))
    return out


def _flood(clients) -> list[list[tuple[bytes, tuple]]]:
    """Wake-ups of (datagram, source): rounds of initiations from every client, plus the odd ones."""
    stranger = _clients(1)[0]
    *clients, extra = clients  # extra sends from another client's address
    wakeups = []
    for r in range(3):
        now = 10.0 + 6.0 * r
        batch = [(d.initiate_handshake(p, now)[0].data, (f"198.51.100.{i + 1}", 4000 + i))
                 for i, (d, p) in enumerate(clients)]
        bad_mac1 = bytearray(batch[0][0])
        bad_mac1[-20] ^= 1
        batch.insert(2, (bytes(bad_mac1), ("203.0.113.9", 9)))
        batch.insert(4, (batch[1][0], ("203.0.113.10", 10)))  # the same initiation again, from elsewhere: a replay
        batch.append((stranger[0].initiate_handshake(stranger[1], now)[0].data, ("203.0.113.11", 11)))
        batch.append((extra[0].initiate_handshake(extra[1], now)[0].data, batch[3][1]))  # a source sending twice
        wakeups += [batch[:9], batch[9:]]
    return wakeups


def _run(device: Device, wakeups, under_load: bool, wait_for_ahead: bool) -> list[bytes]:
    sent = []
    if under_load:
        device.set_forced_load(True, 0.0)
    for w, batch in enumerate(wakeups):
        now = 20.0 + 6.0 * (w // 2)
        device.look_ahead([([data], source) for data, source in batch], now)  # a no-op without one
        if device.ahead is not None:
            assert device.wants_look_ahead(now) == under_load  # the live node reads ahead only under load
            if wait_for_ahead:  # let the thread finish, so the test sees DHs taken from it
                deadline = time.monotonic() + 5
                while device.ahead.computed < device.ahead.submitted and time.monotonic() < deadline:
                    time.sleep(0.001)
        for data, source in batch:
            sent += [a.data for a in device.receive_datagram(data, source, now) if type(a) is SendDatagram]
    return sent


def _with_mac2(wakeups, responders) -> list:
    """Under load every initiation carries mac2 with its source's cookie, made by a third device
    with the responders' key whose cookie secret the responders are then given."""
    device = Device(RESPONDER_KEY, entropy=Entropy.seeded(99))
    out = []
    cookies = {}
    for batch in wakeups:
        fixed = []
        for data, source in batch:
            if source not in cookies:
                reply = device.cookie_checker.create_reply(data, 0, endpoint_bytes(*source), 20.0)
                msg = parse_cookie_reply(reply)
                cookies[source] = XAEAD_OPEN(device.identity.cookie_key, msg.nonce, msg.encrypted_cookie,
                                             data[-32:-16])
            fixed.append((data[:-16] + MAC(cookies[source], data[:-16]), source))
        out.append(fixed)
    for responder in responders:
        responder.cookie_checker.secret = device.cookie_checker.secret
        responder.cookie_checker.secret_set = device.cookie_checker.secret_set
    return out


def test_the_look_ahead_changes_nothing_the_device_does():
    clients = _clients(12)
    keys = [d.identity.public for d, _ in clients]
    wakeups = _flood(clients)
    for under_load in (False, True):
        ahead = HandshakeAhead()
        try:
            plain, plain_events = _responder(None, keys)
            looked, looked_events = _responder(ahead, keys)
            flood = _with_mac2(wakeups, (plain, looked)) if under_load else wakeups
            assert _run(looked, flood, under_load, True) == _run(plain, flood, under_load, False)
            assert looked_events == plain_events
            assert ahead.taken > 20  # the DHs did come from the thread
        finally:
            ahead.close()


def test_candidates_are_what_the_receive_path_would_open():
    clients = _clients(4)
    device, _ = _responder(None, [d.identity.public for d, _ in clients])
    good = [d.initiate_handshake(p, 10.0)[0].data for d, p in clients]
    bad = bytearray(good[1])
    bad[-20] ^= 1  # mac1
    batch = [([good[0]], ("198.51.100.1", 1)), ([bytes(bad)], ("198.51.100.2", 2)),
             ([good[2]], ("198.51.100.1", 3)),  # a second from one source: not ahead
             ([good[3][:100]], ("198.51.100.4", 4)), ([good[3]], ("198.51.100.5", 5))]
    assert candidates(device, batch, 20.0) == [good[0][EPHEMERAL], good[3][EPHEMERAL]]
    device.set_forced_load(True, 20.0)
    assert candidates(device, batch, 20.0) == []  # under load: no mac2 (no cookie), nothing ahead


def test_would_allow_reads_the_bucket_without_spending():
    limiter = RateLimiter()
    answers = []
    for i in range(12):
        expected = limiter.would_allow("198.51.100.1", 1.0)
        assert limiter.would_allow("198.51.100.1", 1.0) == expected
        answers.append((expected, limiter.allow("198.51.100.1", 1.0)))
    assert all(would == did for would, did in answers)
    assert [did for _, did in answers].count(True) == 5  # the burst (WG-GO ratelimiter.go packetsBurstable)


def test_a_dh_is_taken_only_for_the_key_it_was_made_with():
    ahead = HandshakeAhead()
    try:
        me, other = Entropy.seeded(1).private_key(), Entropy.seeded(2).private_key()
        ephemeral = Device(Entropy.seeded(3).private_key()).identity.public
        ahead.submit(me, [ephemeral])
        deadline = time.monotonic() + 5
        while ahead.computed < 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert ahead.take(other, ephemeral) is None
        assert ahead.take(me, ephemeral) == DH(me, ephemeral)
        assert ahead.take(me, ephemeral) is None  # taken once
    finally:
        ahead.close()


def _wait_for_pool(ahead: HandshakeAhead) -> None:
    deadline = time.monotonic() + 5
    while ahead.ephemerals_made < POOL and time.monotonic() < deadline:
        time.sleep(0.001)


def test_the_pool_hands_out_each_ephemeral_key_pair_once_and_refills():
    ahead = HandshakeAhead()
    try:
        _wait_for_pool(ahead)
        pairs = [ahead.ephemeral() for _ in range(POOL)]
        assert all(pair is not None and pair[1] == public_key(pair[0]) and pair[0] == clamp(pair[0]) for pair in pairs)
        assert len({private for private, _ in pairs}) == POOL
        deadline = time.monotonic() + 5  # half gone asked for a refill
        while ahead.ephemerals_made < 2 * POOL and time.monotonic() < deadline:
            time.sleep(0.001)
        assert ahead.ephemerals_made >= 2 * POOL - POOL // 2 and ahead.ephemeral() is not None
    finally:
        ahead.close()


def test_a_response_takes_its_ephemeral_from_the_pool_and_still_completes_the_handshake():
    clients = _clients(2)
    responder = Device(RESPONDER_KEY)  # the OS-drawn default, as the live node's
    for client, _ in clients:
        responder.add_peer(client.identity.public)
    ahead = HandshakeAhead()
    try:
        _wait_for_pool(ahead)
        responder.ahead = ahead
        given: list = []
        responder.entropy.ephemeral_pairs = lambda: given.append(ahead.ephemeral()) or given[-1]
        for i, (client, peer) in enumerate(clients):
            initiation = client.initiate_handshake(peer, 10.0)[0].data
            response = responder.receive_datagram(initiation, (f"198.51.100.{i + 1}", 1), 10.0)[0].data
            assert given[i] is not None and response[12:44] == given[i][1]  # msg.ephemeral: the pooled public key
            client.receive_datagram(response, ("192.0.2.2", 51820), 10.0)
            assert peer.keypairs.current is not None  # the initiator consumed it
        assert given[0] != given[1] and ahead.ephemerals_taken == 2
    finally:
        ahead.close()


def test_a_seeded_entropy_never_takes_from_the_pool():
    seeded = Entropy.seeded(5)
    seeded.ephemeral_pairs = lambda: (bytes(32), bytes(32))
    assert seeded.ephemeral_keypair("response", b"") == (Entropy.seeded(5).ephemeral_private("response", b""), None)


def test_macs_checked_ahead_answer_the_receive_path_only_for_the_same_message_source_and_secret():
    clients = _clients(2)
    device, _ = _responder(None, [d.identity.public for d, _ in clients])
    device.set_forced_load(True, 20.0)
    source, elsewhere = ("198.51.100.1", 1), ("198.51.100.2", 2)
    initiation = clients[0][0].initiate_handshake(clients[0][1], 10.0)[0].data
    [flood] = _with_mac2([[(initiation, source)]], (device,))
    data = flood[0][0]
    checker = device.cookie_checker
    assert candidates(device, [([data], source)], 20.0) == [data[EPHEMERAL]]
    assert checker.checked_ahead == {data: (endpoint_bytes(*source), checker.secret)}
    checker.mac1_key = bytes(32)  # were it computed, mac1 would now fail: the answers below come from the memo
    assert checker.check_mac1(data) and checker.check_mac2(data, endpoint_bytes(*source), 20.0)
    assert not checker.check_mac2(data, endpoint_bytes(*elsewhere), 20.0)  # another source: computed, refused
    other = bytearray(data)
    other[-20] ^= 1
    assert not checker.check_mac1(bytes(other))  # a message not checked ahead: computed
    checker.secret = bytes(32)  # a new cookie secret (another object): computed again, refused
    assert not checker.check_mac2(data, endpoint_bytes(*source), 20.0)
    assert candidates(device, [], 21.0) == [] and checker.checked_ahead == {}  # the next wake-up replaces them
