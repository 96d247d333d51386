"""Cargobay: a self-hostable private OCI container registry."""

__version__ = "0.1.0"
