# The worker and dashboard image (docker-compose.yml builds it).
#
#   docker build -t kalaha-tuner:cuda .                                  # CUDA torch (default)
#   docker build -t kalaha-tuner:cpu --build-arg TORCH_VARIANT=cpu .     # CPU-only, much smaller
#
# Needs BuildKit (Docker 20.10+ with Compose v2, or DOCKER_BUILDKIT=1) for the
# RUN --mount lines. There is deliberately no "# syntax=" line: Docker's built-in
# Dockerfile frontend reads this file, so a build never fetches a frontend image.
#
# Where packages come from (build arguments; docker-compose.yml passes them from .env):
#   PYTHON_IMAGE      the base image (a registry mirror: mirror.example/library/python:3.11-slim)
#   PIP_INDEX_URL     the package index (PyPI, or your mirror)
#   TORCH_INDEX_URL   torch's index; empty: PIP_INDEX_URL for cuda (PyPI's torch bundles CUDA),
#                     https://download.pytorch.org/whl/cpu for cpu
#   WHEELHOUSE=1      no index at all: install only from wheelhouse/TORCH_VARIANT/, which
#                     `make wheelhouse` fills on a machine that can download
#
# The CUDA build is torch's default Linux wheel, which bundles the CUDA runtime: the host
# needs only the NVIDIA driver and the NVIDIA Container Toolkit.
# Layers, from least to most often changed: torch, the other dependencies (read from
# pyproject.toml alone), then the code and the studies.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# --- dependencies: a virtualenv that the runtime stage copies ------------------------
FROM base AS deps
ARG TORCH_VARIANT=cuda
ARG TORCH_VERSION=2.13.0
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG TORCH_INDEX_URL=
ARG WHEELHOUSE=
RUN python -m venv /opt/venv
# docker/pip-install.sh picks the index or the wheelhouse. Both folders are mounted, not
# copied, so no wheel ends up in a layer (their contents still key the layer cache).
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=docker,target=/docker \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    sh /docker/pip-install.sh torch
COPY pyproject.toml /tmp/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=docker,target=/docker \
    --mount=type=bind,source=wheelhouse,target=/wheelhouse \
    sh /docker/pip-install.sh deps /tmp/pyproject.toml

# --- runtime -------------------------------------------------------------------------
FROM base AS runtime
ARG TORCH_VARIANT=cuda
LABEL org.opencontainers.image.title="kalaha-tuner" \
      org.opencontainers.image.description="Optuna worker and dashboard for MaskablePPO on Kalah"
RUN useradd --create-home --uid 10001 --user-group tuner \
    && mkdir -p /app/runs \
    && chown tuner:tuner /app/runs
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app
COPY env/ env/
COPY tuner/ tuner/
COPY studies/ studies/
ENV PYTHONPATH=/app \
    KALAHA_RUNS=/app/runs \
    KALAHA_TORCH_VARIANT=${TORCH_VARIANT} \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    NUMBA_CACHE_DIR=/tmp/numba-cache \
    MPLCONFIGDIR=/tmp/matplotlib
USER tuner
# runs/ (artifacts, TensorBoard logs) is a volume shared by workers and dashboard.
VOLUME ["/app/runs"]
ENTRYPOINT ["python", "-m", "tuner"]
CMD ["--help"]
