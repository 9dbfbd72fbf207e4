"""docker-compose.yml, checked as far as a machine without a Docker engine can
(docs/site/production.md): it parses, no two services publish one host port, every image
is pinned, every variable it reads is one an operator is told to set, every file it
mounts from the repository exists, and what it sets for amsm's programs is what they read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from client.commands import auth_config
from wire.connection import api_key

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
# What docker-compose.yml's head tells the operator to export, and what has a default.
TOLD = {"AMSM_AUTH", "AMSM_CONFIG", "POSTGRES_PASSWORD"}
DEFAULTED = {"AMSM_NAMESPACE"}


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, dict):
        return {k: str(v) for k, v in env.items()}
    return dict(line.split("=", 1) for line in env)


def test_temporal_runs_on_the_server_image_not_auto_setup() -> None:
    images = {name: s.get("image", "") for name, s in services().items()}
    assert not any("auto-setup" in i for i in images.values())
    assert images["temporal"].startswith("temporalio/server:")
    # admin-tools makes the schema before the server starts and the namespace after.
    schema, setup = services()["temporal-schema"], services()["temporal-setup"]
    assert schema["image"].startswith("temporalio/admin-tools:")
    assert "temporal-sql-tool" in " ".join(schema["command"])
    assert services()["temporal"]["depends_on"]["temporal-schema"]["condition"] == (
        "service_completed_successfully"
    )
    assert "namespace create" in " ".join(setup["command"])


def test_temporal_is_one_whose_authorizer_covers_every_endpoint() -> None:
    """1.31.0 left the replication stream out of the authorizer (fixed in 1.31.2 by
    temporalio/temporal#9917); the server and admin-tools move together."""
    for name in ("temporal", "temporal-schema", "temporal-setup"):
        repo, _, tag = services()[name]["image"].rpartition(":")
        assert repo in ("temporalio/server", "temporalio/admin-tools"), name
        assert tuple(int(p) for p in tag.split(".")) >= (1, 31, 2), f"{name}: {tag}"


def test_no_two_services_publish_one_host_port() -> None:
    seen: dict[str, str] = {}
    for name, s in services().items():
        for port in s.get("ports", []):
            parts = str(port).split(":")
            host = ":".join(parts[:-1])  # [IP:]HOST_PORT
            host_port = host.rsplit(":", 1)[-1]
            assert host_port not in seen, f"{name} and {seen[host_port]} both publish {host_port}"
            seen[host_port] = name
    assert {"7233", "8080", "8081"} <= set(seen)
    assert seen["8080"] == "temporal-ui" and seen["8081"] == "amsm-console"


def test_every_image_is_pinned() -> None:
    for name, s in services().items():
        image = s["image"]
        if "build" in s or image.startswith(("amsm-worker:", "amsm-console:")):
            assert image.endswith(":local"), name  # built here, from this checkout
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"\d+(\.\d+){1,2}", tag), f"{name}: {image} is not pinned"


def test_every_variable_is_one_the_operator_is_told_to_set() -> None:
    text = COMPOSE.read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", text))
    assert used == TOLD | DEFAULTED
    head = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    for name in TOLD:
        assert f"export {name}=" in head, name
        # a variable without a default stops compose with a sentence, never an empty value
        assert all(
            f"${{{name}:?set {name}}}" == m for m in re.findall(rf"\$\{{{name}[^}}]*}}", text)
        )


def test_every_file_mounted_from_the_checkout_exists() -> None:
    for name, s in services().items():
        for volume in s.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}"
    config = auth_config.server_config()["dynamicConfigClient"]["filepath"]
    assert (ROOT / "dynamicconfig" / Path(config).name).exists()


def test_amsm_programs_read_what_compose_sets(monkeypatch: Any) -> None:
    """Each TEMPORAL_* and AMSM_* variable set for the workers and the console is one
    wire/options.py (or wire/connection.py) reads, and the files it names are ones
    `amsm auth init` writes under the mount."""
    read = (ROOT / "wire" / "options.py").read_text() + (
        ROOT / "wire" / "connection.py"
    ).read_text()
    written = {"ca.pem", "worker.pem", "worker-key.pem", "worker.jwt"}
    written |= {"console.pem", "console-key.pem", "console.jwt"}
    for name in ("amsm-worker-x", "amsm-worker-y", "amsm-console"):
        for key, value in environment(services()[name]).items():
            assert f'"{key}"' in read or key == "AMSM_INVENTORY", (name, key)
            if value.startswith(auth_config.MOUNT):
                assert value.removeprefix(auth_config.MOUNT + "/") in written, (name, value)
    monkeypatch.setenv("TEMPORAL_API_KEY_FILE", "/nonexistent/worker.jwt")
    monkeypatch.delenv("TEMPORAL_API_KEY", raising=False)
    try:
        api_key()
    except Exception as e:
        assert "TEMPORAL_API_KEY_FILE /nonexistent/worker.jwt" in str(e)
    else:
        raise AssertionError("a missing token file was taken")


def test_the_server_reads_the_rendered_config() -> None:
    temporal = environment(services()["temporal"])
    assert (
        temporal["TEMPORAL_SERVER_CONFIG_FILE_PATH"] == f"{auth_config.MOUNT}/temporal-server.yaml"
    )
    assert "internal-frontend" in temporal["TEMPORAL_SERVICES"].split(",")
    ui = services()["temporal-ui"]
    assert ui["env_file"] == ["${AMSM_AUTH:?set AMSM_AUTH}/temporal-ui.env"]
    jwks = services()["jwks"]
    assert auth_config.JWKS_URI.startswith("http://jwks:8000/")
    assert any(v.endswith(":/srv/jwks.json:ro") for v in jwks["volumes"])


def auth_mounts(service: dict[str, Any]) -> set[str]:
    """The files of $AMSM_AUTH a service mounts (each at MOUNT/<the same name>)."""
    got = set()
    for volume in service.get("volumes", []):
        if volume.startswith("${AMSM_AUTH"):
            rest = volume.removeprefix("${AMSM_AUTH:?set AMSM_AUTH}")
            source, target = rest.split(":")[:2]
            name = source.removeprefix("/")
            assert name and "/" not in name, f"{volume}: the whole folder, or a subfolder"
            if target != "/srv/jwks.json":
                assert target == f"{auth_config.MOUNT}/{name}", volume
            got.add(name)
    return got


def named(text: str) -> set[str]:
    """The files under MOUNT a text names."""
    return set(re.findall(re.escape(auth_config.MOUNT) + r"/([A-Za-z0-9._-]+)", text))


def test_each_service_mounts_only_the_files_it_reads() -> None:
    """No container gets the folder `amsm auth init` wrote: the UI never sees the
    server's key or the admin token, a worker never the console's (T3 of the review)."""
    s = services()
    server_reads = named(yaml.safe_dump(auth_config.server_config())) | {"temporal-server.yaml"}
    want = {
        "temporal": server_reads,
        "temporal-ui": named(auth_config.ui_env("default")),
        "temporal-setup": named(COMPOSE.read_text()) & {"admin.jwt", "admin.pem", "admin-key.pem"}
        | {"ca.pem"},
        "amsm-worker-x": named(yaml.safe_dump(environment(s["amsm-worker-x"]))),
        "amsm-worker-y": named(yaml.safe_dump(environment(s["amsm-worker-y"]))),
        "amsm-console": named(yaml.safe_dump(environment(s["amsm-console"]))),
        "jwks": {"jwks.json"},
    }
    assert want["temporal-ui"] == {"ca.pem", "ui.pem", "ui-key.pem"}
    assert want["temporal-setup"] == {"ca.pem", "admin.pem", "admin-key.pem", "admin.jwt"}
    assert {"internode.pem", "internode-key.pem", "temporal-key.pem"} <= want["temporal"]
    for name, service in s.items():
        assert auth_mounts(service) == want.get(name, set()), name
    assert "signing" not in COMPOSE.read_text().split("services:", 1)[1]


def test_the_set_up_jobs_token_is_never_on_a_command_line() -> None:
    """`--api-key $(cat ...)` shows the token to anyone running `ps`: the temporal CLI
    reads it from TEMPORAL_API_KEY instead."""
    command = " ".join(services()["temporal-setup"]["command"])
    assert "--api-key" not in command
    assert 'export TEMPORAL_API_KEY="$$(cat $$a/admin.jwt)";' in command
