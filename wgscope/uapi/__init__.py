"""The cross-platform userspace configuration protocol ("UAPI") that wg(8) speaks.

https://www.wireguard.com/xplatform/ — a line protocol over a stream socket:

    get=1\\n\\n                 -> key=value lines, then "errno=N\\n\\n"
    set=1\\nkey=value\\n...\\n\\n  -> "errno=N\\n\\n"

Keys are those of wireguard-go's device/uapi.go (the reference userspace implementation)
and wireguard-tools' src/ipc-uapi.h (the client): device keys private_key, listen_port,
fwmark, replace_peers come first; each public_key line then selects (or creates) a peer,
configured by preshared_key, endpoint, persistent_keepalive_interval, replace_allowed_ips,
allowed_ip, update_only, remove, protocol_version.

The sign of the errno line follows what the wg tool does with it (ipc-uapi.h): after a set
it reads `errno=%d` and reports errno = -value, so a set answers errno=-22 for EINVAL (as
wireguard-go does); after a get it accepts only digits and reports errno = value, so a get
answers errno=22. Either way wg prints "Invalid argument".

No sockets here: `UapiConnection` turns bytes in into bytes out for one connection, and
runtime/uapi_socket.py carries them. The node it configures offers:

    node.device                  the protocol Device (only touched from the node's loop)
    node.name                    the interface name
    node.now()                   the protocol clock
    node.apply(actions)          carry out SendDatagram/WritePacket and re-arm timers
    node.set_listen_port(port)   rebind the UDP socket; returns the bound port, raises OSError
    node.set_fwmark(mark)        optional: SO_MARK the UDP socket(s); raises OSError
"""

from .connection import UapiConnection, handle_request
from .get import get_lines, handle_get
from .set import SetOperation, get_error_reply, handle_set, set_reply
from .values import MAX_LINE, MAX_REQUEST, UapiError

__all__ = [
    "MAX_LINE", "MAX_REQUEST", "SetOperation", "UapiConnection", "UapiError", "get_error_reply", "get_lines",
    "handle_get", "handle_request", "handle_set", "set_reply",
]
