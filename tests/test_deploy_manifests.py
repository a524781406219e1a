"""The deployment files (deploy/) checked offline against the code they deploy.

No Docker engine or cluster runs here, so this checks what can be checked without one:
every Kubernetes manifest validates strictly against the Kubernetes 1.37 schemas
(kubernetes-validate); the compose file's services, env files, interpolations,
dependencies and health checks refer to things that exist; the Dockerfile is
multi-stage, non-root, has a HEALTHCHECK, and runs the Procfile's web line; every
environment variable the deploy files give an app container is one the code reads
(videochat/settings.py, videochat/webpool.py), so they cannot drift apart. Then, in a
copy of what the image's /app would hold (the .dockerignore'd context plus the build's
collectstatic), the settings accept the deploy environments and the image's command
serves its HEALTHCHECK (docs/deployment.md).
"""

from __future__ import annotations

import ast
import http.client
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from videochat.devstack import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
COMPOSE_DIR = DEPLOY / "compose"
KUBERNETES_VERSION = "1.37.0"
IMAGE = "huddle:dev"

# What production cannot run without (settings refuse to start, or the product has no
# database, channel layer, dead letters or TURN).
PRODUCTION_SETTINGS = {
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL",
    # Redis through its Sentinels, password-protected (videochat/redisconfig.py).
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_PASSWORD",
    "MONGODB_URI",
    "TURN_URLS",
    "TURN_SECRET",
}
# The Dockerfile may also set the interpreter's and pip's own variables.
INTERPRETER_ENV = {
    "PATH",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "PIP_NO_CACHE_DIR",
}


# --- what the code reads and runs ----------------------------------------------------


def code_env_names() -> set[str]:
    """Every environment variable settings.py, webpool.py and redisconfig.py read (the
    settings hand the environment to redisconfig), found in their AST."""
    names: set[str] = set()
    for path in (
        ROOT / "videochat" / "settings.py",
        ROOT / "videochat" / "webpool.py",
        ROOT / "videochat" / "redisconfig.py",
    ):
        for node in ast.walk(ast.parse(path.read_text())):
            key = None
            if isinstance(node, ast.Call) and node.args:
                func = node.func
                if isinstance(func, ast.Attribute) and (
                    (isinstance(func.value, ast.Name) and func.value.id == "env")
                    or (ast.unparse(func) in {"os.environ.get", "os.getenv", "environ.get"})
                ):
                    key = node.args[0]
                elif isinstance(func, ast.Name) and func.id in {"env_bool", "env_positive"}:
                    key = node.args[0]
            elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
                key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                names.add(key.value)
    return names


CODE_ENV = code_env_names()


def procfile() -> dict[str, list[str]]:
    """The Procfile's commands as a container runs them: the image's venv is on PATH,
    the web server listens on all interfaces of the container, on port 8000."""
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, command = line.split(":", 1)
        argv = shlex.split(command)
        argv[0] = argv[0].removeprefix(".venv/bin/")
        argv = ["8000" if arg == "${WEB_PORT:-8000}" else arg for arg in argv]
        if "--bind" in argv:
            argv[argv.index("--bind") + 1] = "0.0.0.0"
        commands[name.strip()] = argv
    return commands


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def test_the_code_reads_the_variables_the_checks_rely_on():
    """The AST reader finds reads in both files (else every env check would pass)."""
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "TURN_SECRET"} <= CODE_ENV  # settings.py
    assert {"WEB_WORKERS", "USE_X_FORWARDED_FOR"} <= CODE_ENV  # webpool.py
    assert set(procfile()) == {"web", "worker", "rq", "rqcron"}


# --- Kubernetes ---------------------------------------------------------------------


def k8s_documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                name = f"{path.relative_to(K8S)}:{doc['kind']}/{doc['metadata']['name']}"
                docs.append((name, doc))
    return docs


K8S_DOCS = k8s_documents()


def k8s(kind: str, name: str) -> dict:
    matches = [d for _, d in K8S_DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} manifests"
    return matches[0]


def pod_templates() -> list[tuple[dict, dict]]:
    """(workload, pod template) for every Deployment, StatefulSet and Job."""
    return [
        (doc, doc["spec"]["template"])
        for _, doc in K8S_DOCS
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}
    ]


def huddle_containers() -> list[tuple[str, dict]]:
    return [
        (workload["metadata"]["name"], container)
        for workload, template in pod_templates()
        for container in template["spec"]["containers"]
        if container["image"] == IMAGE
    ]


def container_env(container: dict) -> dict[str, str]:
    """The variables a container gets: its ConfigMaps and Secrets, then its own env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(k8s("ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            env.update(k8s("Secret", source["secretRef"]["name"])["stringData"])
    env.update({item["name"]: item.get("value", "") for item in container.get("env", [])})
    return env


def test_there_are_manifests_for_every_part():
    kinds = {(d["kind"], d["metadata"]["name"]) for _, d in K8S_DOCS}
    assert {
        ("Deployment", "huddle-web"),
        ("Deployment", "huddle-worker"),
        ("Deployment", "huddle-rq"),
        ("Deployment", "huddle-rqcron"),
        ("Job", "huddle-migrate"),
        ("Service", "huddle-web"),
        ("HorizontalPodAutoscaler", "huddle-web"),
        ("PodDisruptionBudget", "huddle-web"),
        ("ConfigMap", "huddle-config"),
        ("Secret", "huddle-secrets"),
    } <= kinds


@pytest.mark.parametrize(("name", "doc"), K8S_DOCS, ids=[name for name, _ in K8S_DOCS])
def test_kubernetes_manifest_validates_strictly(name, doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_refuses_an_unknown_field():
    """The check above has teeth: a misspelt field fails."""
    doc = json.loads(json.dumps(k8s("Deployment", "huddle-web")))
    doc["spec"]["template"]["spec"]["terminationGracePeriod"] = 45
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kubernetes_sets_only_variables_the_code_reads():
    for workload, container in huddle_containers():
        unknown = set(container_env(container)) - CODE_ENV
        assert not unknown, f"{workload}: the code reads no {sorted(unknown)}"


def test_every_app_pod_gets_the_production_settings():
    containers = huddle_containers()
    assert {w for w, _ in containers} >= {
        "huddle-web",
        "huddle-worker",
        "huddle-rq",
        "huddle-rqcron",
        "huddle-migrate",
    }
    for workload, container in containers:
        env = container_env(container)
        assert PRODUCTION_SETTINGS <= set(env), (
            f"{workload}: missing {PRODUCTION_SETTINGS - set(env)}"
        )
        assert env["DJANGO_DEBUG"] == "0"


def test_secrets_in_the_repository_are_placeholders():
    for _, doc in K8S_DOCS:
        if doc["kind"] == "Secret":
            for key, value in doc["stringData"].items():
                assert "change-me" in value, f"{doc['metadata']['name']}.{key} looks real"
    for key, value in read_env_file(COMPOSE_DIR / "secrets.env").items():
        assert value.startswith("change-me"), f"secrets.env {key} looks real"


def test_app_pods_run_the_procfile_commands():
    commands = procfile()
    web = k8s("Deployment", "huddle-web")["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in web and "args" not in web, "web runs the image's CMD"
    assert dockerfile_cmd() == commands["web"]
    for process in ("worker", "rq", "rqcron"):
        container = k8s("Deployment", f"huddle-{process}")["spec"]["template"]["spec"]
        assert container["containers"][0]["command"] == commands[process]
    migrate = k8s("Job", "huddle-migrate")["spec"]["template"]["spec"]["containers"][0]
    assert migrate["command"] == ["python", "manage.py", "migrate", "--no-input"]


def test_only_one_rq_cron_runs_even_during_a_rollout():
    cron = k8s("Deployment", "huddle-rqcron")["spec"]
    assert cron["replicas"] == 1
    assert cron["strategy"]["type"] == "Recreate"


def test_web_pods_drain_before_they_stop():
    spec = k8s("Deployment", "huddle-web")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] >= 40
    web = spec["containers"][0]
    # Out of the Service's endpoints before SIGTERM starts the pool's drain.
    assert web["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert container_env(web)["USE_X_FORWARDED_FOR"] == "1"


def test_web_readiness_is_readyz_and_liveness_survives_a_dependency_outage():
    web = k8s("Deployment", "huddle-web")["spec"]["template"]["spec"]["containers"][0]
    readiness = web["readinessProbe"]["httpGet"]
    # The pod's own state (503 while it drains), not the stores every pod shares.
    assert readiness["path"] == "/readyz"
    assert readiness["port"] in {p["name"] for p in web["ports"]}
    # /healthz is 503 while Redis, the database or MongoDB is down: liveness must not
    # use it, or an outage would restart every pod.
    liveness = web["livenessProbe"]
    assert "tcpSocket" in liveness or liveness["httpGet"]["path"] != "/healthz"
    assert "exec" not in liveness


def test_hpa_scales_web_on_cpu_and_the_recommended_nodes():
    hpa = k8s("HorizontalPodAutoscaler", "huddle-web")["spec"]
    target = hpa["scaleTargetRef"]
    k8s(target["kind"], target["name"])
    assert hpa["minReplicas"] >= 2
    metrics = {m["type"]: m for m in hpa["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    external = metrics["External"]["external"]
    assert external["metric"]["name"] == "huddle_recommended_nodes"
    # AverageValue 1: desired pods = the recommended number of nodes.
    assert external["target"] == {"type": "AverageValue", "averageValue": "1"}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_pdb_keeps_one_web_pod():
    pdb = k8s("PodDisruptionBudget", "huddle-web")["spec"]
    assert pdb["minAvailable"] == 1
    web_labels = k8s("Deployment", "huddle-web")["spec"]["template"]["metadata"]["labels"]
    assert selects(pdb["selector"]["matchLabels"], web_labels)
    others = [
        w["metadata"]["name"]
        for w, t in pod_templates()
        if w["metadata"]["name"] != "huddle-web"
        and selects(pdb["selector"]["matchLabels"], t["metadata"]["labels"])
    ]
    assert not others, f"the web PDB also covers {others}"


def test_services_and_workloads_select_their_own_pods():
    templates = pod_templates()
    for _, doc in K8S_DOCS:
        if doc["kind"] == "Service":
            pods = [
                t for _, t in templates if selects(doc["spec"]["selector"], t["metadata"]["labels"])
            ]
            assert pods, f"Service {doc['metadata']['name']} selects no pods"
            port_names = {
                p["name"] for t in pods for c in t["spec"]["containers"] for p in c.get("ports", [])
            }
            for port in doc["spec"]["ports"]:
                assert port["targetPort"] in port_names
    for workload, template in templates:
        if workload["kind"] != "Job":
            assert selects(
                workload["spec"]["selector"]["matchLabels"], template["metadata"]["labels"]
            )


def test_redis_has_the_sentinel_topology_and_the_app_asks_the_sentinels():
    primary = k8s("StatefulSet", "huddle-redis-primary")
    replica = k8s("StatefulSet", "huddle-redis-replica")
    sentinel = k8s("StatefulSet", "huddle-redis-sentinel")
    assert "--replicaof huddle-redis-primary 6379" in " ".join(
        replica["spec"]["template"]["spec"]["containers"][0]["command"]
    )
    assert sentinel["spec"]["replicas"] >= 3
    assert "sentinel monitor huddle huddle-redis-primary 6379 2" in " ".join(
        sentinel["spec"]["template"]["spec"]["containers"][0]["command"]
    )
    assert primary["spec"]["replicas"] == 1
    # The app lists every Sentinel pod by its own DNS name (a headless Service), and
    # names the primary the Sentinels monitor.
    config = k8s("ConfigMap", "huddle-config")["data"]
    assert k8s("Service", "huddle-redis-sentinel")["spec"]["clusterIP"] == "None"
    pods = [
        f"huddle-redis-sentinel-{i}.huddle-redis-sentinel:26379"
        for i in range(sentinel["spec"]["replicas"])
    ]
    assert config["REDIS_SENTINELS"].split(",") == pods
    assert config["REDIS_SENTINEL_MASTER"] == "huddle"
    secret = k8s("Secret", "huddle-secrets")["stringData"]
    assert "REDIS_URL" not in secret and secret["REDIS_PASSWORD"]


# --- Docker compose -------------------------------------------------------------------

COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]


def app_services() -> dict[str, dict]:
    return {name: svc for name, svc in SERVICES.items() if svc.get("image") == IMAGE}


def compose_env(service: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    for env_file in service.get("env_file", []):
        env.update(read_env_file(COMPOSE_DIR / env_file))
    env.update({k: str(v) for k, v in (service.get("environment") or {}).items()})
    return env


def web_services() -> dict[str, dict]:
    return {
        name: svc
        for name, svc in app_services().items()
        if svc.get("command", dockerfile_cmd())[:3] == ["python", "-m", "videochat.webpool"]
    }


def test_compose_runs_the_whole_topology():
    commands = procfile()
    apps = app_services()
    by_command = {}
    for name, svc in apps.items():
        by_command.setdefault(tuple(svc["command"]), []).append(name)
    assert len(by_command[tuple(commands["web"])]) >= 2, "two web nodes"
    for process in ("worker", "rq", "rqcron"):
        assert by_command.get(tuple(commands[process])), f"no {process} service"
    assert len(by_command[tuple(commands["rqcron"])]) == 1, "exactly one rq cron"
    assert by_command[("python", "manage.py", "migrate", "--no-input")] == ["migrate"]
    images = {name: svc.get("image", "") for name, svc in SERVICES.items()}
    for part in ("haproxy", "postgres", "mongo", "coturn"):
        assert any(image.startswith(part) for image in images.values()), part
    redis = [n for n, image in images.items() if image.startswith("redis")]
    commands_of = {n: json.dumps(SERVICES[n]["command"]) for n in redis}
    assert [n for n in redis if "--replicaof redis-primary 6379" in commands_of[n]]
    assert len([n for n in redis if "redis-sentinel" in commands_of[n]]) >= 3
    assert [n for n in redis if "sentinel monitor huddle redis-primary 6379 2" in commands_of[n]]
    # The app services ask those Sentinels (each one, by service name) for the primary.
    sentinels = {n for n in redis if "redis-sentinel" in commands_of[n]}
    for name, svc in apps.items():
        env = compose_env(svc)
        listed = {entry.split(":")[0] for entry in env["REDIS_SENTINELS"].split(",")}
        assert listed == sentinels, f"{name}: REDIS_SENTINELS names {listed}"
        assert env["REDIS_SENTINEL_MASTER"] == "huddle"
        assert "REDIS_URL" not in env


def test_compose_references_exist():
    volumes = set(COMPOSE.get("volumes") or {})
    for name, svc in SERVICES.items():
        assert "image" in svc or "build" in svc, name
        if "build" in svc:
            context = (COMPOSE_DIR / svc["build"]["context"]).resolve()
            assert context == ROOT
            assert (context / svc["build"]["dockerfile"]).is_file()
        for env_file in svc.get("env_file", []):
            assert (COMPOSE_DIR / env_file).is_file(), f"{name}: {env_file}"
        for dependency in svc.get("depends_on") or {}:
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_DIR / source).exists(), f"{name}: {source}"
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"


def test_compose_interpolates_only_variables_secrets_env_defines():
    text = COMPOSE_FILE.read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    defined = set(read_env_file(COMPOSE_DIR / "secrets.env"))
    assert used, "compose takes its secrets by interpolation"
    assert used == defined, f"used {sorted(used)}, secrets.env {sorted(defined)}"


def test_compose_app_services_get_only_variables_the_code_reads():
    for name, svc in app_services().items():
        env = compose_env(svc)
        unknown = set(env) - CODE_ENV
        assert not unknown, f"{name}: the code reads no {sorted(unknown)}"
        assert PRODUCTION_SETTINGS <= set(env), f"{name}: missing {PRODUCTION_SETTINGS - set(env)}"
        assert env["DJANGO_DEBUG"] == "0"


def test_compose_app_services_start_after_migrations():
    for name, svc in app_services().items():
        if name != "migrate":
            assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_web_nodes_are_checked_on_healthz_and_drain():
    webs = web_services()
    assert len(webs) >= 2
    for name, svc in webs.items():
        assert svc["healthcheck"]["test"] == ["CMD", "python", "/app/deploy/healthcheck.py"], name
        assert svc["environment"]["USE_X_FORWARDED_FOR"] == "1"
        assert int(svc["stop_grace_period"].removesuffix("s")) >= 40
    assert "http://127.0.0.1:{port}/healthz" in (DEPLOY / "healthcheck.py").read_text()


def test_compose_file_validates_against_the_compose_schema(tmp_path):
    """Debian's docker-compose 1.29 validates the file against its Compose schema without a
    Docker engine. It predates the top-level ``name``, which is left out of its copy."""
    text = COMPOSE_FILE.read_text()
    assert "\nname: huddle\n" in text
    copy = tmp_path / "compose.yaml"
    copy.write_text(text.replace("\nname: huddle\n", "\n"))
    result = subprocess.run(
        [
            "docker-compose",
            "-f",
            str(copy),
            "--project-directory",
            str(COMPOSE_DIR),
            "--env-file",
            str(COMPOSE_DIR / "secrets.env"),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def load_healthcheck():
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", DEPLOY / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_healthcheck_names_an_allowed_host():
    probe_host = load_healthcheck().probe_host
    assert probe_host("localhost,127.0.0.1") == "localhost"
    assert probe_host(" chat.example.com ,other") == "chat.example.com"
    assert probe_host(".example.com") == "example.com"
    assert probe_host("*") == "localhost"


# --- HAProxy ----------------------------------------------------------------------------

HAPROXY_CFG = DEPLOY / "haproxy" / "haproxy.cfg"


def test_haproxy_balances_the_compose_web_nodes():
    text = HAPROXY_CFG.read_text()
    servers = re.findall(r"^\s*server\s+\S+\s+([\w-]+):(\d+)\s", text, re.M)
    assert sorted(host for host, _ in servers) == sorted(web_services())
    assert {port for _, port in servers} == {"8000"}
    assert "uri /readyz" in text
    host = re.search(r"http-check send .* hdr Host (\S+)", text).group(1)
    allowed = read_env_file(COMPOSE_DIR / "huddle.env")["DJANGO_ALLOWED_HOSTS"].split(",")
    assert host in allowed
    # The nodes trust the first X-Forwarded-For entry: HAProxy must set it, not append.
    assert "http-request set-header X-Forwarded-For %[src]" in text
    assert "option forwardfor" not in text
    haproxy_port = re.search(r"^\s*bind :(\d+)", text, re.M).group(1)
    assert f"{haproxy_port}:{haproxy_port}" in SERVICES["haproxy"]["ports"]


def test_haproxy_accepts_its_configuration():
    result = subprocess.run(
        ["haproxy", "-c", "-f", str(HAPROXY_CFG)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- Dockerfile ---------------------------------------------------------------------------

DOCKERFILE = DEPLOY / "Dockerfile"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions = []
    current = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        word, _, rest = current.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
        current = ""
    return instructions


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in dockerfile_instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def dockerfile_cmd() -> list[str]:
    final = dockerfile_stages()[-1]
    return json.loads([args for word, args in final if word == "CMD"][-1])


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck():
    stages = dockerfile_stages()
    assert len(stages) >= 2
    names = [args.split()[-1] for (_, args), *_ in stages if " AS " in args.upper()]
    for stage in stages:
        for word, args in stage:
            if word == "COPY" and "--from=" in args:
                assert re.search(r"--from=(\S+)", args).group(1) in names
    final = stages[-1]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    healthcheck = [args for word, args in final if word == "HEALTHCHECK"]
    assert healthcheck and "/app/deploy/healthcheck.py" in healthcheck[0]
    assert not [args for word, args in final if word == "ENTRYPOINT"]


def test_dockerfile_runs_the_procfile_web_line():
    assert dockerfile_cmd() == procfile()["web"]


def test_dockerfile_sets_only_interpreter_variables():
    for word, args in dockerfile_instructions():
        if word == "ENV":
            names = {pair.split("=")[0] for pair in shlex.split(args)}
            assert names <= INTERPRETER_ENV, names - INTERPRETER_ENV


def collectstatic_step() -> tuple[dict[str, str], list[str]]:
    """The build's collectstatic RUN: its variables and its manage.py arguments."""
    runs = [
        args
        for word, args in dockerfile_instructions()
        if word == "RUN" and "collectstatic" in args
    ]
    assert len(runs) == 1
    words = shlex.split(runs[0])
    env = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
    manage = words[words.index("manage.py") :]
    return env, manage


def dockerignore_patterns() -> list[str]:
    return [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's (Go filepath.Match) syntax: ``*`` and ``?`` stop at ``/``, ``**`` does not."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _pattern_regex(pattern.removeprefix("!").removeprefix("/").rstrip("/"))
        if any(regex.match(candidate) for candidate in candidates):
            ignored = not negate
    return ignored


def build_context(dest: Path) -> None:
    """Copy what ``docker build`` would send: the repository less .dockerignore."""
    patterns = dockerignore_patterns()
    reincluded = [p.removeprefix("!") for p in patterns if p.startswith("!")]
    for folder, dirs, files in os.walk(ROOT):
        relative_folder = Path(folder).relative_to(ROOT).as_posix().removeprefix(".")
        prefix = f"{relative_folder}/" if relative_folder else ""
        # Skip ignored folders (the venv, node_modules...) unless a "!" pattern reaches in.
        dirs[:] = [
            d
            for d in dirs
            if not dockerignored(prefix + d, patterns)
            or any(p.startswith(prefix + d + "/") for p in reincluded)
        ]
        for name in files:
            relative = prefix + name
            source = Path(folder) / name
            if not source.is_symlink() and not dockerignored(relative, patterns):
                target = dest / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)


def test_dockerignore_keeps_what_the_image_runs():
    patterns = dockerignore_patterns()
    for needed in (
        "manage.py",
        "requirements.txt",
        "videochat/settings.py",
        "rooms/consumers.py",
        "messaging/services.py",
        "deliveries/cron.py",
        "templates/base.html",
        "static/js/main.js",
        "deploy/healthcheck.py",
    ):
        assert (ROOT / needed).exists(), needed
        assert not dockerignored(needed, patterns), needed
    for dropped in (
        ".venv/bin/python",
        "var/db.sqlite3",
        "tests/conftest.py",
        "staticfiles/x",
        "rooms/__pycache__/models.cpython-311.pyc",
        "deploy/compose/secrets.env",
        "README.md",
    ):
        assert dockerignored(dropped, patterns), dropped
    # As in Docker, "*.md" is the root's only: a Markdown file an app ships stays.
    assert not dockerignored("rooms/notes.md", patterns)


@pytest.fixture(scope="module")
def image_tree(tmp_path_factory) -> Path:
    """/app as the image has it: the build context, then the Dockerfile's collectstatic
    with that step's own variables (and nothing of this test run's environment)."""
    tree = tmp_path_factory.mktemp("image") / "app"
    build_context(tree)
    env, manage = collectstatic_step()
    result = subprocess.run(
        [sys.executable, *manage],
        cwd=tree,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return tree


def test_collectstatic_build_step_makes_the_production_manifest(image_tree):
    env, _ = collectstatic_step()
    assert env["DJANGO_DEBUG"] == "0", "the production storage makes the manifest"
    manifest = json.loads((image_tree / "staticfiles" / "staticfiles.json").read_text())
    assert "js/main.js" in manifest["paths"]


def settings_check(image_tree: Path, env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=image_tree,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def test_kubernetes_settings_pass_the_deploy_check(image_tree):
    """The web pod's environment (ConfigMap, placeholder Secret, its own env) is accepted
    by the settings and is clean under ``check --deploy`` at warning level."""
    web = k8s("Deployment", "huddle-web")["spec"]["template"]["spec"]["containers"][0]
    env = container_env(web) | {"DATABASE_URL": f"sqlite:///{image_tree}/var/check.sqlite3"}
    settings_check(image_tree, env, "--deploy", "--fail-level", "WARNING")


def test_compose_settings_are_accepted(image_tree):
    """The compose web nodes' environment, secrets interpolated from secrets.env."""
    secrets = read_env_file(COMPOSE_DIR / "secrets.env")
    env = {
        k: re.sub(r"\$\{(\w+)[^}]*\}", lambda m: secrets[m.group(1)], v)
        for k, v in compose_env(next(iter(web_services().values()))).items()
    }
    settings_check(image_tree, env | {"DATABASE_URL": f"sqlite:///{image_tree}/var/c.sqlite3"})


def start_image_web(image_tree: Path, port: int, **overrides: str) -> subprocess.Popen:
    """The image's CMD (on 127.0.0.1 and a free port) with the compose web environment."""
    argv = dockerfile_cmd()
    assert argv[0] == "python"
    argv[argv.index("--bind") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    secrets = read_env_file(COMPOSE_DIR / "secrets.env")
    env = {
        "PATH": os.environ["PATH"],
        **read_env_file(COMPOSE_DIR / "huddle.env"),
        "DJANGO_SECRET_KEY": secrets["DJANGO_SECRET_KEY"],
        "TURN_SECRET": secrets["TURN_SECRET"],
        "USE_X_FORWARDED_FOR": "1",
        "DATABASE_URL": f"sqlite:///{image_tree}/var/db.sqlite3",
        "REDIS_URL": os.environ["REDIS_URL"],  # the test run's private servers
        "MONGODB_URI": os.environ["MONGODB_URI"],
        **overrides,
    }
    return subprocess.Popen(
        [sys.executable, *argv[1:]],
        cwd=image_tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_healthcheck(image_tree: Path, port: int) -> int:
    return subprocess.run(
        [sys.executable, str(image_tree / "deploy" / "healthcheck.py"), str(port)],
        env={"PATH": os.environ["PATH"], "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1"},
        capture_output=True,
        timeout=30,
    ).returncode


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@pytest.mark.live
def test_image_command_serves_healthz_and_hashed_static_files(image_tree):
    """The CMD, in the image's tree with production settings: the HEALTHCHECK passes,
    whitenoise serves the build's hashed files, and SIGTERM stops it cleanly."""
    port = free_port()
    proc = start_image_web(image_tree, port)
    try:
        wait_for_port(port, timeout=30, proc=proc)
        assert run_healthcheck(image_tree, port) == 0
        manifest = json.loads((image_tree / "staticfiles" / "staticfiles.json").read_text())
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", f"/static/{manifest['paths']['js/main.js']}")
        response = connection.getresponse()
        assert response.status == 200
        assert "immutable" in response.getheader("Cache-Control", "")
        connection.close()
    finally:
        assert stop(proc) == 0


@pytest.mark.live
def test_a_redis_outage_fails_readiness_but_not_liveness(image_tree):
    """With Redis unreachable, the HEALTHCHECK / readiness (/healthz) fails while the
    port still accepts: the TCP liveness probe would not restart the pod."""
    port = free_port()
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    proc = start_image_web(image_tree, port, REDIS_URL=dead_redis)
    try:
        wait_for_port(port, timeout=30, proc=proc)
        assert run_healthcheck(image_tree, port) == 1
        with socket.create_connection(("127.0.0.1", port), timeout=3):
            pass
        assert proc.poll() is None
    finally:
        stop(proc)
