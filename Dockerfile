# Stella OUK: the API and the workers (same image, different command).
# TypeScript runs through tsx (a runtime dependency): no build step.
#   docker build -t stella-ouk:local .
#   docker run stella-ouk:local                                   # the API on 8080
#   docker run stella-ouk:local node --import tsx queue/worker-main.ts
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    STELLA_API_PORT=8080 \
    STELLA_STATE_DIR=/tmp/stella
WORKDIR /app

# Dependencies first, so the layer is reused while only sources change.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY . .

USER node
EXPOSE 8080
CMD ["node", "--import", "tsx", "api/main.ts"]
