"""Why a mesh did not start: one base class, so `make run` prints one clear line."""

from __future__ import annotations


class MeshStartError(RuntimeError):
    pass


class MeshLockedError(MeshStartError):
    """Another launcher holds the run directory's lock."""


class PortInUseError(MeshStartError):
    """A port the mesh needs is taken (by another mesh or anything else)."""
