#!/usr/bin/env python3
"""Checks what the schema validators cannot: that deploy/ agrees with
parley's behaviour (docs/runbook.md, src/app/drain.rs).

    python3 scripts/test/check_deploy_invariants.py

- Dockerfile: non-root USER, HEALTHCHECK on /readyz, the OCI labels
  version/created/revision from the VERSION/BUILD_TIME/GIT_COMMIT args;
- k8s Deployment: probes on /health/startup, /healthz/live, /readyz; a
  preStop POST to /admin/drain on the admin port; the admin listener bound
  to 0.0.0.0:9090; terminationGracePeriodSeconds above the drain deadline
  plus grace; read-only root filesystem, non-root, resources set;
- compose: three parley services healthchecked on /readyz, stop grace
  above the drain deadline, haproxy waiting for them to be healthy.
Called by scripts/test/check-deploy.sh. Needs PyYAML (a dependency of
kubernetes-validate).
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
problems = []


def need(ok, what):
    if not ok:
        problems.append(what)


def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m)?", str(text))
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n / 1000 if unit == "ms" else n * 60 if unit == "m" else n


docker = (ROOT / "deploy/Dockerfile").read_text()
runtime = docker.split("FROM gcr.io/distroless")[-1]
need(re.search(r"^USER 65532", runtime, re.M), "Dockerfile: runtime stage must run as USER 65532 (nonroot)")
need(re.search(r"^HEALTHCHECK .*?/readyz", runtime, re.M | re.S), "Dockerfile: HEALTHCHECK on /readyz")
for label, arg in (("version", "VERSION"), ("created", "BUILD_TIME"), ("revision", "GIT_COMMIT")):
    need(f'org.opencontainers.image.{label}="${{{arg}}}"' in runtime, f"Dockerfile: label {label} from ARG {arg}")
    need(re.search(rf"^ARG {arg}\b", runtime, re.M), f"Dockerfile: ARG {arg} in the runtime stage")

config = yaml.safe_load((ROOT / "deploy/k8s/configmap.yaml").read_text())["data"]
drain_s = int(config["PARLEY_DRAIN_TIMEOUT_S"])
need(config.get("PARLEY_ADMIN_ADDR") == "0.0.0.0:9090", "ConfigMap: PARLEY_ADMIN_ADDR must be 0.0.0.0:9090 (preStop, Prometheus)")
need(config.get("PARLEY_JWT_KEYS_DIR"), "ConfigMap: PARLEY_JWT_KEYS_DIR")

deploy = yaml.safe_load((ROOT / "deploy/k8s/deployment.yaml").read_text())
pod = deploy["spec"]["template"]["spec"]
(c,) = pod["containers"]
need(pod["terminationGracePeriodSeconds"] > drain_s, f"Deployment: terminationGracePeriodSeconds must exceed the drain deadline {drain_s}s")
for probe, path in (("startupProbe", "/health/startup"), ("livenessProbe", "/healthz/live"), ("readinessProbe", "/readyz")):
    need(c.get(probe, {}).get("httpGet", {}).get("path") == path, f"Deployment: {probe} on {path}")
pre = " ".join(map(str, c["lifecycle"]["preStop"]["exec"]["command"]))
need("--post-data" in pre and "127.0.0.1:9090/admin/drain" in pre, "Deployment: preStop must POST http://127.0.0.1:9090/admin/drain")
timeout = re.search(r"-T (\d+)", pre)
need(timeout and drain_s < int(timeout.group(1)) < pod["terminationGracePeriodSeconds"],
     "Deployment: the preStop client timeout must lie between the drain deadline and the grace period")
sc = c["securityContext"]
need(sc.get("readOnlyRootFilesystem") is True, "Deployment: readOnlyRootFilesystem")
need(sc.get("runAsNonRoot") is True and pod["securityContext"].get("runAsNonRoot") is True, "Deployment: runAsNonRoot")
need(sc.get("allowPrivilegeEscalation") is False, "Deployment: allowPrivilegeEscalation false")
need(c["resources"].get("requests") and c["resources"].get("limits", {}).get("memory"), "Deployment: resource requests and a memory limit")
mounts = {m["mountPath"] for m in c["volumeMounts"]}
need(config["PARLEY_JWT_KEYS_DIR"] in mounts, "Deployment: the JWT key Secret mounted at PARLEY_JWT_KEYS_DIR")

compose = yaml.safe_load((ROOT / "deploy/docker-compose.yml").read_text())
services = compose["services"]
for name in ("parley-1", "parley-2", "parley-3"):
    s = services[name]
    need("/readyz" in " ".join(s["healthcheck"]["test"]), f"compose {name}: healthcheck on /readyz")
    need(seconds(s["stop_grace_period"]) > int(s["environment"]["PARLEY_DRAIN_TIMEOUT_S"]), f"compose {name}: stop_grace_period above the drain deadline")
    need(s["depends_on"]["postgres"]["condition"] == "service_healthy", f"compose {name}: waits for a healthy PostgreSQL")
    need(s["environment"]["PARLEY_ADMIN_ADDR"] == "0.0.0.0:9090", f"compose {name}: admin listener reachable by Prometheus")
    need(services["haproxy"]["depends_on"][name]["condition"] == "service_healthy", f"compose haproxy: waits for {name} healthy")
haproxy = (ROOT / "deploy/haproxy/haproxy.cfg").read_text()
need(re.search(r"^\s*balance roundrobin", haproxy, re.M) and not re.search(r"^\s*(cookie|stick|stick-table)\s", haproxy, re.M),
     "haproxy: round-robin without stickiness")
need(re.search(r"^\s*timeout tunnel", haproxy, re.M), "haproxy: a WebSocket (tunnel) timeout")
need(re.search(r"option httpchk GET /readyz", haproxy), "haproxy: health check on /readyz")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print("deploy invariants hold")
