"""Platform-neutral conversation logic: an `Incoming` in, a list of `Reply` out.

Nothing here imports a channel or web library; `tests/test_boundaries.py` enforces it.
"""
