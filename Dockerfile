# Stella OUK: the API, the workers and the operator's CLI (same image, different command).
# Two stages: the first compiles the TypeScript with tsc (`npm run build`, scripts/build.ts:
# dist/ plus the SQL migrations and JSON schemas the code reads); the image runs that
# compiled JavaScript with plain Node, with the production dependencies only (no tsx).
#   docker build -t stella-ouk:local .
#   docker run stella-ouk:local                                   # the API on 8080
#   docker run stella-ouk:local node dist/queue/worker-main.js    # a worker
#   docker run stella-ouk:local stella ouk status                 # the CLI, on PATH
# The services refuse to start without OUK_TRUSTED_KEYS (the publisher's cosign.pub).
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    STELLA_API_PORT=8080 \
    STELLA_STATE_DIR=/var/lib/stella
WORKDIR /app

# zstd decompresses the kit's DB members on their way into PostgreSQL (and the builder compresses them).
RUN apt-get update \
 && apt-get install -y --no-install-recommends zstd \
 && rm -rf /var/lib/apt/lists/*

# Dependencies first, so the layer is reused while only sources change.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# The build and the launcher only: with no TypeScript sources beside it, bin/stella.js runs dist/.
COPY --from=build /src/dist ./dist
COPY bin/stella.js ./bin/stella.js

# State (logs, the CLI's scratch space) lives in a volume owned by the service
# user, never in a world-writable /tmp; kits to import are mounted at /import.
RUN mkdir -p /var/lib/stella /import \
 && chown node:node /var/lib/stella \
 && chmod 0750 /var/lib/stella \
 && ln -s /app/bin/stella.js /usr/local/bin/stella
VOLUME /var/lib/stella

USER node
EXPOSE 8080
CMD ["node", "dist/api/main.js"]
