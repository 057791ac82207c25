"""Optional peers for `make bench`: llama.cpp's llama-server and transformers.

Never dependencies of the product: they are built or installed into a cache outside the
repository (`LLMAAS_BENCH_CACHE`, default ~/.cache/llmaas-bench) the first time the bench
asks for them, and skipped with a note when they cannot be had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

CACHE = Path(os.environ.get("LLMAAS_BENCH_CACHE", Path.home() / ".cache" / "llmaas-bench"))
LLAMA_SERVER = CACHE / "llama.cpp" / "build" / "bin" / "llama-server"

# Everything that would download or need extra libraries is turned off.
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DGGML_NATIVE=ON",
]


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def _vendored_llama_cpp() -> Path:
    """Unpacks the llama.cpp sources vendored in the llama-cpp-python sdist."""
    src = CACHE / "llama.cpp"
    if (src / "CMakeLists.txt").exists():
        return src
    dl = CACHE / "sdist"
    dl.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
          "llama-cpp-python", "-d", str(dl)])
    sdist = sorted(dl.glob("llama_cpp_python-*.tar.gz"))[-1]
    with tarfile.open(sdist) as tar:
        tar.extractall(dl, filter="data")
    vendored = next(dl.glob("llama_cpp_python-*/vendor/llama.cpp"))
    shutil.copytree(vendored, src)
    return src


def ensure_llama_server() -> Path | None:
    """Path to a built llama-server, building it (~5 min on 2 cores) when absent."""
    if LLAMA_SERVER.exists():
        return LLAMA_SERVER
    if not shutil.which("cmake"):
        print("bench: cmake not found, skipping llama-server", file=sys.stderr)
        return None
    try:
        src = _vendored_llama_cpp()
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        _run(["cmake", "-S", str(src), "-B", str(src / "build"), *generator, *CMAKE_FLAGS])
        _run(["cmake", "--build", str(src / "build"), "--target", "llama-server", "-j", str(os.cpu_count() or 2)])
    except (subprocess.CalledProcessError, OSError, StopIteration) as exc:
        print(f"bench: could not build llama-server ({exc}); skipping it", file=sys.stderr)
        return None
    return LLAMA_SERVER if LLAMA_SERVER.exists() else None


if __name__ == "__main__":
    print(ensure_llama_server())
