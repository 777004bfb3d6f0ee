"""Events as a table, for notebooks: one row per event, one column per catalogue field name.

    from wgscope.trace.frame import load_events
    df = load_events("run.wgtrace")                       # or a JSON lines file from --events
    df = load_events("run.wgtrace", kinds=["transport_*"], peer="Ab3x")
    df[df.event == "transport_received"].set_index("wall")["size"].resample("100ms").sum()

Columns: `event`, `level` (name), `category`, `time` (protocol seconds), `wall` (pandas
datetime, UTC), `peer`, then every field of the events present, named as in docs/events.md
(a field an event does not have is NA in its row; integer fields are nullable integers).
"""

from __future__ import annotations

from ..events import CATALOGUE, LEVEL_NAMES
from .reader import read_events, select

HEAD = ["event", "level", "category", "time", "wall", "peer"]


def load_events(path, kinds: list[str] | None = None, peer: str | None = None, level: int | None = None,
                since: tuple[str, float] | None = None, until: tuple[str, float] | None = None):
    """A pandas DataFrame of the events in `path` that pass the filters (reader.select)."""
    import pandas as pd

    rows = []
    fields: dict[str, None] = {}
    for ev in select(read_events(path), kinds, peer, level, since, until):
        et = CATALOGUE.get(ev.name)
        row = {"event": ev.name, "level": LEVEL_NAMES.get(ev.level, str(ev.level)),
               "category": et.category if et else None, "time": ev.time, "wall": ev.wall, "peer": ev.peer}
        for name in ev.fields:
            fields.setdefault(name)
        row.update(ev.fields)
        rows.append(row)
    df = pd.DataFrame.from_records(rows, columns=HEAD + [f for f in fields if f not in HEAD])
    df = df.convert_dtypes()  # integer fields stay integers beside NA
    df["wall"] = pd.to_datetime(df["wall"], unit="s", utc=True)
    for column in ("event", "level", "category"):
        df[column] = df[column].astype("category")
    return df
