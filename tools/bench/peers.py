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
]
# x86 ISA extensions from /proc/cpuinfo -> ggml options. Not GGML_NATIVE: -march=native turns
# on AMX where the CPU lists it, and in VMs that do not enable AMX state (XCR0) llama-server
# then dies with SIGILL on its first matmul; AMX is left off on purpose.
ISA_OPTIONS = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_F16C": ("f16c",),
    "GGML_FMA": ("fma",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX": ("avx",),
    "GGML_AVX2": ("avx2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    "GGML_AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    "GGML_AVX512_VBMI": ("avx512vbmi",),
    "GGML_AVX512_VNNI": ("avx512_vnni",),
    "GGML_AVX512_BF16": ("avx512_bf16",),
}
STAMP = CACHE / "llama.cpp" / "build" / ".llmaas-cmake-flags"


def cpu_flags() -> list[str]:
    """CMake flags for this CPU's ISA (portable build when /proc/cpuinfo is unreadable)."""
    try:
        line = next(
            ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")
        )
    except (OSError, StopIteration):
        return ["-DGGML_NATIVE=OFF"]
    have = set(line.split(":", 1)[1].split())
    out = ["-DGGML_NATIVE=OFF"]
    for option, needs in ISA_OPTIONS.items():
        out.append(f"-D{option}={'ON' if have.issuperset(needs) else 'OFF'}")
    out += ["-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"]
    return out


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
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "llama-cpp-python",
            "-d",
            str(dl),
        ]
    )
    sdist = sorted(dl.glob("llama_cpp_python-*.tar.gz"))[-1]
    with tarfile.open(sdist) as tar:
        tar.extractall(dl, filter="data")
    vendored = next(dl.glob("llama_cpp_python-*/vendor/llama.cpp"))
    shutil.copytree(vendored, src)
    return src


def ensure_llama_server() -> Path | None:
    """Path to a built llama-server, building it (~5 min on 2 cores) when absent or when it
    was built with other flags (an older native build: only ggml-cpu is rebuilt then)."""
    flags = [*CMAKE_FLAGS, *cpu_flags()]
    if LLAMA_SERVER.exists() and STAMP.exists() and STAMP.read_text().split() == flags:
        return LLAMA_SERVER
    if not shutil.which("cmake"):
        if LLAMA_SERVER.exists():
            print(
                "bench: cmake not found, using the existing llama-server build as is",
                file=sys.stderr,
            )
            return LLAMA_SERVER
        print("bench: cmake not found, skipping llama-server", file=sys.stderr)
        return None
    try:
        src = _vendored_llama_cpp()
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        _run(["cmake", "-S", str(src), "-B", str(src / "build"), *generator, *flags])
        _run(
            [
                "cmake",
                "--build",
                str(src / "build"),
                "--target",
                "llama-server",
                "-j",
                str(os.cpu_count() or 2),
            ]
        )
        STAMP.write_text("\n".join(flags) + "\n")
    except (subprocess.CalledProcessError, OSError, StopIteration) as exc:
        print(f"bench: could not build llama-server ({exc}); skipping it", file=sys.stderr)
        return None
    return LLAMA_SERVER if LLAMA_SERVER.exists() else None


# Python packages only the transformers peer needs (GGUF loading wants accelerate, `transformers
# serve` FastAPI), installed --no-deps into the cache, never into the product's venv: the
# bench puts PEER_DEPS on the PYTHONPATH of the peer's child process only.
PEER_DEPS = CACHE / "peer-deps"
PEER_PACKAGES = {
    "accelerate": "accelerate",
    "psutil": "psutil",
    "fastapi": "fastapi",
}  # module: dist


def peer_pythonpath(modules: list[str]) -> str | None:
    """A PYTHONPATH entry providing `modules` (installing the missing ones), or None."""
    import importlib.util  # noqa: PLC0415

    missing = [
        m for m in modules if importlib.util.find_spec(m) is None and not (PEER_DEPS / m).exists()
    ]
    if missing:
        try:
            _run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--no-deps",
                    "--target",
                    str(PEER_DEPS),
                    *(PEER_PACKAGES.get(m, m) for m in missing),
                ]
            )
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"bench: could not install {', '.join(missing)} ({exc})", file=sys.stderr)
            return None
    return str(PEER_DEPS)


if __name__ == "__main__":
    print(ensure_llama_server())
    print(peer_pythonpath(["accelerate", "psutil", "fastapi"]))
