"""Run the notebooks top to bottom and save their outputs in the .ipynb files, so they read on a
code host without running: `make notebooks-outputs` (or `.venv/bin/python notebooks/save_outputs.py`).

Cell execution metadata (wall-clock start and end times) is dropped: with the notebooks' fixed
keys and seeded labs, running this twice writes byte-identical files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def execute(path: Path, kernel: str = "python3", timeout: int = 180) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name=kernel, timeout=timeout, resources={"metadata": {"path": str(HERE)}}).execute()
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    return nb


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        nbformat.write(execute(path), path)
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
