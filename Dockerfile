# pgwarden — the image behind `pgwarden serve` in docker-compose.yml.
#
# build stage: full node:22 (LTS) image (python3/make/g++ for any native optional dependency),
#   `npm ci` with dev dependencies (TypeScript), `npm run build`, then drop dev dependencies.
# runtime stage: node:22 slim, non-root, the pruned app only.
# Credentials are never baked in: DATABASE_URL / REPLICA_URL come from the environment at run time
# (.dockerignore keeps .env out of the build context).

FROM node:22-bookworm AS build
WORKDIR /app
# The whole tree is copied before `npm ci` because the package's `prepare` script builds it.
COPY . .
RUN npm ci --no-audit --no-fund \
 && npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app /app
USER node
EXPOSE 3000
CMD ["node", "bin/pgwarden.js", "serve", "--host", "0.0.0.0", "--port", "3000"]
