"""The binary event trace: a writer fed by the bus (writer.py), readers (reader.py), the format (format.py)."""
