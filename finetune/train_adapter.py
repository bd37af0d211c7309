"""Train the reply adapter: LoRA, AdaLoRA or QLoRA on examples from ``finetune.dialogue_data``.

    python -m finetune.dialogue_data --data-dir ../shared/data --output runs/sft-data
    python -m finetune.train_adapter --data runs/sft-data --output runs/adapter-lora
    python -m finetune.train_adapter --method adalora --r 16 --adalora-init-r 24 --output runs/adapter-adalora
    python -m finetune.train_adapter --method qlora --base-model HuggingFaceTB/SmolLM2-360M-Instruct   # CUDA only
    accelerate launch -m finetune.train_adapter ...          # several GPUs
    python -m finetune.train_adapter --resume runs/adapter-lora/checkpoint   # go on after an interruption

Every ``AdapterConfig`` field is a ``--flag``. The loss is computed on the reply tokens only (the
prompt, rendered by the bot's own templates, is masked). Batches are grouped by length; bf16 on
CUDA; validation loss every ``eval_every`` steps; a checkpoint every ``save_every`` steps. The
output folder is a PEFT adapter (``adapter_config.json`` + ``adapter_model.safetensors``) that the
bot loads with ``--adapter``, plus ``run_summary.json`` (config, commit, data hashes, losses, wall
time, tokens/s, peak memory).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

IGNORE = -100


@dataclass
class AdapterConfig:
    data: str = "runs/sft-data"  # folder with train.jsonl and valid.jsonl from finetune.dialogue_data
    base_model: str = "smollm2-135m"
    output: str = "runs/adapter"
    method: str = "lora"  # "lora", "adalora" or "qlora" (4-bit base, CUDA only)
    r: int = 16  # LoRA rank; for AdaLoRA the average rank it prunes down to
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    adalora_init_r: int = 24  # AdaLoRA starts here and prunes to r over [tinit, total - tfinal]
    adalora_tinit: float = 0.1  # share of steps before pruning starts
    adalora_tfinal: float = 0.2  # share of steps at the end with the budget fixed
    epochs: int = 2
    max_steps: int | None = None  # stop early (a quick run)
    lr: float = 2e-4
    batch_size: int = 16
    grad_accum: int = 1
    max_length: int = 512
    warmup: float = 0.03
    weight_decay: float = 0.0
    eval_every: int = 200
    save_every: int = 500
    limit_train: int | None = None
    limit_valid: int | None = 512
    seed: int = 0
    threads: int | None = None
    cache_dir: str | None = None
    resume: str | None = None  # a checkpoint folder written by this script


def parse_args(argv=None) -> AdapterConfig:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in fields(AdapterConfig):
        kind = {"int": int, "int | None": int, "float": float}.get(str(f.type), str)
        p.add_argument(f"--{f.name.replace('_', '-')}", default=f.default, type=kind)
    return AdapterConfig(**vars(p.parse_args(argv)))


def tokenize_example(tokenizer, messages: list[dict], reply: str, max_length: int) -> tuple[list[int], list[int]] | None:
    """Prompt + reply token ids and labels (prompt masked). The oldest whole turns are dropped to fit,
    as the bot does while serving; None when even the last message alone does not fit."""
    messages = list(messages)
    while True:
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": reply}], tokenize=False)
        if not full.startswith(prompt):
            raise ValueError("the chat template renders the prompt differently when a reply follows; cannot mask it")
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        reply_ids = tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
        if len(prompt_ids) + len(reply_ids) <= max_length:
            return prompt_ids + reply_ids, [IGNORE] * len(prompt_ids) + reply_ids
        if len(messages) <= 2:  # system + the user's message: nothing left to drop
            return None
        messages = [messages[0]] + messages[3:]  # drop the oldest user/assistant pair


def load_examples(path: Path, tokenizer, max_length: int, limit: int | None, seed: int = 0) -> tuple[list, int]:
    """Tokenized examples; with ``limit``, a seeded random subset of that many lines (the files are
    ordered by source and emotion, so the first lines would not be a fair sample)."""
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    if limit and limit < len(lines):
        keep = sorted(random.Random(seed).sample(range(len(lines)), limit))
        lines = [lines[i] for i in keep]
    out, skipped = [], 0
    for line in lines:
        ex = json.loads(line)
        tok = tokenize_example(tokenizer, ex["messages"], ex["reply"], max_length)
        if tok is None:
            skipped += 1
        else:
            out.append(tok)
    return out, skipped


def collate(batch, pad_id: int):
    import torch

    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for r, (ids, lab) in enumerate(batch):
        input_ids[r, :len(ids)] = torch.tensor(ids)
        labels[r, :len(lab)] = torch.tensor(lab)
        mask[r, :len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def peft_config(cfg: AdapterConfig, total_steps: int):
    from peft import AdaLoraConfig, LoraConfig

    targets = [t.strip() for t in cfg.target_modules.split(",") if t.strip()]
    if cfg.method in ("lora", "qlora"):
        return LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=targets,
                          task_type="CAUSAL_LM")
    if cfg.method == "adalora":
        return AdaLoraConfig(init_r=cfg.adalora_init_r, target_r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                             target_modules=targets, task_type="CAUSAL_LM", total_step=total_steps,
                             tinit=int(cfg.adalora_tinit * total_steps), tfinal=int(cfg.adalora_tfinal * total_steps),
                             deltaT=max(1, total_steps // 100))
    raise ValueError("method must be lora, adalora or qlora")


def load_model(cfg: AdapterConfig, cuda: bool):
    import torch

    from bot.generation import load_base, plain_model_folder
    from bot.resolve import resolve_base_model

    resolved = resolve_base_model(cfg.base_model)
    if cfg.method == "qlora":
        if not cuda:
            raise SystemExit("QLoRA needs CUDA (bitsandbytes 4-bit); use --method lora on this machine")
        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

        folder = plain_model_folder(resolved, cfg.cache_dir)
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant, dtype=torch.bfloat16)
        return AutoTokenizer.from_pretrained(folder), prepare_model_for_kbit_training(model), resolved
    tokenizer, model, _ = load_base(resolved, torch.float32, cfg.cache_dir)
    return tokenizer, model, resolved


def evaluate(model, batches, accelerator) -> float:
    """Token-weighted mean cross-entropy over the reply tokens of the validation batches.

    Computed from the logits, not read from ``outputs.loss``: AdaLoRA adds its orthogonality
    regulariser to that loss, which would make its validation loss incomparable with LoRA's."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for batch in batches:
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            labels = batch.pop("labels")[:, 1:]
            logits = model(**batch).logits[:, :-1].float()
            total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1),
                                                             ignore_index=IGNORE, reduction="sum"))
            count += int((labels != IGNORE).sum())
    model.train()
    return total / max(count, 1)


def train(cfg: AdapterConfig) -> dict:
    import torch
    from accelerate import Accelerator
    from peft import PeftModel, get_peft_model
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from bot.resolve import file_sha256
    from finetune.batching import length_grouped_batches
    from finetune.train_classifier import git_commit

    t_start, commit = time.time(), git_commit()  # the code that runs, before anything can change it
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    cuda = torch.cuda.is_available()
    accelerator = Accelerator(mixed_precision="bf16" if cuda else "no", gradient_accumulation_steps=cfg.grad_accum)
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer, model, resolved = load_model(cfg, cuda)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    data = Path(cfg.data)
    train_set, skipped_train = load_examples(data / "train.jsonl", tokenizer, cfg.max_length, cfg.limit_train, cfg.seed)
    valid_set, skipped_valid = load_examples(data / "valid.jsonl", tokenizer, cfg.max_length, cfg.limit_valid, cfg.seed)
    if not train_set:
        raise SystemExit(f"no training examples in {data / 'train.jsonl'}")
    accelerator.print(f"{len(train_set)} train / {len(valid_set)} valid examples "
                      f"({skipped_train} + {skipped_valid} longer than {cfg.max_length} tokens skipped)")

    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size / cfg.grad_accum / accelerator.num_processes)
    total_steps = min(cfg.max_steps or steps_per_epoch * cfg.epochs, steps_per_epoch * cfg.epochs)
    if cfg.resume:
        model = PeftModel.from_pretrained(model, cfg.resume, is_trainable=True)
    else:
        model = get_peft_model(model, peft_config(cfg, total_steps))
    model.config.use_cache = False
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    accelerator.print(f"{cfg.method}: {trainable:,} trainable parameters")

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * total_steps), total_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    valid_batches = [collate([valid_set[i] for i in b], pad_id)
                     for b in length_grouped_batches([len(x[0]) for x in valid_set], cfg.batch_size, random.Random(0))]

    start_step = 0
    if cfg.resume:
        state = json.loads((Path(cfg.resume) / "trainer_state.json").read_text())
        start_step = state["step"]
        optimizer.load_state_dict(torch.load(Path(cfg.resume) / "optimizer.pt", weights_only=False))
        scheduler.load_state_dict(torch.load(Path(cfg.resume) / "scheduler.pt", weights_only=False))
        accelerator.print(f"resuming at step {start_step}")
    step = start_step

    def save_checkpoint(folder: Path) -> None:
        accelerator.unwrap_model(model).save_pretrained(folder)
        torch.save(optimizer.state_dict(), folder / "optimizer.pt")
        torch.save(scheduler.state_dict(), folder / "scheduler.pt")
        (folder / "trainer_state.json").write_text(json.dumps({"step": step, "config": asdict(cfg)}))

    losses, valid_losses, tokens, t_train = [], [], 0, time.time()
    if valid_batches:
        valid_losses.append({"step": step, "loss": evaluate(model, valid_batches, accelerator)})
    rng = random.Random(cfg.seed)
    bar = tqdm(total=total_steps, initial=start_step, desc=cfg.method, disable=not accelerator.is_main_process,
               mininterval=5)
    model.train()
    done = False
    skip = start_step * cfg.grad_accum  # micro-batches trained before the checkpoint: same seed, same order
    for epoch in range(cfg.epochs):
        batches = length_grouped_batches([len(x[0]) for x in train_set], cfg.batch_size, rng)
        for b in batches[accelerator.process_index::accelerator.num_processes]:  # each process its own share
            if skip > 0:
                skip -= 1
                continue
            batch = {k: v.to(accelerator.device) for k, v in collate([train_set[i] for i in b], pad_id).items()}
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                if cfg.method == "adalora" and accelerator.sync_gradients:
                    accelerator.unwrap_model(model).base_model.update_and_allocate(step + 1)
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            tokens += int(batch["attention_mask"].sum())
            if not accelerator.sync_gradients:
                continue
            step += 1
            losses.append({"step": step, "loss": loss.item()})
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if valid_batches and step % cfg.eval_every == 0:
                valid_losses.append({"step": step, "loss": evaluate(model, valid_batches, accelerator)})
                accelerator.print(json.dumps(valid_losses[-1]))
            if step % cfg.save_every == 0:
                save_checkpoint(out / "checkpoint")
            if step >= total_steps:
                done = True
                break
        if done:
            break
    bar.close()
    train_seconds = time.time() - t_train
    if valid_batches and (not valid_losses or valid_losses[-1]["step"] != step):
        valid_losses.append({"step": step, "loss": evaluate(model, valid_batches, accelerator)})

    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        unwrapped.save_pretrained(out)
        save_checkpoint(out / "checkpoint")
    peak = (torch.cuda.max_memory_allocated() / 2**20) if cuda else None
    if peak is None:
        import psutil

        peak = psutil.Process().memory_info().rss / 2**20
    summary = {
        "config": asdict(cfg), "commit": commit, "base_model": resolved.description, "method": cfg.method,
        "trainable_parameters": trainable, "device": str(accelerator.device), "processes": accelerator.num_processes,
        "data": {name: {"file": str(data / name), "sha256": file_sha256(data / name)} for name in ("train.jsonl", "valid.jsonl")},
        "examples": {"train": len(train_set), "valid": len(valid_set), "skipped_too_long": skipped_train + skipped_valid},
        "steps": step, "train_losses": losses, "valid_losses": valid_losses,
        "train_seconds": train_seconds, "wall_seconds": time.time() - t_start,
        "tokens_per_s": tokens * accelerator.num_processes / max(train_seconds, 1e-9),
        "peak_memory_mb": peak, "peak_memory_kind": "cuda allocated" if cuda else "process RSS",
    }
    if accelerator.is_main_process:
        (out / "run_summary.json").write_text(json.dumps(summary, indent=1))
        first = valid_losses[0]["loss"] if valid_losses else float("nan")
        last = valid_losses[-1]["loss"] if valid_losses else float("nan")
        accelerator.print(f"saved {out}: valid loss {first:.3f} -> {last:.3f}, {summary['tokens_per_s']:.0f} tokens/s")
    return summary


def main(argv=None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
