# syntax=docker/dockerfile:1
# cwmp-usp-proxy: CWMP (TR-069) ACS toward CPE, a USP (TR-369) Agent per device toward controllers.
#   docker build -t cwmp-usp-proxy .
#   docker run --rm -p 7547:7547 -p 8080:8080 -p 127.0.0.1:7557:7557 -v cup-data:/data cwmp-usp-proxy
# Configuration: CUP_* environment variables (cwmp-usp-proxy config lists them) or a mounted
# file passed as `start --config /etc/cwmp-usp-proxy/config.yaml`.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: compile TypeScript; better-sqlite3 builds its native addon from source here.
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build:src

# ---- prod-deps: production dependencies only (same toolchain, so the addon matches the runtime).
FROM build AS prod-deps
WORKDIR /prod
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime: no compiler, no dev dependencies, not root.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    CUP_DATA_DIR=/data \
    CUP_ACS__HOST=0.0.0.0 \
    CUP_USP__WEBSOCKET__HOST=0.0.0.0 \
    CUP_ADMIN__HOST=0.0.0.0
WORKDIR /app
# package.json marks the project root: the runtime assets (assets/: USP schemas, mappings, type table,
# simulator models, status page) are found from it.
COPY --from=prod-deps /prod/package.json /prod/package-lock.json ./
COPY --from=prod-deps /prod/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY assets ./assets
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
# 7547 ACS (CWMP), 8080 USP WebSocket MTP, 7557 admin API + /healthz
EXPOSE 7547 8080 7557
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:7557/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM (docker stop) drains: give it admin.shutdownGraceMs (10 s) plus a margin, e.g. docker stop -t 20.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/app/cli.js"]
CMD ["start"]
