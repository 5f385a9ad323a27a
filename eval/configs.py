"""Evaluation configurations: ``--configs`` strings and presets, parsed and expanded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

from rag.config import ReaderKind, RetrievalMode, Settings, field_bounds

# Sorted so that presets and reports list them in the same order as ever.
MODES: tuple[str, ...] = tuple(sorted(get_args(RetrievalMode)))
READERS: tuple[str, ...] = tuple(sorted(get_args(ReaderKind)))
TOP_K = field_bounds("top_k")
THRESHOLD = field_bounds("abstain_threshold")
_ALIASES = {
    "retrieval_mode": "mode",
    "k": "top_k",
    "topk": "top_k",
    "top-k": "top_k",
    "abstain_threshold": "threshold",
    "thr": "threshold",
}


class ConfigError(ValueError):
    """A configuration string or preset is not understood; the message says why."""


@dataclass(frozen=True)
class EvalConfig:
    """One configuration; ``None`` means the service's or the settings' default."""

    mode: str | None = None
    reader: str | None = None
    top_k: int | None = None
    threshold: float | None = None

    @property
    def run_key(self) -> tuple[str | None, str | None, int | None]:
        """What needs asking; configurations that differ only in threshold share a run."""
        return (self.mode, self.reader, self.top_k)

    @property
    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in asdict(self).items() if v is not None and k != "threshold"]
        parts.append(f"thr={self.threshold:g}" if self.threshold is not None else "thr=service")
        return ",".join(parts)


def parse_config(spec: str) -> EvalConfig:
    """``"mode=bm25,reader=sentence,top_k=5,threshold=0.4"`` -> :class:`EvalConfig`."""
    values: dict[str, Any] = {}
    for item in filter(None, (x.strip() for x in spec.split(","))):
        key, sep, value = item.partition("=")
        key = _ALIASES.get(key.strip().lower(), key.strip().lower())
        value = value.strip()
        if not sep or not value:
            raise ConfigError(f"config {spec!r}: {item!r} is not KEY=VALUE")
        if key == "mode":
            if value not in MODES:
                raise ConfigError(f"config {spec!r}: mode must be one of {', '.join(MODES)}")
            values[key] = value
        elif key == "reader":
            if value not in READERS:
                raise ConfigError(f"config {spec!r}: reader must be one of {', '.join(READERS)}")
            values[key] = value
        elif key == "top_k":
            low, high = TOP_K
            if not value.isdigit() or not low <= int(value) <= high:
                raise ConfigError(f"config {spec!r}: top_k must be an integer in {low}..{high}")
            values[key] = int(value)
        elif key == "threshold":
            low, high = THRESHOLD
            try:
                thr = float(value)
            except ValueError:
                thr = float("nan")
            if not low <= thr <= high:  # NaN fails too
                raise ConfigError(
                    f"config {spec!r}: threshold must be a number in [{low:g}, {high:g}]"
                )
            values[key] = thr
        else:
            raise ConfigError(
                f"config {spec!r}: unknown key {key!r} (use mode, reader, top_k, threshold)"
            )
    return EvalConfig(**values)


def span_reader_available(settings: Settings) -> str | None:
    """None when the span reader can be built here, else the reason it cannot."""
    try:
        import rag.readers.span  # noqa: F401
    except ImportError as exc:
        return f"the span reader is not installed ({exc})"
    model = Path(settings.reader_model)
    looks_local = model.is_absolute() or settings.reader_model.startswith(".")
    if (model.exists() or looks_local) and not (model / "config.json").is_file():
        return f"no trained reader model in {model}"
    return None  # a trained folder, or a model hub id (tried at warm-up)


def expand_configs(
    specs: Sequence[str], settings: Settings | None, remote: bool = False
) -> list[EvalConfig]:
    """Configurations from ``--configs`` (presets ``default``, ``modes``, ``all``, or KEY=VALUE).

    In-process, unset keys take the settings' values. ``all`` = every retrieval mode x every
    reader available here (the span reader only once its trained model exists); against a
    service the reader is the service's, so ``all`` = every mode.
    """
    configs: list[EvalConfig] = []
    for spec in specs or ["default"]:
        if spec == "default":
            configs.append(EvalConfig())
        elif spec == "modes" or (spec == "all" and remote):
            configs += [EvalConfig(mode=mode) for mode in MODES]
        elif spec == "all":
            assert settings is not None
            usable = [r for r in READERS if r != "span" or not span_reader_available(settings)]
            configs += [EvalConfig(mode=mo, reader=r) for r in usable for mo in MODES]
        else:
            configs.append(parse_config(spec))
    if remote and any(c.reader for c in configs):
        raise ConfigError("reader= cannot be chosen with --url: the service answers with its own")
    if settings is not None and not remote:
        configs = [
            EvalConfig(
                c.mode or settings.retrieval_mode,
                c.reader or settings.reader,
                c.top_k or settings.top_k,
                c.threshold,
            )
            for c in configs
        ]
    return list(dict.fromkeys(configs))
