"""The mesh most end-to-end modules need: the default model on one worker (a module that
needs another set-up defines its own `mesh`), and an `openai` client on it."""

from __future__ import annotations

import openai
import pytest

from tools.run_mesh import MeshHandle, start_mesh


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> MeshHandle:
    handle = start_mesh(workers=1, run_dir=tmp_path_factory.mktemp("mesh"), ready_timeout_s=300)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def client(mesh) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{mesh.url}/v1", api_key=mesh.api_key, max_retries=0, timeout=120
    )
