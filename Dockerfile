# One image for every spp process: `spp serve gateway|partnership|rotation|training`, `spp migrate`.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY gateway ./gateway
COPY migrations ./migrations
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SPP_ENV=production SPP_HOST=0.0.0.0
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --no-create-home spp
USER 10001
EXPOSE 8000 8001 8002 8003 8004
ENTRYPOINT ["spp"]
CMD ["serve", "gateway"]
