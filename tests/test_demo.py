import os
import subprocess
import sys


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "wgscope.cli", *args], capture_output=True, text=True,
                          input=stdin, timeout=120)


def test_demo_tells_the_whole_story_and_exits_zero():
    r = run("demo")
    assert r.returncode == 0, r.stdout + r.stderr
    out = " ".join(r.stdout.split())
    for phrase in ("sends a handshake initiation", "has a new session as initiator",
                   "wants a new handshake (rekey_after_time", "answers 192.0.2.1:51820 with a cookie reply",
                   "with mac2 from a cookie", "endpoint move 192.0.2.1:51820 -> 198.51.100.1:40000",
                   "all 5 steps behaved"):
        assert phrase in out, phrase
    assert "Traceback" not in r.stderr


def test_demo_reads_whole_in_an_80_column_terminal():
    r = subprocess.run([sys.executable, "-m", "wgscope.cli", "demo"], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "COLUMNS": "80"})
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert "\u2026" not in r.stdout  # nothing cut to an ellipsis: not the table's cells, not its headers
    # a wrapped sentence continues under itself, after the time and the node's name
    at = next(i for i, line in enumerate(lines) if "(index" in line and "attempt" in lines[i + 1])
    assert lines[at + 1].startswith(" " * len("  t= 144.172s alpha "))
    row = next(line for line in lines if line.startswith("bravo "))
    assert "198.51.100.1:40000" in row and "138 pkts" in row


def test_genkey_pubkey_match_wg_format():
    priv = run("genkey").stdout.strip()
    assert len(priv) == 44 and priv.endswith("=")
    pub = run("pubkey", stdin=priv + "\n").stdout.strip()
    import base64
    raw = base64.b64decode(priv)
    assert raw[0] & 7 == 0 and raw[31] & 0xC0 == 0x40  # clamped like wg genkey
    from wgscope.keytext import pubkey
    assert pub == pubkey(priv)


def test_pubkey_agrees_with_wg_tool():
    import shutil
    import pytest
    if not shutil.which("wg"):
        pytest.skip("wg (wireguard-tools) not installed")
    priv = run("genkey").stdout
    theirs = subprocess.run(["wg", "pubkey"], input=priv, capture_output=True, text=True).stdout.strip()
    assert run("pubkey", stdin=priv).stdout.strip() == theirs
    ours_from_wg = subprocess.run(["wg", "genkey"], capture_output=True, text=True).stdout
    assert run("pubkey", stdin=ours_from_wg).stdout.strip() == subprocess.run(
        ["wg", "pubkey"], input=ours_from_wg, capture_output=True, text=True).stdout.strip()


def test_bad_key_is_one_line_error():
    r = run("pubkey", stdin="not-a-key\n")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_replaying_the_demo_capture_reproduces_what_the_nodes_reported(tmp_path):
    capture = tmp_path / "demo.pcapng"
    r = run("demo", "--quiet", "--capture", str(capture))
    assert r.returncode == 0, r.stderr
    from wgscope.replay.driver import replay_capture

    replayed = replay_capture(capture)
    # the summary table: each node 3 handshakes, alpha sent 140 transport packets and bravo 138
    assert [h.outcome for h in replayed.handshakes].count("completed") == 3
    assert [h.outcome for h in replayed.handshakes].count("unanswered") == 1  # the one answered by a cookie
    assert len(replayed.cookies) == 1 and len(replayed.roams) == 1
    assert sorted(p.decrypted for p in replayed.parties) == [138, 140]
    assert "140 pkts" in r.stdout and "138 pkts" in r.stdout


def test_demo_with_one_seed_writes_identical_captures(tmp_path):
    """Every random input of the lab comes from its seed (protocol/entropy.py): two runs in fresh
    directories (no captures/ yet, different hash seeds) write the same bytes."""
    captures = []
    for n, hash_seed in enumerate(("1", "2")):
        where = tmp_path / f"run{n}"
        where.mkdir()
        r = subprocess.run([sys.executable, "-m", "wgscope.cli", "demo", "--seed", "11", "--quiet"], cwd=where,
                           capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        captures.append((where / "captures" / "demo.pcapng").read_bytes())
    assert len(captures[0]) > 10_000 and captures[0] == captures[1]
    other = tmp_path / "other.pcapng"
    assert run("demo", "--seed", "12", "--quiet", "--capture", str(other)).returncode == 0
    assert other.read_bytes() != captures[0]  # the seed is what decides


def test_genkey_warns_like_wg_when_the_file_is_world_accessible(tmp_path):
    """wg genkey/genpsk's check (wireguard-tools genkey.c): a regular file others may read gets
    a warning on stderr; a 0600 file and a pipe get none."""
    from wgscope.commands.keygen import WORLD_ACCESSIBLE

    for command in ("genkey", "genpsk"):
        for mode, warned in ((0o644, True), (0o600, False)):
            out = tmp_path / f"{command}-{mode:o}"
            out.touch(mode)
            out.chmod(mode)
            with out.open("w") as f:
                r = subprocess.run([sys.executable, "-m", "wgscope.cli", command], stdout=f, stderr=subprocess.PIPE,
                                   text=True, timeout=60)
            assert r.returncode == 0 and len(out.read_text().strip()) == 44
            assert (WORLD_ACCESSIBLE in r.stderr) is warned, (command, mode, r.stderr)
    assert WORLD_ACCESSIBLE not in run("genkey").stderr  # a pipe


def test_demo_refuses_a_capture_in_a_missing_directory_and_a_bad_speed(tmp_path):
    """Only the default captures/ is made: a path the user names must exist, as for `wgscope up`."""
    missing = tmp_path / "no-such-dir" / "x.pcapng"
    r = run("demo", "--quiet", "--capture", str(missing))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot write capture" in r.stderr
    assert not missing.parent.exists()
    for speed in ("0", "-1", "nan", "inf"):
        r = run("demo", "--speed", speed)
        assert r.returncode == 1 and "--speed must be a positive number" in r.stderr and "Traceback" not in r.stderr
