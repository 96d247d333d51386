"""Cargobay benchmarks against the reference registry, side by side on loopback (``make bench``)."""
