"""image.build_secrets in pipeline.yaml: loaded as a typed field, refused where it cannot work, learned as secrets;
validate warns about a plain build arg that looks secret (it would be in the image's history)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator import redact
from orchestrator.build.buildkit import build_arg_warnings
from orchestrator.config import load_pipeline
from orchestrator.errors import ConfigErrors
from tests.conftest import PIPELINE


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    """Each test starts with no learned values."""
    redact.forget()
    yield
    redact.forget()


def _pipeline(make_pipeline: Callable[..., Path], image: str, defaults_args: str = "") -> Path:
    """A pipeline whose phase `one` builds images/one with the given `image:` mapping body."""
    text = PIPELINE.replace("  bake: 0s\n", f"  bake: 0s\n{defaults_args}")
    path = make_pipeline(
        text, {"one": f"name: one\nimage: {image}\n", "two": "name: two\nimage: {context: images/one}\n"}
    )
    ctx = path.parent / "images" / "one"
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    return path


def test_build_secrets_load_apart_from_build_args_and_are_learned(make_pipeline) -> None:  # noqa: ANN001
    """build_secrets is its own field; a default build arg of the same name is dropped (it would reach history);
    the values are learned, so any output masks them."""
    path = _pipeline(
        make_pipeline,
        '{context: images/one, build_args: {FLAVOUR: plain}, build_secrets: {NPM_TOKEN: "npm-secret-value-77"}}',
        '  build_args: {NPM_TOKEN: "npm-secret-value-77", BASE: x}\n',
    )
    p = load_pipeline(path)
    image = p.phases[0].image
    assert image.build_secrets == {"NPM_TOKEN": "npm-secret-value-77"}
    assert image.build_args == {"FLAVOUR": "plain", "BASE": "x"}
    redact.learn_pipeline(p)
    assert redact.mask_text("token npm-secret-value-77 used") == "token **** used"


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ('{ref: "127.0.0.1:5055/x@sha256:' + "a" * 64 + '", build_secrets: {T: v}}', "not a prebuilt `ref`"),
        ("{context: images/one, build_secrets: {'a,b': v}}", "a build secret's name is letters"),
        ("{context: images/one, build_args: {T: v}, build_secrets: {T: w}}", "both a build arg and a build secret"),
    ],
)
def test_build_secrets_are_refused_where_they_cannot_work(make_pipeline, image: str, message: str) -> None:  # noqa: ANN001
    """With a prebuilt ref, with a name BuildKit cannot take as an id, or doubling a build arg: exit 2 at load."""
    with pytest.raises(ConfigErrors) as exc:
        load_pipeline(_pipeline(make_pipeline, image))
    assert any(message in e.message and "build_secrets" in str(e) for e in exc.value.errors), exc.value.errors


def test_a_build_arg_that_looks_secret_is_warned_about_by_name_not_value() -> None:
    """NPM_TOKEN and a value shaped like a token warn; BASE_IMAGE does not; the value is never in the warning."""
    warnings = build_arg_warnings(
        {"NPM_TOKEN": "x-npm-value", "BASE_IMAGE": "snail-base/python:3.11", "PIP_INDEX": "https://u:pw@idx/simple"}
    )
    assert len(warnings) == 2
    assert warnings[0].startswith("build arg NPM_TOKEN looks secret") and "build_secrets" in warnings[0]
    assert warnings[1].startswith("build arg PIP_INDEX looks secret")
    assert not any("x-npm-value" in w or "pw@" in w for w in warnings)


def test_validate_warns_about_a_secret_looking_build_arg(make_pipeline, capsys) -> None:  # noqa: ANN001
    """`snail validate` stays valid (exit 0) and prints a warning naming the phase and the build arg."""
    from orchestrator.cli.main import main

    path = _pipeline(make_pipeline, '{context: images/one, build_args: {NPM_TOKEN: "npm-value-1234"}}')
    with pytest.raises(SystemExit) as exc:
        main(["-f", str(path), "validate"])
    out = capsys.readouterr()
    assert exc.value.code in (0, None)
    assert "warning: phase one: build arg NPM_TOKEN looks secret" in out.out
    assert "npm-value-1234" not in out.out + out.err
