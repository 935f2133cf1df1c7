# apqn-operator image: the controller and the node agent (same image, different arguments).
# Multi-arch: node:20-bookworm-slim exists for s390x and amd64.
#
#   docker build -t apqn-operator .
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only (tsx is one: the sources run as TypeScript).
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim AS check
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc --noEmit -p tsconfig.json

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production APQN_LOG_FORMAT=json
COPY --from=deps /app/node_modules ./node_modules
COPY --from=check /app/src ./src
COPY package.json ./
COPY bin ./bin
COPY crds ./crds
# Non-root by default (the controller); the agent's DaemonSet sets runAsUser 0 for sysfs.
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/apqn-operator.js"]
