# syntax=docker/dockerfile:1
#
# allowgate image. Node 24 runs the TypeScript sources directly (type stripping): there is no build
# step, so the image carries package.json, src/, config/ and the production node_modules, nothing
# else (no tests, no dev dependencies, no compiler).
#
#   docker build -t allowgate:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --rm -p 8080:8080 -p 9090:9090 \
#     -v ./allowgate.yaml:/etc/allowgate/allowgate.yaml:ro -e ALLOWGATE_CONFIG=/etc/allowgate/allowgate.yaml \
#     -e ALLOWGATE_UPSTREAM_URL=http://api.internal:3000 -e ALLOWGATE_ADMIN_TOKEN="$(openssl rand -base64 32)" \
#     allowgate:0.1.0
#
# docs/deployment.md describes running it, the Kubernetes manifests in k8s/ and upgrades.

# ---- deps: production dependencies only --------------------------------------------------------
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev leaves out vitest, typescript and the `node` devDependency (a Node binary that the
# project pins for development: here the base image's Node 24 runs the gateway). No production
# dependency needs an install script, so none runs.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && mkdir -p /app/data

# ---- runtime: distroless Node 24 (no shell, no package manager) ----------------------------------
FROM gcr.io/distroless/nodejs24-debian12 AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="allowgate" \
      org.opencontainers.image.description="Reverse-proxy sidecar that enforces per-account IP access lists in front of an existing HTTP API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs24-debian12"

# Relative paths in the configuration (config/allowgate.yaml, data/...) resolve against /app.
WORKDIR /app
# The admin listener (admin API, /healthz, /readyz, /metrics) listens on every interface of the
# container so that a published port, kubelet probes and Prometheus reach it; the admin API still
# needs its token. Set ALLOWGATE_ADMIN_LISTEN=127.0.0.1:9090 to keep it inside the container.
#
# Memory (docs/deployment.md, "Memory"): glibc's malloc arenas capped at 2, and the old
# generation's ceiling, which a larger memory limit may raise (NODE_OPTIONS). The entry point
# below carries the other runtime flags. src/cli/runtime.ts holds the same values; the deploy
# tests keep them equal. ALLOWGATE_REVISION labels allowgate_build_info.
ENV NODE_ENV=production \
    ALLOWGATE_ADMIN_LISTEN=0.0.0.0:9090 \
    MALLOC_ARENA_MAX=2 \
    NODE_OPTIONS=--max-old-space-size=128 \
    ALLOWGATE_REVISION=${REVISION}

# Owned by root and read-only for the gateway's user: the code cannot be changed at run time.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY config/ ./config/
COPY src/ ./src/
# The only writable place: the file store, generated admin token and snapshots (data/). Mount a
# volume here to keep them, or use Redis and ALLOWGATE_ADMIN_TOKEN and it stays empty.
COPY --from=deps --chown=10001:10001 /app/data ./data

USER 10001:10001
EXPOSE 8080 9090

# Distroless has no curl: Node's fetch asks the admin listener; exit 0 on 200, 1 otherwise.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/nodejs/bin/node", "-e", "fetch('http://127.0.0.1:9090/healthz', { signal: AbortSignal.timeout(3000) }).then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]

# Exec form, node itself as PID 1: SIGTERM reaches the gateway, which stops accepting, lets
# in-flight requests finish (shutdownTimeoutMs) and exits 0. Other commands run the CLI, e.g.
# `docker run --rm IMAGE --help` or `docker run --rm IMAGE acl list AC123 --url ...`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=2", "--v8-pool-size=1", "src/cli.ts"]
CMD ["serve"]
