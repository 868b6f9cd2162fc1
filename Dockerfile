# One image for every spp process: `spp serve gateway|partnership|rotation|training`, `spp migrate`.
# Behind a mirror (inside China, say), override where the base image and the packages come from:
#   docker build --build-arg PYTHON_IMAGE=<registry>/library/python:3.11-slim \
#                --build-arg PIP_INDEX_URL=<mirror>/simple .
# A mirror serves the same files, so the hashes in requirements.lock still hold. Pin the base image
# by digest (python:3.11-slim@sha256:…) to make the whole image reproducible, not just the packages.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG PIP_INDEX_URL=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/spp
WORKDIR /src
# Dependencies first, from the lock alone (`make lock`): exact versions, every file checked against
# its hash, nothing resolved at build time. This layer is cached until the lock changes.
COPY requirements.lock ./
RUN [ -n "$PIP_INDEX_URL" ] || unset PIP_INDEX_URL; \
    /opt/spp/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY services ./services
COPY gateway ./gateway
COPY migrations ./migrations
# The project itself, built with the locked setuptools: no second resolution, no unpinned download.
RUN /opt/spp/bin/pip install --no-deps --no-build-isolation .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/spp/bin:$PATH SPP_ENV=production SPP_HOST=0.0.0.0
COPY --from=build /opt/spp /opt/spp
RUN useradd --system --uid 10001 --no-create-home spp
USER 10001
EXPOSE 8000 8001 8002 8003 8004
ENTRYPOINT ["spp"]
CMD ["serve", "gateway"]
# Readiness of whichever process this container runs (`serve <process>` finds its port); a
# container that runs `migrate` reports healthy. Compose and Kubernetes set their own probes.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-m", "services.common.healthcheck"]
