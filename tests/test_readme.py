"""The README as a newcomer follows it: links stay inside the repository, and the Wireshark
examples print what the text says they print on the capture `wgscope demo` writes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from conftest import require_tools

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_links_point_inside_the_repository():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if not t.startswith(("http://", "https://"))]
    assert local and "docs/architecture.md" in local
    for target in local:
        assert not target.startswith(("..", "/")), target
        assert (ROOT / target).exists(), target
    assert "shared/DESIGN.md" not in README


def tshark_examples() -> list[str]:
    """The README's tshark commands on the demo capture, continuation lines joined, comments cut."""
    text = README.replace("\\\n", " ")
    return [re.sub(r"\s+#.*$", "", line).strip() for line in text.splitlines()
            if line.startswith("tshark -r captures/demo.pcapng")]


def test_wireshark_examples_print_what_the_readme_says(tmp_path):
    require_tools("tshark")
    wgscope = Path(sys.executable).parent / "wgscope"
    out = subprocess.run([str(wgscope), "demo", "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert str(tmp_path / "captures" / "demo.pcapng") in out.stdout.replace("\n", "")  # says where it wrote
    examples = tshark_examples()
    assert len(examples) == 2
    results = []
    for cmd in examples:
        cmd = cmd.replace("lua_script:dissectors/", f"lua_script:{ROOT}/dissectors/")
        r = subprocess.run(cmd, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (cmd, r.stderr)
        results.append(r.stdout)
    pings, handshakes = results
    assert pings.count("Echo (ping) request") >= 100 and "Echo (ping) reply" in pings
    rows = [line.split("\t") for line in handshakes.splitlines()]
    assert {r[2] for r in rows} == {"initiation", "response", "cookie_reply", "keepalive"}
    assert any(r[1:4] == ["in", "cookie_reply", "accepted"] and "cookie reply from peer" in r[4] for r in rows)
    # the README says the "dropped" filter prints nothing on the demo's capture: alpha drops nothing
    dropped = subprocess.run(f"tshark -r captures/demo.pcapng -X lua_script:{ROOT}/dissectors/wgscope.lua "
                             "-Y 'wgscope.verdict == \"dropped\"'", shell=True, cwd=tmp_path, capture_output=True,
                             text=True, timeout=60)
    assert dropped.returncode == 0 and dropped.stdout == ""


def readme_commands() -> list[list[str]]:
    """The arguments of every `wgscope ...` command line in the README's shell blocks (comments and
    redirections cut)."""
    import shlex

    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    commands = []
    for line in "\n".join(blocks).replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        at = next((i for i, w in enumerate(words) if w.endswith("/wgscope")), None)
        if at is None:
            continue
        args, skip = [], False
        for word in words[at + 1:]:
            if skip or word in (">", "<"):
                skip = not skip and word in (">", "<")
                continue
            args.append(word)
        commands.append(args)
    return commands


def test_every_wgscope_command_in_the_readme_parses():
    """Each subcommand and flag the README shows is one the CLI takes (argparse exits on any other)."""
    from wgscope.cli import build_parser

    commands = readme_commands()
    assert {c[0] for c in commands} >= {"genkey", "pubkey", "genpsk", "up", "down", "replay", "doctor"}
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    for args in commands:
        parsed = parser.parse_args(args)
        assert parsed.func is not None, args
        known = subcommands[args[0]]._option_string_actions  # spelled out, not an abbreviation argparse allows
        assert all(w in known for w in args if w.startswith("--")), args
