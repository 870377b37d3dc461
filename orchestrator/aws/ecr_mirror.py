"""ECR mirroring, a client of the sandbox: where pushes go to a local registry that stands in for ECR's data plane,
each manifest is also recorded in the (emulated) ECR under the same digest, so task definitions name images by
their ECR URI as on AWS."""

from __future__ import annotations

from typing import Any

from orchestrator.aws.session import AwsContext


def mirror_to_ecr(aws: AwsContext, repository: str, built: Any, target: Any) -> str:
    """Sandbox only: record the pushed manifest in (moto's) ECR under the same digest, and name the image by
    its ECR URI as a task definition on AWS would. The sandbox's agent pulls ECR URIs from the local registry."""
    import requests

    from orchestrator.build.registry import MANIFEST_TYPES

    resp = requests.get(
        f"{target.api_base}/{target.name}/manifests/{built.digest}", headers={"Accept": MANIFEST_TYPES}, timeout=10
    )
    resp.raise_for_status()
    from orchestrator.aws.ecr import EcrClient

    ecr = EcrClient(aws)
    name = repository
    uri = ecr.repository_uri(name)
    kwargs = {
        "repositoryName": name,
        "imageManifest": resp.text,
        "imageTag": built.tag,
        "imageDigest": built.digest,
    }
    media = resp.headers.get("Content-Type", "").split(";")[0]
    if media:
        kwargs["imageManifestMediaType"] = media
    ecr.record_image(**kwargs)
    return f"{uri}@{built.digest}"
