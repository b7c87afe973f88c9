"""The options of `run` and `submit`, generated from the settings' own declarations.

Each flag comes from a field declared with `flag(...)` (rag_jobs.config, rag_jobs.strategies.settings): its
name, type and help text are that field's, so a new setting flag is one declaration. `--set KEY=VALUE` sets
any field by its dotted key; `--config FILE` reads a jobs/*.yaml run specification underneath both.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import typer
import yaml

from rag_jobs.errors import ConfigError
from rag_jobs.strategies.settings import RunSettings, build_settings, setting_flags

SET_HELP = ("set any setting by its dotted key, e.g. train.batch_size=4 or evaluate.k=3 (repeatable; "
            "the value is read as YAML; wins over --config and the flags)")


def read_spec(config: Path) -> dict[str, Any]:
    """The settings of a jobs/*.yaml run specification (its `strategy` and `store` keys are the command's)."""
    if not config.exists():
        raise ConfigError(f"config file {config} does not exist")
    try:
        loaded = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {config} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"config file {config} cannot be read as UTF-8 text: {why}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {config} must be a mapping of settings")
    return {k: v for k, v in loaded.items() if k not in ("strategy", "store")}


def load_settings(config: Optional[Path], flags: dict[str, Any], sets: Optional[list[str]] = None,
                  command: Optional[str] = None) -> RunSettings:
    """Settings from a jobs/*.yaml file (if given), then the flags (by parameter name), then `--set`."""
    data = read_spec(config) if config is not None else None
    return build_settings(data, file_name=str(config) if config else "", flags=flags, sets=sets, command=command)


def lrs_from_run(run: str) -> tuple[float, float]:
    """The (embedder, generator) learning rates a finished two-phase run selected."""
    from rag_jobs.artifacts import StepRef, read_manifest
    from rag_jobs.cli.common import open_run

    st, ref = open_run(run)
    found = []
    # phase 1 is select-phase1, or select-gen in a two-phase run with `phase1: concat`
    for steps in (("select-phase2",), ("select-phase1", "select-gen")):
        manifests = [m for m in (read_manifest(st, StepRef(ref.run_id, step)) for step in steps) if m is not None]
        if not manifests:
            raise ConfigError(f"--from-run {run}: step {steps[0]!r} is not committed (is it a finished two-phase "
                              "run?)")
        found.append(float(manifests[0].metrics["lr"]))
    return found[0], found[1]


def check_settings(settings: RunSettings) -> None:
    """Fail fast, before anything is written, on a missing data file or an unknown model name."""
    from rag_jobs.corpus import check_corpus_spec
    from rag_jobs.data import check_dataset_spec
    from rag_jobs.models import check_model_name

    check_dataset_spec(settings.data.dataset)
    for spec in (settings.data.validation_dataset, settings.data.test_dataset):
        if spec:
            check_dataset_spec(spec)
    if settings.data.corpus:
        check_corpus_spec(settings.data.corpus)
    check_model_name(settings.embedder, "embedder")
    check_model_name(settings.generator, "generator")


class SettingsInput:
    """What a `run` / `submit` invocation said about settings: the flags, `--set`, `--config`, `--from-run`."""

    def __init__(self, command: str, flags: dict[str, Any], sets: list[str], config: Optional[Path],
                 from_run: Optional[str]):
        self.command, self.flags, self.sets, self.config, self.from_run = command, flags, sets, config, from_run

    def settings(self, *, local: bool = True) -> RunSettings:
        """RunSettings; `--from-run` fills both learning rates. `local`: the data and models must be reachable
        from here (not so for a cluster's pods)."""
        flags = dict(self.flags)
        if self.from_run is not None:
            flags["embed_lr"], flags["gen_lr"] = lrs_from_run(self.from_run)
        settings = load_settings(self.config, flags, self.sets, command=self.command)
        if local:
            check_settings(settings)
        return settings


def with_settings(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a typer command every setting flag of `command`, `--set`, `--config` and `--from-run`; the command
    receives them as one `settings: SettingsInput` argument."""
    flags = setting_flags(command)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [p for p in inspect.signature(fn).parameters.values() if p.name != "settings"]
        kw = inspect.Parameter.KEYWORD_ONLY
        added = [
            inspect.Parameter("config", kw, annotation=Optional[Path],
                              default=typer.Option(None, "--config", "-c", help="a jobs/*.yaml run specification")),
            *(inspect.Parameter(f.param, kw, annotation=Optional[str if f.is_list else f.type],
                                default=typer.Option(None, f.flag, help=f.help)) for f in flags),
            inspect.Parameter("from_run", kw, annotation=Optional[str], default=typer.Option(
                None, "--from-run", help="take both learning rates from a finished two-phase run")),
            inspect.Parameter("set_", kw, annotation=Optional[list[str]],
                              default=typer.Option(None, "--set", metavar="KEY=VALUE", help=SET_HELP)),
        ]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            given = {f.param: kwargs.pop(f.param) for f in flags}
            settings = SettingsInput(command, given, kwargs.pop("set_") or [], kwargs.pop("config"),
                                     kwargs.pop("from_run"))
            return fn(**kwargs, settings=settings)

        wrapper.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
        return wrapper

    return decorate
