"""The bot as a langchain-core Runnable: plain invoke, LCEL, streaming, RunnableWithMessageHistory."""

import pytest
from langchain_core.chat_history import InMemoryChatMessageHistory
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import RunnableLambda
from langchain_core.runnables.history import RunnableWithMessageHistory

from bot import BotConfig, EmpatheticBot
from fakes import FakeReplyModel, KeywordClassifier


@pytest.fixture
def bot():
    return EmpatheticBot(BotConfig(), reply_model=FakeReplyModel(), emotion_classifier=KeywordClassifier())


def test_invoke_with_a_string_uses_a_bot_session(bot):
    r = bot.as_runnable()
    out = r.invoke("I am sad", config={"configurable": {"session_id": "lc"}})
    assert isinstance(out, AIMessage) and out.content.startswith("I hear you")
    assert out.response_metadata["emotion"]["top"][0]["label"] == "sadness"
    assert len(bot.history("lc")) == 2


def test_dict_input_with_session(bot):
    bot.as_runnable().invoke({"input": "hello", "session_id": "d"})
    assert bot.history("d")[0]["content"] == "hello"


def test_lcel_composition_with_a_prompt_and_parser(bot):
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{question}")])
    chain = prompt | bot.as_runnable() | StrOutputParser()
    out = chain.invoke({"history": [HumanMessage("I am scared"), AIMessage("oh no")], "question": "what now"})
    assert out.startswith("I hear you: what now")
    assert bot.sessions() == []  # message input is stateless: the caller owns the history
    sent = bot.reply_model.prompts[-1]
    assert [m["content"] for m in sent[1:]] == ["I am scared", "oh no", "what now"]


def test_streaming_yields_chunks_and_metadata(bot):
    chunks = list(bot.as_runnable().stream([("human", "I am happy today")]))
    text = "".join(c.content for c in chunks)
    assert text.strip().startswith("I hear you") and len(chunks) > 2
    assert chunks[-1].response_metadata["emotion"]["top"][0]["label"] == "joy"
    streamed = list((bot.as_runnable() | StrOutputParser()).stream("hi"))
    assert len(streamed) > 2


def test_runnable_with_message_history(bot):
    store = {}

    def history(session_id):
        return store.setdefault(session_id, InMemoryChatMessageHistory())

    chain = RunnableWithMessageHistory(bot.as_runnable(), history)
    cfg = {"configurable": {"session_id": "u1"}}
    chain.invoke("I lost my cat", config=cfg)
    chain.invoke("I miss her", config=cfg)
    msgs = store["u1"].messages
    assert [m.type for m in msgs] == ["human", "ai", "human", "ai"]
    last_prompt = bot.reply_model.prompts[-1]
    assert [m["content"] for m in last_prompt[1:]][:1] == ["I lost my cat"]  # history came from the store
    chain.invoke("other", config={"configurable": {"session_id": "u2"}})
    assert len(store["u2"].messages) == 2 and len(store["u1"].messages) == 4


def test_bad_input_raises_a_clear_error(bot):
    from bot import InvalidInputError

    with pytest.raises(InvalidInputError):
        bot.as_runnable().invoke("   ")
    with pytest.raises(InvalidInputError, match="unsupported input"):
        bot.as_runnable().invoke(42)


@pytest.mark.slow
def test_real_bot_in_an_lcel_chain(real_bot):
    chain = RunnableLambda(lambda q: [("human", q)]) | real_bot.as_runnable() | StrOutputParser()
    out = chain.invoke("My best friend moved away and I miss her.")
    assert isinstance(out, str) and out.strip()
