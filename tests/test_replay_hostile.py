"""A capture is untrusted input (issue 13, item 5): forged messages of every type, random indices
and counters, truncated files, flipped bits, absurd block/record/secrets/option lengths and
timestamps, random bytes, an empty file — replayed in a subprocess whose address space is capped
at 1.5 GB: findings or one clear line and exit 1, never a traceback, a hang or a runaway allocation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
LIMIT = 1_500_000_000


def test_hostile_captures_under_a_memory_limit(tmp_path):
    made = subprocess.run([sys.executable, str(HERE / "hostile_captures.py"), str(tmp_path)], capture_output=True,
                          text=True, timeout=120, check=True).stdout.split()
    assert len(made) >= 30
    proc = subprocess.run([sys.executable, str(HERE / "hostile_captures.py"), "--run", str(LIMIT), *made],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == 3 * len(made)  # --json, the summary, and --decrypted FILE (written as replay goes), each
    for r in results:
        name = Path(r["file"]).name
        assert r["rc"] in (0, 1), (name, r)
        said = "".join(line for line in r["stderr"].splitlines(True) if not line.startswith("wrote "))  # --decrypted's
        assert said.count("\n") <= 1 and "Traceback" not in r["stderr"], (name, r["stderr"])
        if r["rc"] == 1:
            assert r["stderr"].startswith("wgscope replay: ") and not r["json"], name
        elif r["args"] == ["--json"]:
            assert r["json"], name
        assert r["seconds"] < 30, name
    by_name = {Path(r["file"]).name: r for r in results if r["args"] == ["--json"]}
    assert by_name["empty.pcap"]["rc"] == 1 and by_name["random-bytes.bin"]["rc"] == 1
    assert by_name["forged-every-type.pcapng"]["rc"] == 0
