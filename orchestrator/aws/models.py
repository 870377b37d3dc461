"""A botocore session that keeps less of botocore's JSON in memory (peak RSS of `snail run` is a budget).

Measured on botocore 1.43: making the ecs, ec2, ecr, iam and logs clients costs 34 MB, of which the ec2 model
is 16 MB and endpoints.json 7 MB. Two things in those files are never used at run time by snail:
- the documentation strings (60 % of a model's text: botocore reads them only to write docstrings), and
- the endpoint entries of the ~1,100 services snail never calls (requests are routed by each service's own
  endpoint rule set; endpoints.json only supplies defaults, kept here for every service snail or a credential
  provider calls).
The loader below drops both while parsing and builds plain dicts instead of OrderedDicts: the same five clients
cost 20 MB. Nothing else changes: same files, same search path, same API versions.
"""

from __future__ import annotations

import json
import os
from typing import Any

_DOC_KEYS = frozenset({"documentation", "documentationUrl"})
# endpoints.json keys (endpoint prefixes) of the services snail calls, and of those credential providers call.
ENDPOINT_SERVICES = frozenset(
    {
        "ecs",
        "ec2",
        "api.ecr",
        "iam",
        "logs",
        "elasticloadbalancing",
        "monitoring",
        "dynamodb",
        "ssm",
        "secretsmanager",
        "sts",
        "portal.sso",
        "oidc",
        "signin",
        "tagging",
        "events",
        "kms",
        "s3",
    }
)


def _lean_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A member may be *named* "documentation" (its value is then a dict); only doc strings are dropped.
    return {k: v for k, v in pairs if not (k in _DOC_KEYS and isinstance(v, str))}


def _prune_endpoints(data: Any) -> Any:
    for partition in data.get("partitions", []) if isinstance(data, dict) else []:
        services = partition.get("services")
        if isinstance(services, dict):
            partition["services"] = {k: v for k, v in services.items() if k in ENDPOINT_SERVICES}
    return data


def lean_botocore_session() -> Any:
    """A new botocore session whose data loader drops doc strings and unused endpoint entries."""
    import botocore.session
    from botocore.loaders import JSONFileLoader, create_loader

    class LeanJSONFileLoader(JSONFileLoader):
        """botocore's JSON file loader, minus what snail never reads."""

        def _load_file(self, full_path: str, open_method: Any) -> Any:
            if not os.path.isfile(full_path):
                return None
            with open_method(full_path, "rb") as fp:
                payload = fp.read().decode("utf-8")
            data = json.loads(payload, object_pairs_hook=_lean_object)
            if os.path.basename(full_path).split(".")[0] == "endpoints":
                return _prune_endpoints(data)
            return data

    session = botocore.session.get_session()
    try:
        loader = create_loader(session.get_config_variable("data_path"))
        loader.file_loader = LeanJSONFileLoader()
        session.register_component("data_loader", loader)
    except Exception:  # noqa: BLE001 - a botocore that changed its loader API: use it as it is
        return botocore.session.get_session()
    return session
