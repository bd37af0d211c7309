"""The bot as a langchain-core Runnable.

Inputs it accepts:

* a string, or ``{"input": str, "session_id": str}``: a turn in a session kept by the bot; the
  session id comes from the dict, else ``config["configurable"]["session_id"]``, else the default;
* a list of messages (``BaseMessage``, ``(role, text)`` tuples or ``{"role", "content"}`` dicts) or
  a ``PromptValue``: a stateless turn where the caller owns the history, which is what
  ``RunnableWithMessageHistory`` and LCEL prompt chains pass.

The output is an ``AIMessage`` whose ``response_metadata`` carries the emotion state, safety flags
and timings; ``stream`` yields ``AIMessageChunk`` pieces.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, convert_to_messages
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig

from .reply import DEFAULT_SESSION, Reply
from .errors import InvalidInputError

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def _metadata(reply: Reply) -> dict[str, Any]:
    return {"emotion": reply.emotion.to_dict(), "safety": list(reply.safety), "timings": reply.timings,
            "guidance": reply.guidance, "stopped": reply.stopped, "session_id": reply.session_id}


class EmpatheticRunnable(Runnable[Any, AIMessage]):
    def __init__(self, bot, default_session_id: str = DEFAULT_SESSION):
        self.bot = bot
        self.default_session_id = default_session_id

    @property
    def InputType(self) -> type:  # noqa: N802 - langchain's name
        return Any

    @property
    def OutputType(self) -> type:  # noqa: N802
        return AIMessage

    def _items(self, value: Any, config: Optional[RunnableConfig]) -> Iterator[str | Reply]:
        if isinstance(value, PromptValue):
            value = value.to_messages()
        if isinstance(value, dict) and "input" in value:
            sid = value.get("session_id") or ((config or {}).get("configurable") or {}).get("session_id")
            return self.bot.stream(value["input"], session_id=sid or self.default_session_id)
        if isinstance(value, (str, bytes)):
            sid = ((config or {}).get("configurable") or {}).get("session_id")
            return self.bot.stream(value, session_id=sid or self.default_session_id)
        if isinstance(value, (list, tuple)):
            try:
                messages = convert_to_messages(list(value))
            except Exception as exc:  # noqa: BLE001
                raise InvalidInputError(f"could not read the messages: {exc}") from exc
            plain = [{"role": _ROLES.get(m.type, m.type), "content": m.text if isinstance(m, BaseMessage) else str(m)}
                     for m in messages]
            return self.bot.respond(plain)
        raise InvalidInputError(
            f"unsupported input {type(value).__name__}: give a string, {{'input': ...}}, or a list of messages"
        )

    def _invoke(self, value: Any, config: Optional[RunnableConfig] = None) -> AIMessage:
        reply = [item for item in self._items(value, config) if isinstance(item, Reply)][-1]
        return AIMessage(content=reply.text, response_metadata=_metadata(reply))

    def invoke(self, input: Any, config: Optional[RunnableConfig] = None, **kwargs: Any) -> AIMessage:
        return self._call_with_config(self._invoke, input, config)

    def _transform(self, inputs: Iterator[Any], config: Optional[RunnableConfig] = None) -> Iterator[AIMessageChunk]:
        value = None
        for value in inputs:  # a Runnable's input may arrive in pieces; we answer the last whole one
            pass
        for item in self._items(value, config):
            if isinstance(item, Reply):
                yield AIMessageChunk(content="", response_metadata=_metadata(item))
            else:
                yield AIMessageChunk(content=item)

    def transform(self, input: Iterator[Any], config: Optional[RunnableConfig] = None,
                  **kwargs: Any) -> Iterator[AIMessageChunk]:
        yield from self._transform_stream_with_config(input, self._transform, config)

    def stream(self, input: Any, config: Optional[RunnableConfig] = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        yield from self.transform(iter([input]), config)
