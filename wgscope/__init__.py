"""wgscope: a userspace WireGuard node that shows its own insides."""

__version__ = "0.1.0"
