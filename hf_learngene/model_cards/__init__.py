"""Hub model cards for learngenes and for models built from them, filled in from the templates
beside this file (``learngene.md``, ``built_model.md``) with Hub metadata in the YAML header."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from string import Template
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ..methods.options import METHOD_OPTIONS, method_options

TEMPLATES = Path(__file__).parent
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_id(name_or_path: str | None) -> str | None:
    """``name_or_path`` when it names a Hub repository rather than a local folder."""
    if not name_or_path or Path(name_or_path).exists() or not _HUB_ID.match(name_or_path):
        return None
    return name_or_path


def _render(template: str, metadata: ModelCardData, **values: Any) -> ModelCard:
    text = Template((TEMPLATES / template).read_text()).substitute(**values)
    return ModelCard(f"---\n{metadata.to_yaml()}\n---\n\n{text}")


def _source_line(source: str | None) -> str:
    repo = hub_id(source)
    return f"[`{repo}`](https://huggingface.co/{repo})" if repo else f"`{source or 'a local model'}`"


def _options_rows(method: str, values: dict[str, Any]) -> str:
    """The method's options as table rows (option, value, what it does), from their declaration."""
    options = method_options(method, values)
    rows = [f"| `{option.name}` | `{json.dumps(getattr(options, option.name))}` | {option.metadata['help']} |"
            for option in dataclasses.fields(options)]
    return "\n".join(rows) or "| (none) | | this method has no options |"


def _method_title(method: str | None) -> str:
    return METHOD_OPTIONS[method].title if method in METHOD_OPTIONS else str(method)


def learngene_card(learngene, repo_id: str, tags: list[str] | None = None) -> ModelCard:
    """The card pushed with a learngene: library, tags, base model, method options, size."""
    summary = learngene.summary()
    metadata = ModelCardData(
        library_name="hf-learngene",
        tags=sorted({"learngene", f"learngene-{summary['method']}", summary["family"], *(tags or [])}),
        base_model=hub_id(summary["source"]),
        learngene={"method": summary["method"], "method_options": summary["method_options"],
                   "rescaling": summary["rescaling"], "stored_values": summary["stored_values"],
                   "stored_bytes": summary["stored_bytes"], "source_sizes": summary["source_sizes"]},
    )
    arch = learngene.architecture
    presets = list(arch.presets)
    if presets:
        example_size = repr(presets[0])
    else:  # a family without presets: the source's own sizes, as a size request
        source = learngene.source_config
        example_size = repr({alias: list(source[field]) if isinstance(source[field], (list, tuple)) else source[field]
                             for alias, field in arch.size_aliases.items()})
    if arch.library == "diffusers":
        usage = (f"model = learngene.build({example_size})  # a plain diffusers {summary['model_type']}\n```\n\n"
                 f"The result is an ordinary `diffusers` `{summary['model_type']}`: train it, use it in a pipeline, "
                 "save it or push it like any other.")
    else:
        usage = (f"model = hf_learngene.AutoModel.from_learngene(\"{repo_id}\", {example_size})\n```\n\n"
                 "The result is an ordinary `transformers` model: train it with `Trainer` or `accelerate`, add a "
                 "peft adapter, save it or push it like any other.")
    return _render(
        "learngene.md", metadata,
        title=f"{repo_id.split('/')[-1]}",
        method_title=_method_title(summary["method"]),
        source_line=_source_line(summary["source"]),
        stored_values=f"{summary['stored_values']:,}",
        stored_size=f"{summary['stored_bytes'] / 2**20:.1f} MiB in float32",
        compression=f"{summary['compression']:.2f}",
        family=summary["family"],
        repo_id=repo_id,
        usage=usage,
        method=summary["method"],
        option_rows=_options_rows(summary["method"], summary["method_options"]),
        rescaling=summary["rescaling"],
        model_type=summary["model_type"],
        source_sizes=", ".join(f"{k} {v}" for k, v in summary["source_sizes"].items()),
        roles=summary["roles"],
        checksum=learngene.config.checksum or "written on save",
    )


def built_model_card(model, repo_id: str, tags: list[str] | None = None) -> ModelCard:
    """The card pushed with a model built from a learngene (``model.config.learngene``)."""
    origin = getattr(model.config, "learngene", None) or {}
    learngene = origin.get("learngene")
    metadata = ModelCardData(
        library_name="transformers",
        tags=sorted({"learngene", f"learngene-{origin.get('method')}", *(model.model_tags or []), *(tags or [])}),
        base_model=hub_id(learngene) or hub_id(origin.get("source")),
    )
    sizes = ", ".join(f"{k} {v}" for k, v in origin.get("sizes", {}).items())
    return _render(
        "built_model.md", metadata,
        title=repo_id.split("/")[-1],
        model_class=type(model).__name__,
        sizes=sizes or "see config.json",
        method=origin.get("method"),
        method_title=_method_title(origin.get("method")),
        learngene_line=_source_line(learngene) if learngene else "(built in memory)",
        learngene_name=_source_line(learngene) if learngene else "built in memory",
        source_line=_source_line(origin.get("source")),
        repo_id=repo_id,
    )


def fine_learngene_card(learngene, repo_id: str, tags: list[str] | None = None) -> ModelCard:
    """The card pushed with a FINE learngene: library, tags, sizes, ranks and how to build from it."""
    summary = learngene.summary()
    metadata = ModelCardData(
        library_name="hf-learngene",
        tags=sorted({"learngene", "learngene-fine", "diffusers", "dit", *(tags or [])}),
        learngene={"method": "fine", **{k: v for k, v in summary.items() if k != "stored_bytes"}},
    )
    return _render(
        "fine_learngene.md", metadata,
        title=repo_id.split("/")[-1],
        repo_id=repo_id,
        example_layers=max(1, summary["source_layers"] // 2),
        ranks=", ".join(f"{kind} {rank}" for kind, rank in summary["ranks"].items()),
        stored_values=f"{summary['stored_values']:,}",
        factor_values=f"{summary['factor_values']:,}",
        stored_size=f"{summary['stored_bytes'] / 2**20:.1f} MiB in float32",
        **{k: summary[k] for k in ("source_layers", "hidden", "heads", "sample_size", "in_channels", "patch_size",
                                   "classes")},
    )
