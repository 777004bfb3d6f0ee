"""`wgscope doctor`: say why a tunnel does not come up.

static.py   checks of the wg-quick file alone
probe.py    one real handshake attempt, watched event by event
classify.py what a probe outcome means, in plain words
capture.py  replay findings from a capture, in the same words
render.py   verdict first for people; JSON for scripts
"""
