#!/bin/sh
# `make up` runs this first: one clear line and exit code 2 when the Docker host cannot
# build or run the stack, instead of an error from deep inside Compose or the build.
#   Docker Engine 20.10+: its built-in BuildKit reads the Dockerfile's RUN --mount lines
#   BuildKit: the legacy builder (DOCKER_BUILDKIT=0) stops at the first RUN --mount
#   Compose v2.24+ (`docker compose`): the compose files use !reset (and the README !override);
#     Compose v1 (`docker-compose`) cannot read them at all
# Usage: sh docker/check-versions.sh [COMPOSE COMMAND...]   (default: docker compose)
set -u
DOCKER_MIN=20.10
COMPOSE_MIN=2.24
[ $# -gt 0 ] || set -- docker compose

fail() {
  echo "error: $*" >&2
  exit 2
}

# True when version $1 >= $2 (leading v and any -suffix/+suffix ignored).
at_least() {
  have=$(echo "$1" | sed -E 's/^v//; s/[-+].*$//')
  [ "$(printf '%s\n%s\n' "$2" "$have" | sort -V | head -n 1)" = "$2" ]
}

case "${DOCKER_BUILDKIT:-}" in
  0 | false)
    fail "DOCKER_BUILDKIT=$DOCKER_BUILDKIT selects the legacy builder, but the Dockerfile needs BuildKit (RUN --mount); unset DOCKER_BUILDKIT" ;;
esac

command -v docker >/dev/null 2>&1 ||
  fail "expected the docker command (Docker Engine $DOCKER_MIN+), but it is not on PATH; install Docker (README: Many workers)"
server=$(docker version --format '{{.Server.Version}}' 2>/dev/null) ||
  fail "expected a running Docker daemon, but 'docker version' reached none; start dockerd (or check DOCKER_HOST and your rights on the socket)"
at_least "$server" "$DOCKER_MIN" ||
  fail "expected Docker Engine $DOCKER_MIN or newer (BuildKit with RUN --mount), but the daemon is $server; upgrade Docker"

compose=$("$@" version --short 2>/dev/null) ||
  fail "expected Docker Compose v2 ('$*'), but '$* version' failed; install the Compose v2 plugin ($COMPOSE_MIN or newer), Compose v1 (docker-compose) cannot read the compose files"
at_least "$compose" "$COMPOSE_MIN" ||
  fail "expected Docker Compose $COMPOSE_MIN or newer ('$*'), but found $compose; upgrade the Compose plugin (the compose files use !reset)"
