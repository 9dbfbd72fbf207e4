# The amsm worker image (docker-compose.yml). The DSM driver needs unixODBC; add
# Microsoft's msodbcsql18 package for the `sqlserver` profile at your site.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends unixodbc libsqliteodbc \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY inventory inventory
COPY activities activities
COPY workflows workflows
COPY workers workers
COPY wire wire
COPY client client
COPY lab lab
RUN pip install --no-cache-dir .
USER nobody
CMD ["amsm", "worker"]
