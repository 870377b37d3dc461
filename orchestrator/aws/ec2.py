"""EC2 networking in the release engineer's words: what `doctor` reads about where tasks run (subnets, route
tables, internet gateways, the VPC's DNS attributes, security groups) and a task ENI's public address (http gates
on awsvpc tasks). Every call is a Describe: EC2's reads take no resource-level permission."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.aws.errors import aws_call

if TYPE_CHECKING:
    from orchestrator.aws.session import AwsContext


class Ec2Client:
    """Reads of the network tasks run in."""

    def __init__(self, aws: AwsContext) -> None:
        self._ec2 = aws.client("ec2")

    def subnets(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Subnets by id (one batched describe)."""
        with aws_call("ec2:DescribeSubnets"):
            out = self._ec2.describe_subnets(SubnetIds=ids)
        return {s["SubnetId"]: s for s in out.get("Subnets", [])}

    def route_tables(self, vpc_ids: list[str]) -> list[dict[str, Any]]:
        """Every route table of these VPCs (every page)."""
        with aws_call("ec2:DescribeRouteTables"):
            pages = self._ec2.get_paginator("describe_route_tables").paginate(
                Filters=[{"Name": "vpc-id", "Values": vpc_ids}]
            )
            return [rt for page in pages for rt in page.get("RouteTables", [])]

    def internet_gateways(self, vpc_ids: list[str]) -> list[dict[str, Any]]:
        """Internet gateways attached to these VPCs."""
        with aws_call("ec2:DescribeInternetGateways"):
            out = self._ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": vpc_ids}])
        return list(out.get("InternetGateways", []))

    def vpc_attribute(self, vpc_id: str, attribute: str) -> bool:
        """enableDnsSupport / enableDnsHostnames of a VPC (AWS answers one attribute per call)."""
        with aws_call("ec2:DescribeVpcAttribute"):
            out = self._ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attribute)
        key = attribute[0].upper() + attribute[1:]
        return bool(out.get(key, {}).get("Value"))

    def security_groups(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Security groups by id (one batched describe)."""
        with aws_call("ec2:DescribeSecurityGroups"):
            out = self._ec2.describe_security_groups(GroupIds=ids)
        return {g["GroupId"]: g for g in out.get("SecurityGroups", [])}

    def public_ips(self, eni_ids: list[str]) -> dict[str, str]:
        """Each network interface's public address ("" without one)."""
        with aws_call("ec2:DescribeNetworkInterfaces"):
            out = self._ec2.describe_network_interfaces(NetworkInterfaceIds=eni_ids)
        return {
            n["NetworkInterfaceId"]: n.get("Association", {}).get("PublicIp", "")
            for n in out.get("NetworkInterfaces", [])
        }
