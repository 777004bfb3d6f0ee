"""crypto.HMAC is written out for speed; it must stay RFC 2104 HMAC-BLAKE2s as the hmac module computes it."""

import hashlib
import hmac

from hypothesis import given, strategies as st

from wgscope.protocol.crypto import HMAC


@given(st.binary(max_size=100), st.binary(max_size=200))
def test_hmac_is_the_standard_library_hmac(key, data):
    assert HMAC(key, data) == hmac.new(key, data, hashlib.blake2s).digest()
