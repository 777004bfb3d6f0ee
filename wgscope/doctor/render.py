"""Doctor output: for people a short verdict first, then each finding with evidence and fix;
for scripts one JSON document (--json)."""

from __future__ import annotations

import json
import textwrap

from .finding import ERROR, OK, SEVERITY_ORDER, WARNING, Finding, worst

MARK = {OK: "ok  ", "info": "info", WARNING: "warn", ERROR: "FAIL"}
SOURCE_ORDER = {"probe": 0, "capture": 1, "config": 2, "static": 3}  # the most direct evidence first
STATUS = {OK: "healthy", "info": "healthy", WARNING: "warning", ERROR: "problem"}


def verdict(findings: list[Finding], probed: bool) -> str:
    status = worst(findings)
    if status in (OK, "info"):
        oks = [f for f in findings if f.severity == OK and f.source in ("probe", "capture")]
        if oks:
            return oks[0].title
        return "healthy: no problems found" + ("" if probed else " in the configuration (add --probe to try a "
                                                                  "real handshake)")
    top = sorted(findings, key=lambda f: (-SEVERITY_ORDER[f.severity], SOURCE_ORDER.get(f.source, 9)))
    first = top[0]
    more = sum(1 for f in findings if f.severity in (WARNING, ERROR)) - 1
    label = "problem" if status == ERROR else "warning"
    return f"{label}: {first.title}" + (f" (and {more} more)" if more > 0 else "")


def document(config: str | None, findings: list[Finding], probe: dict | None = None, capture: dict | None = None,
             capture_file: str | None = None) -> dict:
    status = worst(findings)
    return {"config": config, "capture_file": capture_file, "status": STATUS[status],
            "verdict": verdict(findings, probe is not None), "findings": [f.as_dict() for f in findings],
            "probe": probe, "capture": capture}


def to_json(doc: dict) -> str:
    return json.dumps(doc, indent=2, default=str)


def _wrap(prefix: str, text: str, width: int = 100) -> list[str]:
    lines = []
    for i, para in enumerate(text.split("\n")):
        lines += textwrap.wrap(para, width, initial_indent=prefix if i == 0 else " " * len(prefix),
                               subsequent_indent=" " * len(prefix)) or [prefix]
    return lines


def to_text(doc: dict) -> str:
    out = [f"{doc['config'] or doc['capture_file']}: {doc['verdict']}", ""]
    findings = sorted(doc["findings"], key=lambda f: (-SEVERITY_ORDER[f["severity"]], SOURCE_ORDER.get(f["source"], 9)))
    for f in findings:
        out.append(f"[{MARK.get(f['severity'], f['severity'])}] {f['title']}")
        if f["severity"] != OK or f["source"] == "probe":
            out += _wrap("       why: ", f["explanation"])
        for e in f["evidence"]:
            out += _wrap("      seen: ", e)
        if f["severity"] in (WARNING, ERROR):
            out += _wrap("       fix: ", f["fix"])
        out.append("")
    return "\n".join(out).rstrip() + "\n"
