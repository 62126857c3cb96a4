#!/usr/bin/env python3
"""Validates prometheus-operator ServiceMonitor manifests, which
kubernetes-validate skips (a CRD: it has schemas for built-in kinds only).

    python3 scripts/test/validate_servicemonitor.py deploy/k8s/servicemonitor.yaml

Uses the pydantic models of the PyPI package
cloudcoil-models-prometheus-operator, generated from the operator's CRD
schema (types, enums, patterns such as the `interval` duration). Those
models ignore unknown fields, so this script also re-serialises each
document and fails on any field the model dropped: strict, like
`kubernetes-validate --strict`. Installed by scripts/test/ensure-tools.sh.
"""

import sys

import yaml
from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor


def dropped(given, kept, path=""):
    """Paths present in `given` but absent from `kept`."""
    out = []
    if isinstance(given, dict) and isinstance(kept, dict):
        for key, value in given.items():
            if key not in kept:
                out.append(f"{path}.{key}".lstrip("."))
            else:
                out.extend(dropped(value, kept[key], f"{path}.{key}"))
    elif isinstance(given, list) and isinstance(kept, list):
        for i, (a, b) in enumerate(zip(given, kept)):
            out.extend(dropped(a, b, f"{path}[{i}]"))
    return out


def main(paths):
    failed = checked = 0
    for path in paths:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            if doc.get("kind") != "ServiceMonitor":
                continue
            name = f"{path}: servicemonitor/{doc.get('metadata', {}).get('name')}"
            checked += 1
            try:
                model = ServiceMonitor.model_validate(doc)
            except Exception as e:  # pydantic.ValidationError: report, go on
                print(f"ERROR {name}: {e}")
                failed += 1
                continue
            kept = model.model_dump(by_alias=True, exclude_none=True, mode="json")
            unknown = dropped(doc, kept)
            if unknown:
                print(f"ERROR {name}: unknown fields: {', '.join(unknown)}")
                failed += 1
            else:
                print(f"INFO {name} passed against the prometheus-operator monitoring.coreos.com/v1 schema")
    if checked == 0:
        print("ERROR no ServiceMonitor found")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
