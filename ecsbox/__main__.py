"""`python -m ecsbox registry --state-dir DIR --port P`: the registry the sandbox would push to, started as `up()`
would start it (scripts/docker-up.sh calls this for `make`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecsbox import docker_setup
from ecsbox.errors import DockerUnavailable


def main(argv: list[str] | None = None) -> int:
    """`python -m ecsbox registry --state-dir DIR --port P`: the registry, as `up()` chooses it."""
    parser = argparse.ArgumentParser(prog="python -m ecsbox", description="What the sandbox needs from the host.")
    parser.add_argument("what", choices=["registry"])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args(argv)
    try:
        choice = docker_setup.ensure_registry(args.state_dir, args.port)
    except DockerUnavailable as exc:
        print(f"docker-up: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"docker-up: {choice.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
