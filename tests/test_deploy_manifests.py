"""deploy/ as CI sees it: scripts/check_deploy.py passes on the committed manifests, and fails
on each kind of mistake it exists to catch (each test breaks a copy of deploy/ one way)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from closedloop.testing import load_script

ROOT = Path(__file__).resolve().parent.parent
C = load_script(ROOT / "scripts" / "check_deploy.py")
BASE = Path("deploy/kubernetes/base")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of what the checker reads: deploy/ and the Dockerfile."""
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    shutil.copy(ROOT / "Dockerfile", tmp_path / "Dockerfile")
    return tmp_path


def edit_docs(path: Path, change: Callable[[list[dict[str, Any]]], None]) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    change(docs)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"]))


def base_errors(root: Path) -> list[str]:
    count, errors = C.check_kustomization(root / BASE, root / "deploy/kubernetes/schemas")
    assert count or errors
    return errors


def container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return find(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


class TestCommitted:
    def test_every_kustomization_compose_and_the_dockerfile_pass(self) -> None:
        assert C.check(ROOT) == []

    def test_the_check_needs_no_network(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """CI validates offline: kubernetes-validate must use its bundled schemas."""

        def refuse(*_: Any) -> None:
            raise OSError("network used during validation")

        monkeypatch.setattr(socket.socket, "connect", refuse)
        monkeypatch.setattr(socket, "create_connection", refuse)
        monkeypatch.setattr(socket, "getaddrinfo", refuse)
        assert C.check(ROOT) == []

    def test_overlays_render_as_kustomize_would(self) -> None:
        docs = C.render(ROOT / "deploy/kubernetes/overlays/production")
        auth = container(docs, "auth")
        names = [e["name"] for e in auth["env"]]
        # the patch added its variables and kept the base's (env merges by name)
        assert names[:3] == ["DATABASE_PASSWORD", "AUTH_DATABASE_URL", "AUTH_KEY_SECRET"]
        assert {"AUTH_ISSUER": "https://auth.example.org"}.items() <= {
            e["name"]: e.get("value") for e in auth["env"]
        }.items()
        assert auth["image"] == "registry.example.org/closed-loop:0.1.0"
        assert auth["readinessProbe"]["httpGet"]["path"] == "/readyz"  # untouched
        assert {d["metadata"]["namespace"] for d in docs} == {"closed-loop"}
        cluster = find(docs, "Cluster")
        assert cluster["spec"]["instances"] == 3
        assert cluster["spec"]["postgresql"]["parameters"]["max_connections"] == "600"
        assert cluster["spec"]["bootstrap"]["initdb"]["database"] == "referral"  # kept
        dev = C.render(ROOT / "deploy/kubernetes/overlays/dev")
        assert find(dev, "HorizontalPodAutoscaler", "notifier")["spec"]["minReplicas"] == 1
        assert container(dev, "notifier")["image"] == "closed-loop:dev"

    def test_hadolint_passes_the_dockerfile_and_fails_a_careless_one(self, tmp_path: Path) -> None:
        hadolint = Path(sys.executable).parent / "hadolint"
        ok = subprocess.run([hadolint, ROOT / "Dockerfile"], capture_output=True, text=True)
        assert ok.returncode == 0, ok.stdout
        careless = tmp_path / "Dockerfile"
        careless.write_text("FROM python\nRUN apt-get update && apt-get install -y curl\n")
        bad = subprocess.run([hadolint, careless], capture_output=True, text=True)
        assert bad.returncode != 0 and "DL3006" in bad.stdout


class TestKubernetesRules:
    def test_a_deployment_without_its_readiness_probe(self, root: Path) -> None:
        edit_docs(
            root / BASE / "notifier.yaml",
            lambda docs: container(docs, "notifier").pop("readinessProbe"),
        )
        assert "Deployment/notifier container notifier: readinessProbe must GET /readyz" in (
            base_errors(root)
        )

    def test_a_liveness_probe_on_the_wrong_path(self, root: Path) -> None:
        def change(docs: list[dict[str, Any]]) -> None:
            container(docs, "auth")["livenessProbe"]["httpGet"]["path"] = "/readyz"

        edit_docs(root / BASE / "auth.yaml", change)
        assert any("livenessProbe must GET /healthz" in e for e in base_errors(root))

    def test_a_container_without_limits_or_running_as_root(self, root: Path) -> None:
        def change(docs: list[dict[str, Any]]) -> None:
            deployment = find(docs, "Deployment", "auth")
            deployment["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot")
            container(docs, "auth")["resources"].pop("limits")

        edit_docs(root / BASE / "auth.yaml", change)
        errors = base_errors(root)
        assert any("resources.limits needs cpu and memory" in e for e in errors)
        assert any("must run as non-root" in e for e in errors)

    def test_a_committed_secret(self, root: Path) -> None:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "closedloop-db-app"},
            "stringData": {"username": "closedloop", "password": "hunter2"},
        }
        (root / BASE / "secret.yaml").write_text(yaml.safe_dump(secret))
        kustomization = root / BASE / "kustomization.yaml"
        edit_docs(kustomization, lambda docs: docs[0]["resources"].append("secret.yaml"))
        assert "Secret/closedloop-db-app: Secrets are referenced, never committed" in (
            base_errors(root)
        )

    def test_a_secret_value_in_plain_text(self, root: Path) -> None:
        def change(docs: list[dict[str, Any]]) -> None:
            env = container(docs, "referral-api")["env"]
            env[1]["value"] = "postgresql://closedloop:hunter2@closedloop-db-rw:5432/referral"
            env.append({"name": "REFERRAL_API_EVENT_SINK_TOKEN", "value": "abc"})

        edit_docs(root / BASE / "referral-api.yaml", change)
        errors = base_errors(root)
        assert any("a password in plain text in a URL" in e for e in errors)
        assert any("REFERRAL_API_EVENT_SINK_TOKEN: a secret in plain text" in e for e in errors)

    def test_a_cluster_with_an_unknown_field(self, root: Path) -> None:
        def change(docs: list[dict[str, Any]]) -> None:
            docs[0]["spec"]["monitoring"] = {"enabled": True}  # it is enablePodMonitor

        edit_docs(root / BASE / "postgres.yaml", change)
        assert any(
            e.startswith("Cluster/closedloop-db: spec.monitoring:") and "'enabled'" in e
            for e in base_errors(root)
        )

    def test_an_unknown_field_in_a_builtin_kind(self, root: Path) -> None:
        def change(docs: list[dict[str, Any]]) -> None:
            container(docs, "directory-api")["readinessprobe"] = {}

        edit_docs(root / BASE / "directory-api.yaml", change)
        assert any("'readinessprobe' was unexpected" in e for e in base_errors(root))

    def test_a_service_an_hpa_and_a_pdb_that_point_nowhere(self, root: Path) -> None:
        def change(docs: list[dict[str, Any]]) -> None:
            find(docs, "Service")["spec"]["selector"] = {"app.kubernetes.io/name": "referal"}
            find(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] = "referal"
            selector = find(docs, "PodDisruptionBudget")["spec"]["selector"]
            selector["matchLabels"] = {"app.kubernetes.io/name": "referal"}

        edit_docs(root / BASE / "referral-api.yaml", change)
        errors = base_errors(root)
        assert "Service/referral-api: its selector matches no Deployment" in errors
        assert "HorizontalPodAutoscaler/referral-api: no such Deployment" in errors
        assert "PodDisruptionBudget/referral-api: matches no Deployment" in errors
        assert "Deployment/referral-api: no HorizontalPodAutoscaler" in errors

    def test_more_replicas_than_postgresql_has_connections_for(self, root: Path) -> None:
        def change(docs: list[dict[str, Any]]) -> None:
            find(docs, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] = 12

        edit_docs(root / BASE / "notifier.yaml", change)
        assert (
            "Cluster/closedloop-db: max_connections 400 < 500 (24 replicas at most x 20 + 20)"
            in (base_errors(root))
        )

    def test_no_migration_job(self, root: Path) -> None:
        kustomization = root / BASE / "kustomization.yaml"
        edit_docs(kustomization, lambda docs: docs[0]["resources"].remove("migrate-job.yaml"))
        assert "no migration Job" in base_errors(root)

    def test_a_patch_outside_the_supported_subset_is_refused(self, root: Path) -> None:
        overlay = root / "deploy/kubernetes/overlays/dev"

        def change(docs: list[dict[str, Any]]) -> None:
            docs.append(
                {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": "auth"},
                    "spec": {"metrics": []},  # a list kustomize would merge its own way
                }
            )

        edit_docs(overlay / "small.yaml", change)
        count, errors = C.check_kustomization(overlay, root / "deploy/kubernetes/schemas")
        assert count == 0
        assert any("outside the supported subset" in e for e in errors)


class TestCompose:
    def compose(self, root: Path, change: Callable[[dict[str, Any]], None]) -> list[str]:
        path = root / "deploy" / "compose.yaml"
        data = yaml.safe_load(path.read_text())
        change(data["services"])
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return C.check_compose(path)

    def test_a_plaintext_secret(self, root: Path) -> None:
        def change(services: dict[str, Any]) -> None:
            services["postgres"]["environment"]["POSTGRES_PASSWORD"] = "hunter2"
            env = services["auth"]["environment"]
            env["AUTH_DATABASE_URL"] = "postgresql://closedloop:hunter2@postgres:5432/auth"

        errors = self.compose(root, change)
        assert "postgres: POSTGRES_PASSWORD must come from a required ${VAR:?message}" in errors
        assert any(e.startswith("auth: AUTH_DATABASE_URL has a password") for e in errors)

    def test_a_default_instead_of_a_required_secret(self, root: Path) -> None:
        def change(services: dict[str, Any]) -> None:
            env = services["notifier"]["environment"]
            env["NOTIFIER_EVENTS_TOKEN"] = "${EVENTS_TOKEN:-x}"
            url = "postgresql://closedloop:${POSTGRES_PASSWORD:-change me}@postgres:5432/notifier"
            env["NOTIFIER_DATABASE_URL"] = url

        errors = self.compose(root, change)
        assert any("NOTIFIER_EVENTS_TOKEN must come" in e for e in errors)
        assert any("NOTIFIER_DATABASE_URL has a password" in e for e in errors)

    def test_a_service_without_healthcheck_or_not_waiting_for_migrate(self, root: Path) -> None:
        def change(services: dict[str, Any]) -> None:
            services["directory-api"].pop("healthcheck")
            services["notifier"]["depends_on"].pop("migrate")

        errors = self.compose(root, change)
        assert "directory-api: no healthcheck" in errors
        assert "notifier: must depend on migrate completing successfully" in errors

    def test_a_port_published_on_every_interface(self, root: Path) -> None:
        def change(services: dict[str, Any]) -> None:
            services["auth"]["ports"] = ["8084:8084"]

        assert "auth: port 8084:8084 must be published on 127.0.0.1 only" in self.compose(
            root, change
        )

    def test_the_dockerfile_must_end_non_root_with_a_healthcheck(self, root: Path) -> None:
        dockerfile = root / "Dockerfile"
        lines = dockerfile.read_text().splitlines()
        kept = [line for line in lines if not line.startswith(("USER ", "HEALTHCHECK "))]
        dockerfile.write_text("\n".join(kept) + "\n")
        assert C.check_dockerfile(dockerfile) == [
            "Dockerfile: the final stage must end on a non-root USER",
            "Dockerfile: the final stage has no HEALTHCHECK",
        ]


class TestObservability:
    def test_a_deployment_without_its_scrape_annotations(self, root: Path) -> None:
        def change(docs: list[dict[str, Any]]) -> None:
            template = find(docs, "Deployment", "notifier")["spec"]["template"]
            template["metadata"]["annotations"]["prometheus.io/port"] = "9999"

        edit_docs(root / BASE / "notifier.yaml", change)
        edit_docs(
            root / BASE / "auth.yaml",
            lambda docs: find(docs, "Deployment", "auth")["spec"]["template"]["metadata"].pop(
                "annotations"
            ),
        )
        errors = base_errors(root)
        assert "Deployment/notifier: prometheus.io/port must be the container's http port" in errors
        assert any(e.startswith("Deployment/auth: pod template needs") for e in errors)

    def test_an_ingress_routing_everything(self, root: Path) -> None:
        production = root / "deploy/kubernetes/overlays/production"

        def change(docs: list[dict[str, Any]]) -> None:
            docs[0]["spec"]["rules"][0]["http"]["paths"][0]["path"] = "/"

        edit_docs(production / "ingress.yaml", change)
        _count, errors = C.check_kustomization(production, root / "deploy/kubernetes/schemas")
        assert any("/metrics would be public" in e for e in errors)


def selected(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels, matchExpressions with In) against a pod's labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In"
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def pod_labels(docs: list[dict[str, Any]], name: str) -> dict[str, str]:
    labels: dict[str, str] = find(docs, "Deployment", name)["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


class TestWebApp:
    def test_compose_runs_it_with_its_secrets_and_the_notifier_links_to_it(self) -> None:
        services = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())["services"]
        web, notifier = services["web"], services["notifier"]
        assert web["command"] == ["web", "serve"]
        assert web["ports"] == ["127.0.0.1:8080:8080"]
        env = web["environment"]
        assert env["WEB_REFERRAL_URL"] == "http://referral-api:8081/fhir"
        assert env["WEB_DIRECTORY_URL"] == "http://directory-api:8082/fhir"
        # auth inside the network for the app, its issuer address for browsers and tokens
        auth_env = services["auth"]["environment"]
        assert env["WEB_AUTH_URL"] == "http://auth:8084"
        assert env["WEB_AUTH_PUBLIC_URL"] == auth_env["AUTH_ISSUER"]
        assert env["WEB_REFERRAL_AUDIENCE"] in auth_env["AUTH_AUDIENCES"].split(",")
        # its client is registered by the one-shot provision step, with the key it reads
        provision = services["provision"]
        assert provision["command"][:3] == ["auth", "clients", "ensure"]
        assert "--client-id=web" in provision["command"]
        assert f"--key-file={env['WEB_CLIENT_KEY_FILE']}" in provision["command"]
        assert f"--redirect-uri={env['WEB_PUBLIC_URL']}/auth/callback" in provision["command"]
        assert web["depends_on"]["provision"]["condition"] == "service_completed_successfully"
        assert (
            "client-keys:/keys:ro" in web["volumes"]
            and "client-keys:/keys" in (provision["volumes"])
        )
        assert env["WEB_COOKIE_SECURE"] == "false"  # plain http on this machine
        for key in ("WEB_SESSION_SECRET", "WEB_LINK_SECRET"):
            assert C.REQUIRED_VAR.match(env[key]), key
        # the notifier signs the status links the web app checks, and links to it
        assert notifier["environment"]["NOTIFIER_LINK_SECRET"] == env["WEB_LINK_SECRET"]
        assert notifier["environment"]["NOTIFIER_APP_URL"] == env["WEB_PUBLIC_URL"]
        example = (ROOT / "deploy/.env.example").read_text()
        assert "\nLINK_SECRET=" in example and "\nWEB_SESSION_SECRET=" in example
        assert C.check_compose(ROOT / "deploy/compose.yaml") == []

    def test_the_image_has_its_templates_and_static_files(self) -> None:
        """The wheel the Dockerfile installs (--no-editable) packs all of src/web."""
        dockerfile = (ROOT / "Dockerfile").read_text()
        assert "COPY services/web/pyproject.toml services/web/" in dockerfile
        assert "COPY services/ services/" in dockerfile
        project = (ROOT / "services/web/pyproject.toml").read_text()
        assert 'packages = ["src/web"]' in project
        assert 'web = "web.cli:main"' in project
        web = ROOT / "services/web/src/web"
        assert (web / "templates/base.html").is_file() and (web / "static/app.css").is_file()

    def test_kubernetes_runs_it_scaled_probed_and_scraped(self) -> None:
        docs = C.render(ROOT / BASE)
        web = container(docs, "web")
        assert web["args"] == ["web", "serve"]
        assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert find(docs, "Service", "web")["spec"]["ports"][0]["port"] == 8080
        assert find(docs, "HorizontalPodAutoscaler", "web")["spec"]["minReplicas"] == 2
        assert find(docs, "PodDisruptionBudget", "web")
        env = {e["name"]: e for e in web["env"]}
        assert env["WEB_REFERRAL_URL"]["value"] == "http://referral-api:8081/fhir"
        assert env["WEB_DIRECTORY_URL"]["value"] == "http://directory-api:8082/fhir"
        secret = env["WEB_LINK_SECRET"]["valueFrom"]["secretKeyRef"]
        notifier = {e["name"]: e for e in container(docs, "notifier")["env"]}
        assert notifier["NOTIFIER_LINK_SECRET"]["valueFrom"]["secretKeyRef"] == secret
        assert env["WEB_SESSION_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == secret["name"]
        assert notifier["NOTIFIER_APP_URL"]["value"] == env["WEB_PUBLIC_URL"]["value"]

    def test_network_policies_open_it_and_let_it_reach_the_services(self) -> None:
        docs = C.render(ROOT / BASE)
        policies = {p["metadata"]["name"]: p["spec"] for p in docs if p["kind"] == "NetworkPolicy"}
        web = pod_labels(docs, "web")
        # reachable from outside (any source, on its http port) and by Prometheus
        public = policies["public-http"]
        assert selected(public["podSelector"], web) and "from" not in public["ingress"][0]
        assert selected(policies["metrics-scrape"]["podSelector"], web)
        # the services it calls take its traffic
        between = policies["between-services"]
        for name in ("referral-api", "directory-api", "auth"):
            assert selected(between["podSelector"], pod_labels(docs, name)), name
            assert any(
                selected(source["podSelector"], web) for source in between["ingress"][0]["from"]
            )
        # and it has no database: PostgreSQL's connection budget leaves it out
        assert not C.uses_database(find(docs, "Deployment", "web"))
        assert C.uses_database(find(docs, "Deployment", "notifier"))

    def test_production_routes_its_public_paths_only(self) -> None:
        docs = C.render(ROOT / "deploy/kubernetes/overlays/production")
        ingress = find(docs, "Ingress")
        rule = next(r for r in ingress["spec"]["rules"] if r["host"] == "app.example.org")
        paths = {p["path"]: p for p in rule["http"]["paths"]}
        assert {p["backend"]["service"]["name"] for p in paths.values()} == {"web"}
        assert paths["/"]["pathType"] == "Exact"  # the home page, not everything under it
        assert {"/referrals", "/inbox", "/auth", "/static"} <= set(paths)
        assert not {"/metrics", "/healthz", "/readyz"} & set(paths)
        assert "app.example.org" in ingress["spec"]["tls"][0]["hosts"]
        env = {e["name"]: e.get("value") for e in container(docs, "web")["env"]}
        assert env["WEB_PUBLIC_URL"] == "https://app.example.org"
        assert env["WEB_AUTH_URL"] == "http://auth:8084"  # inside the cluster
        assert env["WEB_AUTH_PUBLIC_URL"] == "https://auth.example.org"
        auth = {e["name"]: e.get("value") for e in container(docs, "auth")["env"]}
        assert env["WEB_AUTH_PUBLIC_URL"] == auth["AUTH_ISSUER"]
        assert env["WEB_REFERRAL_AUDIENCE"] in auth["AUTH_AUDIENCES"].split(",")
        # the migration Job registers the web client with the production redirect URI
        migrate = find(docs, "Job", "closed-loop-migrate")["spec"]["template"]["spec"]
        job = {e["name"]: e.get("value") for e in migrate["containers"][0]["env"]}
        assert job["WEB_REDIRECT_URI"] == f"{env['WEB_PUBLIC_URL']}/auth/callback"
        script = " ".join(migrate["containers"][0]["args"])
        assert "auth clients ensure --client-id web" in script
        assert env["WEB_CLIENT_KEY_FILE"] in script
        notifier = {e["name"]: e.get("value") for e in container(docs, "notifier")["env"]}
        assert notifier["NOTIFIER_APP_URL"] == env["WEB_PUBLIC_URL"]
        dev = C.render(ROOT / "deploy/kubernetes/overlays/dev")
        assert find(dev, "HorizontalPodAutoscaler", "web")["spec"]["maxReplicas"] == 2

    def test_an_exact_home_page_is_no_prefix_of_everything(self, root: Path) -> None:
        production = root / "deploy/kubernetes/overlays/production"

        def change(docs: list[dict[str, Any]]) -> None:
            rule = next(r for r in docs[0]["spec"]["rules"] if r["host"] == "app.example.org")
            rule["http"]["paths"][0]["pathType"] = "Prefix"

        edit_docs(production / "ingress.yaml", change)
        _count, errors = C.check_kustomization(production, root / "deploy/kubernetes/schemas")
        assert any("app.example.org: /metrics would be public" in e for e in errors)
