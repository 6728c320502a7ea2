"""Versioned prompt templates (Japanese), one YAML file per version: `templates/<name>-v<N>.yaml`.
A record names the template version and file hash it was made with."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

import yaml

from compass_model.errors import CompassInputError

TEMPLATE_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: int
    sha256: str
    max_tokens: int
    texts: dict[str, str]

    @property
    def tag(self) -> str:
        return f"{self.name}-v{self.version}"

    def render(self, key: str, **values: object) -> str:
        """`$name` placeholders, so the JSON braces in the prompts need no escaping."""
        return Template(self.texts[key]).substitute(values)


def load_template(name: str, version: int | None = None) -> PromptTemplate:
    """The given version, or the newest one shipped."""
    versions = {
        int(match.group(1)): path
        for path in TEMPLATE_DIR.glob(f"{name}-v*.yaml")
        if (match := re.fullmatch(rf"{re.escape(name)}-v(\d+)\.yaml", path.name))
    }
    if not versions:
        raise CompassInputError(f"no prompt template named {name!r} in {TEMPLATE_DIR}")
    chosen = max(versions) if version is None else version
    if chosen not in versions:
        raise CompassInputError(f"template {name!r} has versions {sorted(versions)}, not {chosen}")
    raw_bytes = versions[chosen].read_bytes()
    raw = yaml.safe_load(raw_bytes)
    texts = {key: value for key, value in raw.items() if isinstance(value, str) and key != "name"}
    return PromptTemplate(
        name=raw["name"],
        version=int(raw["version"]),
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        max_tokens=int(raw["max_tokens"]),
        texts=texts,
    )
