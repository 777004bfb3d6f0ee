"""`--plot OUT.png`: the capture as a timeline, drawn with matplotlib (Agg, no display needed).

Top: one lane per pair of peers — sessions as bars, initiations as triangles (green when
answered, red when not), cookie replies as diamonds, findings as red crosses.
Bottom: transport bytes per second sent by each peer.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .observer import Replay  # noqa: E402
from .ladder import ladder_pairs  # noqa: E402


def figure(result: Replay):
    t0 = result.first_time or 0.0
    pairs = ladder_pairs(result)
    for s in result.sessions:  # sessions older than the capture have no handshake
        if not any({s.initiator.id, s.responder.id} == {a.id, b.id} for a, b in pairs):
            pairs.append((s.initiator, s.responder))
    lanes = {frozenset((a.id, b.id)): i for i, (a, b) in enumerate(pairs)}
    fig, (ax, vol) = plt.subplots(2, 1, figsize=(11, 2.2 + 0.8 * max(1, len(pairs))), sharex=True,
                                  gridspec_kw={"height_ratios": [max(1, len(pairs)), 1.3]})
    for s in result.sessions:
        y = lanes[frozenset((s.initiator.id, s.responder.id))]
        start = s.created - t0
        low = y - 0.3 if s.id % 2 else y - 0.02  # alternate halves so a rekey's overlap shows
        ax.broken_barh([(start, max(s.last_time - s.created, 0.05))], (low, 0.32),
                       facecolors="tab:blue" if s.decryptable else "tab:gray", alpha=0.55)
        ax.text(start, y + 0.33, f"s{s.id}", fontsize=7, va="bottom")
    for hs in result.handshakes:
        y = lanes.get(frozenset((hs.initiator.id, hs.responder.id)))
        if y is None:
            continue
        color = {"completed": "tab:green", "unanswered": "tab:red", "unverified": "tab:olive"}.get(hs.outcome, "black")
        ax.plot(hs.time - t0, y, marker=">", color=color, markersize=7, linestyle="none")
    for c in result.cookies:
        y = lanes.get(frozenset((c.sender.id, c.receiver.id)))
        if y is not None:
            ax.plot(c.time - t0, y, marker="D", color="tab:orange", markersize=6, linestyle="none")
    for f in result.findings:  # divergences (a re-executed node disagreeing) just below the other findings
        y = (len(pairs) - 0.45 if pairs else 0) - (0.12 if f.kind == "divergence" else 0)
        ax.plot(f.time - t0, y, marker="x", color="purple" if f.kind == "divergence" else "red", markersize=7,
                linestyle="none")
    ax.set_yticks(range(len(pairs)), [f"{a.name} ⇄ {b.name}" for a, b in pairs])
    ax.set_ylim(-0.7, max(1, len(pairs)) - 0.3)
    ax.set_title("handshakes (▶ green completed, olive not verified, red unanswered), sessions (bars),\n"
                 "cookie replies (◆), findings (× red; divergences of a re-executed node purple)", fontsize=9)
    first, last = int(t0), int(result.last_time or t0) + 1
    width = max(1, -(-(last - first) // 600))  # at most ~600 bins
    edges = list(range(first, last + width, width))
    styles = ("-", "--", ":", "-.")
    drawn = [p for p in result.parties if p.volume]
    for i, p in enumerate(drawn):  # each later line thinner and dashed: equal volumes stay visible
        bins = [0.0] * len(edges)
        for sec, b in p.volume.items():
            bins[(sec - first) // width] += b / width
        vol.step([e - t0 for e in edges], bins, where="post", label=p.name, linestyle=styles[i % len(styles)],
                 linewidth=max(0.8, 2.6 - 0.6 * i), zorder=2 + i)
    if any(p.volume for p in result.parties):
        vol.legend(fontsize=7, loc="upper right")
    vol.set_ylabel("bytes/s")
    vol.set_xlabel("seconds since the first frame")
    fig.tight_layout()
    return fig


def write_plot(result: Replay, path) -> None:
    fig = figure(result)
    try:
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
