"""The real worker process (`python -m worker --model DIR`) refuses an unknown architecture at
start, naming the supported ones. (Each family's greedy parity through a real worker and
through the mesh: test_family_mesh.py.)"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

START_TIMEOUT_S = 600  # a bound for a stuck start, not a speed goal
REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unknown_architecture_is_refused_at_start(tmp_path: Path, make_family) -> None:
    path = tmp_path / "mystery"
    shutil.copytree(make_family("qwen3").path, path)
    config = json.loads((path / "config.json").read_text())
    config["architectures"], config["model_type"] = ["MysteryForCausalLM"], "mystery"
    (path / "config.json").write_text(json.dumps(config))
    cmd = [sys.executable, "-m", "worker", "--model", str(path), "--port", str(_free_port())]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    assert done.returncode != 0
    assert "unsupported architecture MysteryForCausalLM" in done.stderr
    assert "Qwen3ForCausalLM" in done.stderr and "Gemma3ForCausalLM" in done.stderr
    assert "Traceback" not in done.stderr
