#!/bin/sh
# pip inside the image build (the Dockerfile's deps stage mounts this folder at /docker):
#   sh /docker/pip-install.sh torch                       torch==$TORCH_VERSION of $TORCH_VARIANT
#   sh /docker/pip-install.sh deps /tmp/pyproject.toml    the project's dependencies
# From the index (PIP_INDEX_URL; torch from TORCH_INDEX_URL), or with WHEELHOUSE set only
# from wheelhouse/$TORCH_VARIANT/ (mounted at /wheelhouse), with no network at all.
# The build arguments arrive as environment variables (WHEELHOUSE_ROOT: for the tests).
set -eu

case "$TORCH_VARIANT" in
  cuda) torch_index=${TORCH_INDEX_URL:-$PIP_INDEX_URL} ;;
  cpu) torch_index=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu} ;;
  *)
    echo "error: build argument TORCH_VARIANT: expected cuda or cpu, but got '$TORCH_VARIANT'" >&2
    exit 2
    ;;
esac

wheels=${WHEELHOUSE_ROOT:-/wheelhouse}/$TORCH_VARIANT
if [ -n "${WHEELHOUSE:-}" ]; then
  if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
    echo "error: build argument WHEELHOUSE=$WHEELHOUSE: expected wheels in wheelhouse/$TORCH_VARIANT/," \
      "but found none; run 'make wheelhouse TORCH_VARIANT=$TORCH_VARIANT' on a machine that can" \
      "download (then copy wheelhouse/ here), or leave WHEELHOUSE empty to use the index" >&2
    exit 2
  fi
  source_args="--no-index --find-links $wheels"
  hint="wheelhouse/$TORCH_VARIANT/ lacks a wheel: is it older than pyproject.toml? Run 'make wheelhouse TORCH_VARIANT=$TORCH_VARIANT' again"
else
  source_args="--index-url $PIP_INDEX_URL"
  hint="check PIP_INDEX_URL ($PIP_INDEX_URL) and TORCH_INDEX_URL, or build from a wheelhouse (docs/operations.md)"
fi

case "$1" in
  torch)
    [ -n "${WHEELHOUSE:-}" ] || source_args="--index-url $torch_index"
    set -- "torch==$TORCH_VERSION"
    ;;
  deps)
    python /docker/requirements.py "$2" >/tmp/requirements.txt
    set -- -r /tmp/requirements.txt
    ;;
  *)
    echo "usage: pip-install.sh torch | deps PYPROJECT" >&2
    exit 2
    ;;
esac

# shellcheck disable=SC2086
pip install $source_args "$@" || {
  echo "error: pip install $* failed; $hint" >&2
  exit 1
}
