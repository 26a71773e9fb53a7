# syntax=docker/dockerfile:1
# gwlog: AgentGateway access logs -> per-user/per-team Prometheus metrics on :3903.
#
#   docker build -t gwlog .
#   docker compose logs -f agentgateway | docker run -i --rm -p 3903:3903 gwlog            # pipe
#   docker run -d -p 3903:3903 -u 0 -v /var/lib/docker/containers:/var/lib/docker/containers:ro \
#       -v gwlog-state:/var/lib/gwlog gwlog tail --docker agentgateway                     # tail
#
# Reading /var/lib/docker/containers or /var/log/pods needs root (files are root:root 0640): run the
# tail variant with `-u 0` / runAsUser: 0 and everything else read-only. The pipe variant runs as the
# unprivileged `gwlog` user.

ARG PYTHON_VERSION=3.11

# ---- build: a wheel for gwlog plus wheels for its dependencies --------------------------------
FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
# README* is optional (pyproject's readme); pyproject.toml always matches, so COPY never fails.
COPY pyproject.toml README* ./
# The grammar lives in grammars/ and src/gwlog/agentgateway.lark is a relative symlink to it
# (../../grammars/agentgateway.lark): both trees must be copied, side by side, for the wheel to
# contain the grammar as a regular file.
COPY grammars ./grammars
COPY src ./src
RUN test -f src/gwlog/agentgateway.lark \
 && pip wheel --wheel-dir /wheels . \
 && python -c "import glob,zipfile; w=glob.glob('/wheels/gwlog-*.whl')[0]; \
assert 'gwlog/agentgateway.lark' in zipfile.ZipFile(w).namelist(), 'grammar missing from ' + w"

# ---- runtime ---------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels gwlog \
 && groupadd --system --gid 10001 gwlog \
 && useradd --system --uid 10001 --gid gwlog --home-dir /var/lib/gwlog --shell /usr/sbin/nologin gwlog \
 && mkdir -p /var/lib/gwlog /etc/gwlog \
 && chown gwlog:gwlog /var/lib/gwlog \
 && gwlog --help >/dev/null

LABEL org.opencontainers.image.title="gwlog" \
      org.opencontainers.image.description="AgentGateway access logs to per-user/per-team LLM usage metrics" \
      org.opencontainers.image.licenses="Apache-2.0"

# Checkpoints (tail mode) and, if configured, the JSONL archive.
VOLUME ["/var/lib/gwlog"]
WORKDIR /var/lib/gwlog
USER gwlog:gwlog
EXPOSE 3903

# No curl in slim images: probe /-/healthy with the Python standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3903/-/healthy', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["gwlog"]
CMD ["parse"]
