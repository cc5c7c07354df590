# syntax=docker/dockerfile:1
#
# Cartero image. One image, two processes:
#   API:    node dist/server.js   (default CMD; listens on PORT, 3000 by default)
#   worker: node dist/worker.js   (set as `command` in docker-compose.yml)
#
# Build:  docker build -t cartero .
# See docs/deployment.md for the full stack.

# Debian (glibc) rather than Alpine: @temporalio/core-bridge (the worker's Rust core) ships
# prebuilt linux-gnu binaries only, none for musl, so nothing has to be compiled during `npm ci`.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------
# Stage 1: compile TypeScript and pre-bundle the workflow code.
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app

# package.json says "node": ">=20.19.0", but npm only warns about engines. A stale cached
# node:20 base image must fail the build here instead of failing at run time.
RUN node -e "const [a,b]=process.versions.node.split('.').map(Number); \
  if (a < 20 || (a === 20 && b < 19)) { console.error('Node >= 20.19 required, base image has ' + process.version); process.exit(1); }"

# Manifests first: the dependency layer stays cached until package*.json change.
# (NODE_ENV is deliberately not "production" here: npm ci would then skip typescript.)
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json ./
COPY src ./src
# The worker loads dist/workflow-bundle.js when present; bundling at build time saves seconds of
# webpack on every worker start (see src/worker.ts).
RUN npx tsc -p tsconfig.json \
 && node dist/tools/bundle-workflows.js \
 && test -s dist/workflow-bundle.js

# ---------------------------------------------------------------------------------------------
# Stage 2: runtime. Production dependencies and compiled output only; no TypeScript, no sources.
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

COPY --from=build /app/dist ./dist
# Sisimai 4.25, the second bounce engine (docs/bounces.md "Sisimai"): Debian's package and the bridge script the
# worker and the API keep running (src/inbound/sisimai.ts looks for it next to the compiled module).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libsisimai-perl \
 && rm -rf /var/lib/apt/lists/*
COPY src/inbound/sisimai/bridge.pl ./dist/inbound/sisimai/bridge.pl

# Files stay root-owned and read-only for the process: Cartero writes nothing to disk.
# `node` (uid 1000) is the unprivileged user that the official Node image provides.
USER node

EXPOSE 3000

# Liveness of the API only (/healthz never checks dependencies, so a Mongo or Temporal outage
# does not get the container restarted). The worker has no HTTP server, so this check would
# always fail there: docker-compose.yml disables it for the worker service.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# Exec form, no shell in between: node itself receives SIGTERM and drains (API: finishes in-flight
# requests; worker: finishes in-flight activities). Compose also sets `init: true` (tini as PID 1),
# which forwards signals and reaps zombies.
CMD ["node", "dist/server.js"]
