"""Offline checks of everything under deploy/, run by ``make lint`` (no cluster, no Docker, no
network: CI has none of them).

Kubernetes: each kustomization (the base and every overlay) is rendered by the small subset of
Kustomize below, then every document is validated: built-in kinds against the Kubernetes
OpenAPI schemas that ``kubernetes-validate`` bundles (strict: an unknown field is an error, as
with ``kubectl apply --validate=strict``), CloudNativePG kinds against the JSON schemas
committed in deploy/kubernetes/schemas/, any other kind is an error. Then the rules a schema
cannot say: probes on /readyz and /healthz, requests and limits, non-root, Services, HPAs and
PDBs that point at a Deployment, no committed Secret, no secret value in plain text,
enough PostgreSQL connections for every replica with a database the HPAs may start,
Prometheus's scrape annotations on every Deployment (/metrics on its http port), and no
Ingress routing ``/`` as a prefix (that would make /metrics public; an Exact ``/`` is the web
app's home page).

Compose: every long-running service has a healthcheck, the application services wait for the
one-shot ``migrate``, secrets come only from required ``${VAR:?message}`` interpolations, and
ports are published on loopback only. The Dockerfile's final stage runs as a non-root user
and has a HEALTHCHECK (hadolint lints the rest).

The Kustomize subset, exactly: ``resources`` (files, or directories holding a
kustomization.yaml), ``namespace``, ``images`` (name, newName, newTag, digest) and
``patches`` given by ``path`` holding strategic-merge patches that find their target by
apiVersion, kind and name. In a patch, maps merge, scalars replace, null deletes, and lists
merge by their Kubernetes merge key only where listed in MERGE_KEYS (containers and env by
name, ...) on built-in kinds; any other list, any ``$patch`` directive or any other
kustomization field is refused, so the rendering is never a guess at what kustomize would do.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.30"
CRD_SCHEMAS = {
    ("postgresql.cnpg.io/v1", "Cluster"): "postgresql.cnpg.io_v1_cluster.json",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): "postgresql.cnpg.io_v1_scheduledbackup.json",
}
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}
# closedloop.db.create_database's pool: the most connections one service replica holds
POOL_PER_REPLICA = 20
POSTGRES_HEADROOM = 20  # the migration Job, the operator, a psql session
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
SECRET_NAME = re.compile(r"(PASSWORD|TOKEN|SECRET|_KEY$)", re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"://[^/:@\s]+:(\$\{[^}]*\}|[^@\s]+)@")  # user:password@
REQUIRED_VAR = re.compile(r"^\$\{[A-Z0-9_]+:\?[^}]+\}$")


class RenderError(Exception):
    pass


# --- rendering: the Kustomize subset ----------------------------------------------------------


def load_documents(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def strategic_merge(base: Any, patch: Any, path: str, builtin: bool) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if key.startswith("$"):
                raise RenderError(f"{path}.{key}: patch directives are not supported")
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, f"{path}.{key}", builtin)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list):
        key = MERGE_KEYS.get(path.rsplit(".", 1)[-1]) if builtin else None
        if key is None:
            raise RenderError(f"{path}: patching this list is outside the supported subset")
        merged_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            index = next((i for i, b in enumerate(merged_list) if b.get(key) == item[key]), None)
            if index is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[index] = strategic_merge(
                    merged_list[index], item, f"{path}[{item[key]}]", builtin
                )
        return merged_list
    return copy.deepcopy(patch)


def identity(doc: dict[str, Any]) -> tuple[str, str, str]:
    return (doc.get("apiVersion", ""), doc.get("kind", ""), doc.get("metadata", {}).get("name", ""))


def pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc.get("kind") in POD_TEMPLATE_KINDS:
        return [doc.get("spec", {}).get("template", {}).get("spec", {})]
    return []


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for spec in pod_specs(doc)
        for c in spec.get("containers", []) + spec.get("initContainers", [])
    ]


def set_image(image: str, rule: dict[str, Any]) -> str:
    name = re.split(r"[@]", image)[0]
    name = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    if name != rule["name"]:
        return image
    new = rule.get("newName", name)
    if "digest" in rule:
        return f"{new}@{rule['digest']}"
    tag = rule.get("newTag", image[len(name) + 1 :] if image.startswith(f"{name}:") else "")
    return f"{new}:{tag}" if tag else new


def render(directory: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KUSTOMIZATION_FIELDS
    if unknown:
        raise RenderError(f"{directory}: unsupported kustomization fields {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        target = directory / resource
        docs += render(target) if target.is_dir() else load_documents(target)
    for entry in kustomization.get("patches", []):
        if set(entry) != {"path"}:
            raise RenderError(f"{directory}: a patch must be given by path alone: {entry}")
        for patch in load_documents(directory / entry["path"]):
            matches = [i for i, doc in enumerate(docs) if identity(doc) == identity(patch)]
            if len(matches) != 1:
                raise RenderError(
                    f"{directory / entry['path']}: no single target for {identity(patch)}"
                )
            builtin = identity(patch)[:2] not in CRD_SCHEMAS
            docs[matches[0]] = strategic_merge(docs[matches[0]], patch, "", builtin)
    for rule in kustomization.get("images", []):
        for doc in docs:
            for container in containers(doc):
                container["image"] = set_image(container["image"], rule)
    if "namespace" in kustomization:
        for doc in docs:
            doc.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    seen = [identity(doc) for doc in docs]
    duplicates = {i for i in seen if seen.count(i) > 1}
    if duplicates:
        raise RenderError(f"{directory}: duplicate objects {sorted(duplicates)}")
    return docs


# --- schemas ----------------------------------------------------------------------------------


def schema_errors(doc: dict[str, Any], schemas: Path) -> list[str]:
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key in CRD_SCHEMAS:
        schema = json.loads((schemas / CRD_SCHEMAS[key]).read_text())
        validator = jsonschema.Draft202012Validator(schema)
        return [
            f"{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in validator.iter_errors(doc)
        ]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"no schema: {e.message}"]
    return []


# --- rules ------------------------------------------------------------------------------------


def probe_path(container: dict[str, Any], probe: str) -> str | None:
    return container.get(probe, {}).get("httpGet", {}).get("path")


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def env_errors(env: list[dict[str, Any]]) -> list[str]:
    errors = []
    for var in env:
        value = var.get("value")
        if value is None:
            continue
        if SECRET_NAME.search(var["name"]):
            errors.append(f"env {var['name']}: a secret in plain text (use secretKeyRef)")
        match = URL_CREDENTIALS.search(str(value))
        if match and not re.fullmatch(r"\$\([A-Z0-9_]+\)", match.group(1)):
            errors.append(f"env {var['name']}: a password in plain text in a URL")
    return errors


def scrape_errors(deployment: dict[str, Any]) -> list[str]:
    """Prometheus's annotations on the pod template: scrape, on the http port, /metrics."""
    template = deployment["spec"]["template"]
    notes = template["metadata"].get("annotations", {})
    ports = {
        p.get("name"): p.get("containerPort")
        for c in template["spec"].get("containers", [])
        for p in c.get("ports", [])
    }
    if notes.get("prometheus.io/scrape") != "true":
        return ['pod template needs the annotation prometheus.io/scrape: "true"']
    errors = []
    if str(notes.get("prometheus.io/port")) != str(ports.get("http")):
        errors.append("prometheus.io/port must be the container's http port")
    if notes.get("prometheus.io/path") != "/metrics":
        errors.append("prometheus.io/path must be /metrics")
    return errors


def uses_database(deployment: dict[str, Any] | None) -> bool:
    """Whether a Deployment's pods open database connections (a ``*DATABASE_URL`` setting);
    an unknown one counts as using it."""
    if deployment is None:
        return True
    return any(
        var["name"].endswith("DATABASE_URL")
        for c in containers(deployment)
        for var in c.get("env", [])
    )


def rule_errors(docs: list[dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}

    def template_labels(d: dict[str, Any]) -> dict[str, str]:
        return d["spec"]["template"]["metadata"].get("labels", {})

    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        for spec in pod_specs(doc):
            pod_non_root = spec.get("securityContext", {}).get("runAsNonRoot") is True
            for c in spec.get("containers", []):
                here = f"{where} container {c['name']}"
                sc = c.get("securityContext", {})
                if not (pod_non_root or sc.get("runAsNonRoot") is True):
                    errors.append(f"{here}: must run as non-root (runAsNonRoot: true)")
                if sc.get("allowPrivilegeEscalation") is not False:
                    errors.append(f"{here}: allowPrivilegeEscalation must be false")
                resources = c.get("resources", {})
                for part in ("requests", "limits"):
                    if not {"cpu", "memory"} <= set(resources.get(part, {})):
                        errors.append(f"{here}: resources.{part} needs cpu and memory")
                if doc["kind"] == "Deployment":
                    if probe_path(c, "readinessProbe") != "/readyz":
                        errors.append(f"{here}: readinessProbe must GET /readyz")
                    if probe_path(c, "livenessProbe") != "/healthz":
                        errors.append(f"{here}: livenessProbe must GET /healthz")
                errors += [f"{here}: {e}" for e in env_errors(c.get("env", []))]
        if doc["kind"] == "Secret":
            errors.append(f"{where}: Secrets are referenced, never committed")
    for name, d in deployments.items():
        errors += [f"Deployment/{name}: {e}" for e in scrape_errors(d)]
    for ingress in by_kind.get("Ingress", []):
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                # an Exact "/" is one page (the web app's home); a Prefix "/" is everything
                exact = path.get("pathType") == "Exact"
                if path.get("path", "/") in ("", "/") and not exact:
                    errors.append(
                        f"Ingress/{ingress['metadata']['name']}: routes / of "
                        f"{rule.get('host', '*')}: /metrics would be public (route the "
                        "public paths only)"
                    )
    for svc in by_kind.get("Service", []):
        selector = svc["spec"].get("selector", {})
        if not any(selects(selector, template_labels(d)) for d in deployments.values()):
            errors.append(f"Service/{svc['metadata']['name']}: its selector matches no Deployment")
    scaled = set()
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref.get("kind") != "Deployment" or ref.get("name") not in deployments:
            errors.append(f"HorizontalPodAutoscaler/{hpa['metadata']['name']}: no such Deployment")
        scaled.add(ref.get("name"))
    budgeted = set()
    for pdb in by_kind.get("PodDisruptionBudget", []):
        selector = pdb["spec"].get("selector", {}).get("matchLabels", {})
        hits = [n for n, d in deployments.items() if selects(selector, template_labels(d))]
        if not hits:
            errors.append(f"PodDisruptionBudget/{pdb['metadata']['name']}: matches no Deployment")
        budgeted.update(hits)
    for name in deployments:
        if name not in scaled:
            errors.append(f"Deployment/{name}: no HorizontalPodAutoscaler")
        if name not in budgeted:
            errors.append(f"Deployment/{name}: no PodDisruptionBudget")
    if not any(
        "migrate" in " ".join(c.get("command", []) + c.get("args", []))
        for job in by_kind.get("Job", [])
        for c in containers(job)
    ):
        errors.append("no migration Job")
    if not any(
        p["spec"].get("podSelector") == {} and not p["spec"].get("ingress")
        for p in by_kind.get("NetworkPolicy", [])
    ):
        errors.append("no default-deny ingress NetworkPolicy")
    clusters = by_kind.get("Cluster", [])
    if not clusters:
        errors.append("no CloudNativePG Cluster")
    # only the replicas that hold a database pool (the web app has no database)
    peak = sum(
        h["spec"]["maxReplicas"]
        for h in by_kind.get("HorizontalPodAutoscaler", [])
        if uses_database(deployments.get(h["spec"]["scaleTargetRef"].get("name")))
    )
    needed = peak * POOL_PER_REPLICA + POSTGRES_HEADROOM
    for cluster in clusters:
        parameters = cluster["spec"].get("postgresql", {}).get("parameters", {})
        allowed = int(parameters.get("max_connections", 100))
        if allowed < needed:
            errors.append(
                f"Cluster/{cluster['metadata']['name']}: max_connections {allowed} < {needed} "
                f"({peak} replicas at most x {POOL_PER_REPLICA} + {POSTGRES_HEADROOM})"
            )
    return errors


def check_kustomization(directory: Path, schemas: Path) -> tuple[int, list[str]]:
    """(documents rendered, errors) for one kustomization."""
    try:
        docs = render(directory)
    except (RenderError, OSError, yaml.YAMLError, KeyError) as e:
        return 0, [f"render: {e}"]
    errors = []
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        errors += [f"{where}: {e}" for e in schema_errors(doc, schemas)]
    if not errors:  # the rules assume schema-valid documents
        errors = rule_errors(docs)
    return len(docs), errors


# --- Compose and the Dockerfile ---------------------------------------------------------------


def check_compose(path: Path) -> list[str]:
    services = yaml.safe_load(path.read_text()).get("services", {})
    errors = []
    if "migrate" not in services:
        return ["no one-shot migrate service"]
    for name, svc in services.items():
        env = svc.get("environment", {})
        if isinstance(env, list):
            env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
        for key, value in env.items():
            value = "" if value is None else str(value)
            if SECRET_NAME.search(key) and not REQUIRED_VAR.match(value):
                errors.append(f"{name}: {key} must come from a required ${{VAR:?message}}")
            match = URL_CREDENTIALS.search(value)
            if match and not REQUIRED_VAR.match(match.group(1)):
                errors.append(f"{name}: {key} has a password that is not a ${{VAR:?message}}")
        for port in svc.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                errors.append(f"{name}: port {port} must be published on 127.0.0.1 only")
        if svc.get("restart") == "no":  # a one-shot step (migrate, provision)
            continue
        check = svc.get("healthcheck", {})
        if not check.get("test") or check.get("disable"):
            errors.append(f"{name}: no healthcheck")
        if "build" in svc and not _after_migrate(services, name):
            errors.append(f"{name}: must depend on migrate completing successfully")
    web = services.get("web", {}).get("environment", {})
    if web and web.get("WEB_AUTH_URL") == web.get("WEB_AUTH_PUBLIC_URL", web.get("WEB_AUTH_URL")):
        errors.append("web: WEB_AUTH_PUBLIC_URL must give browsers auth's address on the host")
    if web and not _after(services, "web", "provision"):
        errors.append("web: must start after provision registered its client")
    return errors


def _after(services: dict[str, Any], name: str, step: str) -> bool:
    """``name`` starts only once the one-shot ``step`` completed, directly or through another
    one-shot step that does."""
    for other, how in (services.get(name, {}).get("depends_on") or {}).items():
        if (how or {}).get("condition") != "service_completed_successfully":
            continue
        if other == step or (
            services.get(other, {}).get("restart") == "no" and _after(services, other, step)
        ):
            return True
    return False


def _after_migrate(services: dict[str, Any], name: str) -> bool:
    return _after(services, name, "migrate")


def check_dockerfile(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    final = lines[max(i for i, line in enumerate(lines) if line.upper().startswith("FROM ")) :]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    errors = []
    if not users or users[-1].split(":")[0] in {"root", "0"}:
        errors.append("Dockerfile: the final stage must end on a non-root USER")
    if not any(line.upper().startswith("HEALTHCHECK ") for line in final):
        errors.append("Dockerfile: the final stage has no HEALTHCHECK")
    return errors


def check(root: Path = ROOT) -> list[str]:
    """Every finding under ``root``; prints what was checked."""
    k8s = root / "deploy" / "kubernetes"
    errors = []
    overlays = sorted(p for p in (k8s / "overlays").iterdir() if p.is_dir())
    for directory in [k8s / "base", *overlays]:
        count, found = check_kustomization(directory, k8s / "schemas")
        label = directory.relative_to(root)
        errors += [f"{label}: {e}" for e in found]
        print(f"{label}: {count} documents, {len(found)} problems")
    found = check_compose(root / "deploy" / "compose.yaml")
    errors += [f"deploy/compose.yaml: {e}" for e in found]
    errors += check_dockerfile(root / "Dockerfile")
    return errors


if __name__ == "__main__":
    problems = check(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
    for problem in problems:
        print(problem, file=sys.stderr)
    sys.exit(1 if problems else 0)
