"""A Finding: one thing doctor noticed, with what it means and what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

OK = "ok"
INFO = "info"
WARNING = "warning"
ERROR = "error"
SEVERITY_ORDER = {OK: 0, INFO: 1, WARNING: 2, ERROR: 3}


@dataclass
class Finding:
    code: str  # stable, for scripts: e.g. "overlapping_allowed_ips", "probe_psk_mismatch"
    severity: str  # ok | info | warning | error
    title: str  # one line: the verdict
    explanation: str  # why this happens, in plain words
    fix: str  # what to do
    evidence: list[str] = field(default_factory=list)  # what was seen
    source: str = "static"  # static | probe | capture | config

    def as_dict(self) -> dict:
        return asdict(self)


def worst(findings: list[Finding]) -> str:
    return max((f.severity for f in findings), key=SEVERITY_ORDER.__getitem__, default=OK)
