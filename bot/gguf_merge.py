"""Write a GGUF file with a PEFT LoRA adapter merged into a GGUF base model.

llama.cpp reads GGUF files only; the project's adapters are PEFT folders. This module copies a GGUF
base tensor by tensor: the tensors the adapter touches are de-quantized, get the adapter's update
``scale * B @ A`` added, and are quantized again (to ``qtype``); every other tensor and all metadata
(tokenizer, chat template, architecture) are copied byte for byte. Needs only ``gguf`` and
``safetensors``, no llama.cpp.

Supported: plain LoRA adapters (``peft_type`` LORA, without DoRA) on llama-architecture GGUF bases
(SmolLM2, Llama, Mistral-style layouts) whose targets are among the attention and MLP projections.
Anything else raises ``UnsupportedMerge``; ``bot.backends`` then falls back to transformers.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np

# PEFT module name -> GGUF tensor name (llama layout, as llama.cpp's converter writes it)
_TENSOR_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_LORA_KEY = re.compile(r"(?:^|\.)layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.lora_([AB])\.weight$")
QTYPES = ("same", "q8_0", "q4_1", "f16", "f32")


class UnsupportedMerge(Exception):
    """The adapter or the base cannot be merged into a GGUF file by this module."""


def check_lora(adapter_dir: str | os.PathLike) -> tuple[dict, float, dict[str, dict[str, str]]]:
    """``(adapter config, scale, {gguf tensor name: {"A": key, "B": key}})`` for a PEFT LoRA folder that
    can be merged; ``UnsupportedMerge`` otherwise. Reads the tensor names only, not the weights."""
    folder = Path(adapter_dir)
    config_file = folder / "adapter_config.json"
    weights_file = folder / "adapter_model.safetensors"
    if not config_file.is_file() or not weights_file.is_file():
        raise UnsupportedMerge(f"{folder} has no adapter_config.json and adapter_model.safetensors")
    config = json.loads(config_file.read_text())
    if config.get("peft_type") != "LORA":
        raise UnsupportedMerge(f"only LoRA adapters can be merged into a GGUF file, not {config.get('peft_type')}")
    if config.get("use_dora"):
        raise UnsupportedMerge("DoRA adapters cannot be merged into a GGUF file here")
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise UnsupportedMerge("adapters with per-module ranks or alphas cannot be merged into a GGUF file here")
    if config.get("modules_to_save"):
        raise UnsupportedMerge("adapters with fully trained modules (modules_to_save) cannot be merged here")
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r

    from safetensors import safe_open

    pairs: dict[str, dict[str, str]] = {}
    with safe_open(str(weights_file), framework="numpy") as f:
        keys = list(f.keys())
    for key in keys:
        m = _LORA_KEY.search(key)
        if m is None:
            raise UnsupportedMerge(f"the adapter tensor {key!r} is not on an attention or MLP projection")
        pairs.setdefault(f"blk.{m.group(1)}.{_TENSOR_NAMES[m.group(2)]}.weight", {})[m.group(3)] = key
    for name, ab in pairs.items():
        if set(ab) != {"A", "B"}:
            raise UnsupportedMerge(f"the adapter has an incomplete LoRA pair for {name}")
    return config, scale, pairs


def read_lora(adapter_dir: str | os.PathLike) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float, dict]:
    """``({gguf tensor name: (A, B)}, scale, adapter config)`` for a PEFT LoRA folder."""
    config, scale, pairs = check_lora(adapter_dir)
    from safetensors.numpy import load_file

    weights = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
    lora = {name: (weights[ab["A"]].astype(np.float32), weights[ab["B"]].astype(np.float32))
            for name, ab in pairs.items()}
    return lora, scale, config


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's converter reorders the rows of q and k for its rotary embedding; the same order
    applies to an update of those weights."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _field_value(reader, name: str):
    field = reader.fields.get(name)
    return None if field is None else field.contents()


def merge_lora_into_gguf(base_gguf: str | os.PathLike, adapter_dir: str | os.PathLike,
                         out: str | os.PathLike, qtype: str = "same") -> dict:
    """Write ``out``: ``base_gguf`` with the LoRA in ``adapter_dir`` merged in. ``qtype`` is the type
    of the merged tensors: ``"same"`` as the base stored them, or ``q8_0``, ``q4_1``, ``f16``, ``f32``.
    The file appears atomically. Returns a summary (tensors merged, types, sizes)."""
    import gguf

    if qtype not in QTYPES:
        raise ValueError(f"unknown quantization type {qtype!r}; use one of {', '.join(QTYPES)}")
    lora, scale, config = read_lora(adapter_dir)
    reader = gguf.GGUFReader(str(base_gguf))
    arch = _field_value(reader, "general.architecture")
    if arch != "llama":
        raise UnsupportedMerge(f"merging into a GGUF file supports llama-architecture bases, not {arch!r}")
    n_head = int(_field_value(reader, "llama.attention.head_count"))
    n_head_kv = int(_field_value(reader, "llama.attention.head_count_kv") or n_head)
    tensors = {t.name: t for t in reader.tensors}
    missing = sorted(set(lora) - set(tensors))
    if missing:
        raise UnsupportedMerge(f"the adapter does not fit this base: it has no tensors {missing[:3]}")

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", dir=out.parent)
    os.close(fd)
    writer = gguf.GGUFWriter(tmp, arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue  # written by GGUFWriter itself
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    writer.add_string("general.lora_merged", Path(adapter_dir).name)

    merged_types: dict[str, int] = {}
    datas = []
    for t in reader.tensors:
        if t.name not in lora:
            writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
            datas.append(t.data)
            continue
        a, b = lora[t.name]
        weight = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        delta = scale * (b @ a)
        if ".attn_q." in t.name:
            delta = _permute(delta, n_head)
        elif ".attn_k." in t.name:
            delta = _permute(delta, n_head_kv)
        if delta.shape != weight.shape:
            raise UnsupportedMerge(f"{t.name}: the adapter's update is {delta.shape}, the base weight {weight.shape}")
        weight += delta
        target = t.tensor_type if qtype == "same" else gguf.GGMLQuantizationType[qtype.upper()]
        try:
            data = gguf.quants.quantize(weight, target)
        except (NotImplementedError, gguf.quants.QuantError):
            target = gguf.GGMLQuantizationType.Q8_0  # a type numpy cannot write: the nearest exact-enough one
            data = gguf.quants.quantize(weight, target)
        merged_types[target.name] = merged_types.get(target.name, 0) + 1
        writer.add_tensor_info(t.name, data.shape, data.dtype, data.nbytes, target)
        datas.append(data)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for data in datas:
            writer.write_tensor_data(data)
        writer.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"tensors_merged": len(lora), "merged_types": merged_types, "scale": scale, "rank": config["r"],
            "bytes": out.stat().st_size}
