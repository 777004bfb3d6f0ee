"""Protocol constants, each with its source.

WP = the WireGuard whitepaper (Donenfeld, "WireGuard: Next Generation Kernel Network Tunnel",
revision e2da747), section numbers given. WG-GO = wireguard-go, device/constants.go unless
another file is named.
"""

# --- Noise and labels (WP §5.4) ---
CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1 = b"mac1----"
LABEL_COOKIE = b"cookie--"

# --- Message types (WP §5.4.2-5.4.7) ---
MESSAGE_INITIATION = 1
MESSAGE_RESPONSE = 2
MESSAGE_COOKIE_REPLY = 3
MESSAGE_TRANSPORT = 4

# --- Message sizes (WP §5.4.2-5.4.6; WG-GO device/noise-protocol.go) ---
KEY_SIZE = 32
TAG_SIZE = 16  # Poly1305
MAC_SIZE = 16  # keyed BLAKE2s-128
TIMESTAMP_SIZE = 12  # TAI64N
COOKIE_NONCE_SIZE = 24  # XChaCha20
COOKIE_SIZE = 16
INITIATION_SIZE = 148
RESPONSE_SIZE = 92
COOKIE_REPLY_SIZE = 64
TRANSPORT_HEADER_SIZE = 16
TRANSPORT_MIN_SIZE = TRANSPORT_HEADER_SIZE + TAG_SIZE  # keepalive: empty payload + tag
PADDING_MULTIPLE = 16  # WP §5.4.6; WG-GO PaddingMultiple

# --- Timers and limits (WP §6.1 table; WG-GO device/constants.go) ---
REKEY_AFTER_MESSAGES = 1 << 60
REJECT_AFTER_MESSAGES = (1 << 64) - (1 << 13) - 1  # WG-GO RejectAfterMessages (WP: 2^64 - 2^13 - 1)
REKEY_AFTER_TIME = 120.0
REJECT_AFTER_TIME = 180.0
REKEY_ATTEMPT_TIME = 90.0
REKEY_TIMEOUT = 5.0
KEEPALIVE_TIMEOUT = 10.0
COOKIE_REFRESH_TIME = 120.0  # WP §5.4.7 ("every two minutes"); WG-GO CookieRefreshTime
MAX_TIMER_HANDSHAKES = int(REKEY_ATTEMPT_TIME / REKEY_TIMEOUT)  # 18, WG-GO MaxTimerHandshakes
REKEY_TIMEOUT_JITTER_MAX = 0.334  # WG-GO device/timers.go: jitter up to 334 ms (WP §6.4 "jitter")
HANDSHAKE_INITIATION_RATE = 1.0 / 50  # WG-GO HandshakeInitationRate: at most 50 initiations/s/peer consumed
ZERO_KEY_MATERIAL_AFTER = REJECT_AFTER_TIME * 3  # WP §6.3; WG-GO timers.go expiredZeroKeyMaterial
# An initiator rekeys on receive when the keypair is this old (WG-GO send.go keepKeyFreshReceiving).
REKEY_ON_RECEIVE_AGE = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT

# --- Queues and windows ---
QUEUE_STAGED_SIZE = 128  # WG-GO QueueStagedSize: packets held per peer while no session exists
QUEUE_HANDSHAKE_SIZE = 1024  # WG-GO QueueHandshakeSize
UNDER_LOAD_QUEUE_DEPTH = QUEUE_HANDSHAKE_SIZE // 8  # WG-GO device.go IsUnderLoad: queue >= size/8
UNDER_LOAD_AFTER_TIME = 1.0  # WG-GO device.go UnderLoadAfterTime: stay under load 1 s after
# Replay window: WG-GO replay/replay.go — 128 blocks of 64 bits, one block kept free for the
# ring: window = (128 - 1) * 64 = 8128 counters (the Linux module uses 8192 - 64 = 8128 too,
# drivers/net/wireguard/noise.h COUNTER_WINDOW_SIZE).
REPLAY_BLOCK_BITS = 64
REPLAY_RING_BLOCKS = 128
REPLAY_WINDOW_SIZE = (REPLAY_RING_BLOCKS - 1) * REPLAY_BLOCK_BITS

# --- Handshake rate limiter (WG-GO ratelimiter/ratelimiter.go; kernel ratelimiter.c) ---
RATELIMIT_PACKETS_PER_SECOND = 20
RATELIMIT_BURST = 5
RATELIMIT_GC_INTERVAL = 1.0

MAX_PEERS = 1 << 16  # WG-GO MaxPeers
DEFAULT_MTU = 1420  # wg-quick / WG-GO DefaultMTU
MAX_CONTENT_SIZE = (1 << 16) - 1  # WG-GO MaxContentSize (65535)
