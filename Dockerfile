# syntax=docker/dockerfile:1
# liberation-node in a container (README.md, "Docker"). Builds for linux/amd64 and
# linux/arm64: every dependency publishes wheels for both, for this Python.
#
#   docker build -t liberation-node .
#   docker buildx build --platform linux/amd64,linux/arm64 -t liberation-node .
#   docker run -d --name node --network host -v liberation:/data liberation-node
#
# Host networking is what WebRTC needs: in a bridge network ICE offers the
# container's private address, which peers elsewhere cannot reach without TURN.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY liberation_node ./liberation_node
# Dependencies as wheels only: one missing for this platform fails the build here,
# loudly, rather than compiling in an image that has no compiler.
RUN python -m venv /opt/liberation-node \
 && /opt/liberation-node/bin/pip wheel --no-deps --wheel-dir /wheels /src \
 && /opt/liberation-node/bin/pip install --only-binary=:all: /wheels/*.whl

FROM python:${PYTHON_VERSION}-slim-bookworm
COPY --from=build /opt/liberation-node /opt/liberation-node
# A fixed uid, so that a host directory mounted at /data can be given to it.
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /data \
        --shell /usr/sbin/nologin liberation \
 && install --directory --owner liberation --group liberation --mode 0700 /data
ENV PATH=/opt/liberation-node/bin:$PATH \
    LIBERATION_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
# The node's identity (identity.key), settings and replica: keep this volume.
VOLUME ["/data"]
# 7411 peer port (signaling, for the network); 7412 control port (API and status
# page; it listens on 127.0.0.1 unless control_host says otherwise).
EXPOSE 7411/tcp 7412/tcp
USER 10001:10001
# Healthy while the node answers its control port with this data directory's token
# (status exits 3 when no node runs; Docker wants 1 for unhealthy).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["sh", "-c", "liberation-node status > /dev/null || exit 1"]
# SIGTERM drains: peers hear goodbye, the store is flushed (the default stop signal).
STOPSIGNAL SIGTERM
ENTRYPOINT ["liberation-node"]
CMD ["run"]
