"""Fixtures the functional tests share: the moto-server world (world.py) and a known-good AWS environment for
doctor (doctor_env.py). They are registered here, so test modules use them by name and never import them."""

from tests.doctor_env import aws, env  # noqa: F401 - fixtures
from tests.functional.world import agent_server, server, world  # noqa: F401 - fixtures
