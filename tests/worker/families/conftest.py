"""One tiny checkpoint per family per session (written by transformers), shared by the
engine-level and the gRPC-level tests, with transformers' greedy reference on it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.worker.families.tiny import Family, make_checkpoint


@pytest.fixture(scope="session")
def make_family(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Family]:
    made: dict[str, Family] = {}

    def make(name: str) -> Family:
        if name not in made:
            made[name] = Family(name, make_checkpoint(tmp_path_factory.mktemp(name), name))
        return made[name]

    return make
