"""Classifier-free guidance towards the emotion state at decoding (Sanchez et al., 2023, "Stay on topic
with Classifier-Free Guidance").

The reply model scores each next token twice: given the prompt with the emotion state (``c``) and given
the same prompt without it (``u``, ``PromptBook.render(..., stateless=True)``). Sampling then uses

    log p = u + gamma * (c - u)        (both as log-probabilities)

so ``gamma`` 1 is plain decoding and ``gamma`` > 1 pushes the reply further in the direction the state
moves it. The transformers backend uses transformers' own processor (the same formula); the llama.cpp
backend runs the unconditioned prompt in a second context (``LlamaGuidance``).
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    top = x.max(axis=-1, keepdims=True)
    return x - top - np.log(np.exp(x - top).sum(axis=-1, keepdims=True))


def guided(cond_logits: np.ndarray, uncond_logits: np.ndarray, gamma: float) -> np.ndarray:
    """The guided next-token scores (log-probabilities before renormalisation): ``u + gamma * (c - u)``."""
    c, u = log_softmax(cond_logits), log_softmax(uncond_logits)
    return u + gamma * (c - u)


class LlamaGuidance:
    """A llama.cpp logits processor: feeds the tokens sampled so far to a second context that holds the
    unconditioned prompt, and returns the guided scores. One instance per reply; ``prompt_len`` is the
    length of the conditioned prompt (the generated tokens are what follows it)."""

    def __init__(self, uncond_llm, uncond_ids: list[int], prompt_len: int, gamma: float):
        self.llm, self.prompt_len, self.gamma = uncond_llm, prompt_len, gamma
        from .backends import hold_all_but_last

        # reuse what the context already holds of this prompt (the previous candidate of the same turn),
        # and read its last token alone, as the conditioned context does
        hold_all_but_last(uncond_llm, uncond_ids)
        uncond_llm.eval(uncond_ids[-1:])
        self.fed = 0

    def __call__(self, input_ids, logits):
        new = [int(t) for t in input_ids[self.prompt_len + self.fed:]]
        if new:
            self.llm.eval(new)
            self.fed += len(new)
        n_vocab = len(logits)
        u = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(n_vocab,))
        return guided(logits, u, self.gamma).astype(np.float32)
