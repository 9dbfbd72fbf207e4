"""The Temporal server's and Web UI's configuration that `amsm auth init` renders
(docs/site/production.md, "Lock-down"). Pure: dictionaries and text, written by `auth.py`.

Every key is the Temporal server's own, checked against its source (temporalio/temporal,
common/config/config.go and common/config/config_template_embedded.yaml, the template
`temporalio/server` renders from the environment when no file is given):

- `global.tls.frontend.server.requireClientAuth` and `clientCaFiles`: the public frontend
  takes only a client certificate the site's CA signed;
- `global.tls.internode`: the server's own services (history, matching and the internal
  frontend) talk mutual TLS among themselves, with a certificate of a CA of their own
  (`internode-ca.pem`): the site's CA is never trusted there, since the internal
  frontend makes any caller it takes a system admin and history and matching check no
  role at all;
- `global.authorization.authorizer: default` and `claimMapper: default`: the default
  authorizer (common/authorization/default_authorizer.go) over the JWT claim mapper
  (default_jwt_claim_mapper.go), which reads the `permissions` claim
  (`permissionsClaimName`) of each request's bearer token;
- `global.authorization.jwtKeyProvider.keySourceURIs`: where the JWKS is read; the server
  opens `file://` URIs from v1.32 (default_token_key_provider.go, temporalio/temporal#9590),
  earlier ones only http(s), which the compose file's `jwks` service serves on the
  compose network (no internet at a facility either way);
- `services.internal-frontend`: the frontend the server's own worker service uses (its
  schedules: the readiness watch, scheduled runs); any caller whose internode
  certificate it takes is a system admin (authorization.NewInternalClaimMapper), no JWT,
  so the server's schedules keep starting runs under the authorizer; with it, no
  `publicClient` (the template leaves it out the same way).
"""

from __future__ import annotations

from typing import Any

import yaml

# Where the compose file mounts, in each container, that container's own files of the
# folder `amsm auth init` wrote (file by file; not under /etc/amsm, the read-only
# inventory mount, where a mount point could not be made).
MOUNT = "/etc/amsm-auth"
# The name the frontend's certificate answers to on the compose network.
FRONTEND_NAME = "temporal"
# The name the internode certificate answers to (services dial each other by address;
# the client side checks this name, `global.tls.internode.client.serverName`).
INTERNODE_NAME = "internode"
JWKS_URI = "http://jwks:8000/jwks.json"

# What each program or person may do in the pair's namespace (the default authorizer's
# roles: `read` = Reader, `write` = Writer, `admin` = Admin). The set-up job alone is an
# admin, of the namespace only: RegisterNamespace and AddSearchAttributes are
# namespace-scoped Admin APIs (temporalio/temporal common/api/metadata.go), so it needs
# no `temporal-system:admin`, which would make it an admin of the whole cluster.
ROLES = {"worker": "write", "console": "write", "engineer": "read", "admin": "admin"}


def permissions(role: str, namespace: str) -> list[str]:
    return [f"{namespace}:{ROLES[role]}"]


def _sql(database: str, conns: int) -> dict[str, Any]:
    return {
        "sql": {
            "pluginName": "postgres12",
            "databaseName": database,
            "connectAddr": "postgresql:5432",
            "connectProtocol": "tcp",
            "user": "temporal",
            # Read by the server's template from the container's environment: the
            # password never sits in a file amsm wrote.
            "password": '{{ env "POSTGRES_PWD" }}',
            "maxConns": conns,
            "maxIdleConns": conns,
            "maxConnLifetime": "1h",
        }
    }


def _rpc(grpc: int, membership: int, http: int | None = None) -> dict[str, Any]:
    rpc: dict[str, Any] = {"grpcPort": grpc, "membershipPort": membership, "bindOnIP": "0.0.0.0"}
    if http is not None:
        rpc["httpPort"] = http
    return {"rpc": rpc}


def _group(name: str, ca: str, server_name: str) -> dict[str, Any]:
    """One TLS group (common/config GroupTLS): the certificate `name`, clients of `ca` only."""
    cas = [f"{MOUNT}/{ca}"]
    server = {
        "certFile": f"{MOUNT}/{name}.pem",
        "keyFile": f"{MOUNT}/{name}-key.pem",
        "requireClientAuth": True,
        "clientCaFiles": cas,
    }
    return {"server": server, "client": {"serverName": server_name, "rootCaFiles": cas}}


def _tls() -> dict[str, Any]:
    return {
        # Internode: its own CA, never the site's (see the head of this file).
        "internode": _group("internode", "internode-ca.pem", INTERNODE_NAME),
        "frontend": _group("temporal", "ca.pem", FRONTEND_NAME),
    }


def server_config(ui_jwks_uri: str | None = None) -> dict[str, Any]:
    """The whole server configuration (TEMPORAL_SERVER_CONFIG_FILE_PATH), on the compose
    file's PostgreSQL, with the lock-down. `ui_jwks_uri`: the JWKS of the identity
    provider the Web UI's users log in with, whose tokens the server then takes too."""
    sources = [JWKS_URI, *([ui_jwks_uri] if ui_jwks_uri else [])]
    return {
        "log": {"stdout": True, "level": "info"},
        "persistence": {
            # Fixed at the first start, for good: a server never changes it on an
            # existing database (docs/site/production.md). 4 is plenty for one pair.
            "numHistoryShards": 4,
            "defaultStore": "default",
            "visibilityStore": "visibility",
            "datastores": {
                "default": _sql("temporal", 20),
                "visibility": _sql("temporal_visibility", 10),
            },
        },
        "global": {
            "membership": {
                "maxJoinDuration": "30s",
                "broadcastAddress": '{{ default "" (env "TEMPORAL_BROADCAST_ADDRESS") }}',
            },
            "tls": _tls(),
            "authorization": {
                "jwtKeyProvider": {"keySourceURIs": sources, "refreshInterval": "1m"},
                "permissionsClaimName": "permissions",
                "authorizer": "default",
                "claimMapper": "default",
            },
        },
        "services": {
            "frontend": _rpc(7233, 6933, 7243),
            # No HTTP port: the internal frontend's HTTP API with the authorizer and a
            # callbacks allowlist is what CVE-2026-87858 needs; nothing here calls it.
            "internal-frontend": _rpc(7236, 6936),
            "matching": _rpc(7235, 6935),
            "history": _rpc(7234, 6934),
            "worker": _rpc(7239, 6939),
        },
        "clusterMetadata": {
            "enableGlobalNamespace": False,
            "failoverVersionIncrement": 10,
            "masterClusterName": "active",
            "currentClusterName": "active",
            "clusterInformation": {
                "active": {
                    "enabled": True,
                    "initialFailoverVersion": 1,
                    "rpcName": "frontend",
                    "rpcAddress": f"{FRONTEND_NAME}:7233",
                }
            },
        },
        "dcRedirectionPolicy": {"policy": "noop"},
        "dynamicConfigClient": {
            "filepath": "/etc/temporal/config/dynamicconfig/amsm.yaml",
            "pollInterval": "60s",
        },
    }


def server_yaml(ui_jwks_uri: str | None = None) -> str:
    # The first line turns on the server's templating (common/config/loader.go,
    # "enable-template"), for the password and broadcast address from the environment.
    head = (
        "# enable-template\n"
        "# Rendered by `amsm auth init` (docs/site/production.md, Lock-down). Keys as in\n"
        "# temporalio/temporal common/config/config_template_embedded.yaml.\n"
    )
    return head + yaml.safe_dump(server_config(ui_jwks_uri), sort_keys=False)


def ui_env(namespace: str, ui_jwks_uri: str | None = None) -> str:
    """The Web UI's environment (temporalio/ui-server docker/config_template.yaml; Temporal
    docs, "Web UI environmental variables"): read-only, mutual TLS to the frontend. Its
    certificate alone maps to no claims under the authorizer, so its pages stay empty
    until its users log in with an identity provider whose JWKS the server reads
    (`ui_jwks_uri`) and whose tokens carry `permissions: ["<namespace>:read"]`: the
    provider's settings are left for the operator (their client secret is theirs)."""
    lines = [
        "# Rendered by `amsm auth init`: the Temporal Web UI, read-only (docs/site/production.md)",
        # Every button that writes (terminate, cancel, signal, reset, batch, start) off.
        "TEMPORAL_DISABLE_WRITE_ACTIONS=true",
        f"TEMPORAL_DEFAULT_NAMESPACE={namespace}",
        f"TEMPORAL_TLS_CA={MOUNT}/ca.pem",
        f"TEMPORAL_TLS_CERT={MOUNT}/ui.pem",
        f"TEMPORAL_TLS_KEY={MOUNT}/ui-key.pem",
        f"TEMPORAL_TLS_SERVER_NAME={FRONTEND_NAME}",
        "TEMPORAL_TLS_ENABLE_HOST_VERIFICATION=true",
        "# Under the lock-down the UI shows nothing without its users' tokens: its",
        "# certificate alone is denied. Log its users in with the identity provider whose",
        f"# JWKS the server reads ({ui_jwks_uri or 'none yet: amsm auth init --ui-jwks-uri'}),",
        f'# whose tokens carry permissions: ["{namespace}:read"], and set:',
        "# TEMPORAL_AUTH_ENABLED=true",
        "# TEMPORAL_AUTH_PROVIDER_URL=https://idp.example/realms/facility",
        "# TEMPORAL_AUTH_CLIENT_ID=temporal-ui",
        "# TEMPORAL_AUTH_CALLBACK_URL=http://localhost:8080/auth/sso/callback",
        "# (TEMPORAL_AUTH_CLIENT_SECRET in the container's environment, not in this file)",
    ]
    return "\n".join(lines) + "\n"
