# apqn-operator image: the controller and the node agent (same image, different arguments).
# Multi-arch: node:22-bookworm-slim exists for s390x and amd64. Node 22 is a supported LTS
# (Node 20 left support in April 2026); package.json's engines admits it. Pin the three FROM
# lines to the digest your registry serves (node:22-bookworm-slim@sha256:…) when you build for
# production: the machines this project is developed on reach no container registry, so no
# digest here could be checked.
#
#   docker build -t apqn-operator .
#
# The image runs the JavaScript that `npm run build` compiles (dist/), with production
# dependencies only: no TypeScript, no tsx, no src/.

# Build stage: every dependency (typescript), then `npm run build` (tsc over src/ with
# tsconfig.build.json, plus the .proto files the DRA plugin loads from beside its module).
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY hack/build.sh hack/ensure-deps.sh ./hack/
COPY src ./src
RUN npm run build

# Production dependencies only.
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production APQN_LOG_FORMAT=json APQN_RUN=dist
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
# Read at run time, relative to dist/ (../../crds from dist/k8s/): the CRDs (installed by
# `controlplane`/`dev`), and the example topology (`dev`'s default, handy for `sim`).
COPY crds ./crds
COPY examples/topology.yaml ./examples/topology.yaml
# Non-root by default (the controller); the agent's DaemonSet sets runAsUser 0 for sysfs.
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/apqn-operator.js"]
