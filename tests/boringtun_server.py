"""A WireGuard server that is boringtun: mitmproxy_rs's, the one `mitmdump --mode wireguard` runs
(mitmproxy's proxy/mode_servers.py calls the same start_wireguard_server). Every TCP connection
a peer opens through the tunnel ends here, at the server's user-space TCP stack, whatever its
destination; it is answered as an HTTP server: GET /N returns N random bytes, their sha256 in
the X-Sha256 header.

    python boringtun_server.py HOST PORT SERVER_PRIVATE_KEY PEER_PUBLIC_KEY
"""

import asyncio
import hashlib
import os
import sys

from mitmproxy_rs.wireguard import start_wireguard_server

LIMIT = 64 << 20  # largest body served


async def http(stream) -> None:
    request = b""
    while b"\r\n\r\n" not in request and len(request) < 8192:
        chunk = await stream.read(4096)
        if not chunk:
            return
        request += chunk
    try:
        size = min(int(request.split()[1].strip(b"/")), LIMIT)
    except (IndexError, ValueError):
        size = 0
    body = os.urandom(size)
    head = (f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nX-Sha256: {hashlib.sha256(body).hexdigest()}\r\n"
            f"X-Destination: {stream.get_extra_info('sockname')[0]}\r\nConnection: close\r\n\r\n")
    stream.write(head.encode())
    for start in range(0, size, 1 << 16):
        stream.write(body[start:start + (1 << 16)])
        await stream.drain()
    stream.write_eof()
    await stream.drain()
    stream.close()


async def no_udp(stream) -> None:
    stream.close()


async def main() -> None:
    host, port, private_key, peer = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    server = await start_wireguard_server(host, port, private_key, [peer], http, no_udp)
    print("listening", *server.getsockname(), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
