# syntax=docker/dockerfile:1.7
# The worker and dashboard image (docker-compose.yml builds it).
#
#   docker build -t kalaha-tuner:cuda .                            # CUDA torch (default)
#   docker build -t kalaha-tuner:cpu --build-arg TORCH_VARIANT=cpu .   # CPU-only, much smaller
#
# The CUDA build is torch's default Linux wheel from PyPI, which bundles the CUDA
# runtime: the host needs only the NVIDIA driver and the NVIDIA Container Toolkit.
# Layers, from least to most often changed: torch, the other dependencies (read
# from pyproject.toml alone), then the code and the studies.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# --- dependencies: a virtualenv that the runtime stage copies ------------------------
FROM base AS deps
ARG TORCH_VARIANT=cuda
ARG TORCH_VERSION=2.13.0
RUN python -m venv /opt/venv
RUN --mount=type=cache,target=/root/.cache/pip \
    case "$TORCH_VARIANT" in \
      cuda) pip install "torch==${TORCH_VERSION}" ;; \
      cpu)  pip install "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu ;; \
      *)    echo "TORCH_VARIANT must be cuda or cpu, got '$TORCH_VARIANT'" >&2; exit 2 ;; \
    esac
COPY pyproject.toml /tmp/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/pip \
    python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

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
