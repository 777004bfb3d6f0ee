import pytest

from wgscope.protocol import messages as m


def test_roundtrip_all_kinds():
    init = m.Initiation(0xDEADBEEF, b"e" * 32, b"s" * 48, b"t" * 28, b"1" * 16, b"2" * 16)
    assert m.parse(m.pack_initiation(init)) == init
    resp = m.Response(1, 2, b"e" * 32, b"n" * 16, b"1" * 16, b"2" * 16)
    assert m.parse(m.pack_response(resp)) == resp
    cookie = m.CookieReply(7, b"n" * 24, b"c" * 32)
    assert m.parse(m.pack_cookie_reply(cookie)) == cookie
    hdr, payload = m.parse(m.pack_transport_header(5, 2**64 - 1) + b"x" * 16)
    assert hdr == m.TransportHeader(5, 2**64 - 1) and payload == b"x" * 16


def test_little_endian_layout():
    data = m.pack_transport_header(0x01020304, 1)
    assert data[:4] == b"\x04\x00\x00\x00" and data[4:8] == b"\x04\x03\x02\x01" and data[8] == 1


@pytest.mark.parametrize("data,reason", [
    (b"", "truncated"),
    (b"\x01\x00", "truncated"),
    (b"\x05\x00\x00\x00" + bytes(144), "unknown_type"),
    (b"\x00\x00\x00\x00" + bytes(144), "unknown_type"),
    (b"\x01\x00\x01\x00" + bytes(144), "reserved_nonzero"),
    (b"\x01\x00\x00\x00" + bytes(143), "truncated"),
    (b"\x01\x00\x00\x00" + bytes(145), "oversized"),
    (b"\x02\x00\x00\x00" + bytes(87), "truncated"),
    (b"\x02\x00\x00\x00" + bytes(89), "oversized"),
    (b"\x03\x00\x00\x00" + bytes(61), "oversized"),
    (b"\x04\x00\x00\x00" + bytes(27), "truncated"),
    (b"\x04\x00\x00\x80" + bytes(28), "reserved_nonzero"),
])
def test_bad_messages_raise_precise_errors(data, reason):
    with pytest.raises(m.MessageError) as e:
        m.parse(data)
    assert e.value.reason == reason
