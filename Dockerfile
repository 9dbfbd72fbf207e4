# The amsm images (docker-compose.yml): the worker (the default target) and the web
# console (`--target console`). The DSM driver needs unixODBC; add Microsoft's msodbcsql18
# package for the `sqlserver` profile at your site.
FROM python:3.11-slim-bookworm AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends unixodbc libsqliteodbc \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# What `amsm worker` imports, and no more: not the operator's CLI (client/), the lab,
# nor records/ (`python -X importtime -c "import workers.worker"` lists none of them).
COPY pyproject.toml README.md amsm.py ./
COPY inventory inventory
COPY activities activities
COPY workflows workflows
COPY workers workers
COPY wire wire
# For SQL Server 2005/2008 DSMs (TLS 1.0 only): set OPENSSL_CONF to this file in the
# worker's environment (README, "A SQL Server DSM", TLS). Unused otherwise.
COPY etc/openssl-legacy-tls.cnf /etc/amsm/openssl-legacy-tls.cnf

# The web console adds what `amsm console` imports (`python -X importtime -c "import
# console.main"`): the API, records and the console; still no CLI and no lab.
FROM base AS console
COPY records records
COPY api api
COPY console console
RUN pip install --no-cache-dir .
USER nobody
CMD ["amsm", "console"]

# The last stage is what `docker build .` makes: the worker.
FROM base AS worker
RUN pip install --no-cache-dir .
USER nobody
CMD ["amsm", "worker"]
