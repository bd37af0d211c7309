import pytest

from bot.emotion import EmotionState, EmotionTracker
from bot.prompting import PromptBook, PromptError


def state_for(probs):
    return EmotionTracker().update(probs)


def test_system_prompt_has_persona_and_unavailable_guidance():
    book = PromptBook(persona_name="Sol")
    msgs = book.render([], "hello", EmotionState.unavailable())
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "You are Sol" in msgs[0]["content"]
    assert book.guidance["unavailable"] in msgs[0]["content"]
    assert msgs[1]["content"] == "hello"
    assert "\n\n" not in msgs[0]["content"]  # empty template slots leave no blank lines


@pytest.mark.parametrize("probs,key", [
    ({"grief": 0.9, "sadness": 0.5}, "grief"),           # the label's own file wins
    ({"disappointment": 0.8}, "sadness"),                 # then its Ekman group
    ({"annoyance": 0.7}, "anger"),
    ({"nervousness": 0.7}, "fear"),
    ({"gratitude": 0.9}, "joy"),
    ({"neutral": 0.9}, "neutral"),
])
def test_guidance_is_chosen_by_the_emotion_state(probs, key):
    book = PromptBook()
    state = state_for(probs)
    assert book.guidance_key(state) == key
    system = book.render([], "x", state)[0]["content"]
    assert book.guidance[key] in system
    assert state.top[0].label in system  # the state itself is in the prompt


def test_history_is_rendered_in_order_with_roles():
    book = PromptBook()
    history = [{"role": "user", "content": "a {curly} brace"}, {"role": "assistant", "content": "b"}]
    msgs = book.render(history, "c {x}", EmotionState.unavailable())
    assert [(m["role"], m["content"]) for m in msgs[1:]] == [
        ("user", "a {curly} brace"), ("assistant", "b"), ("user", "c {x}")]


def test_custom_prompts_dir(tmp_path):
    (tmp_path / "guidance").mkdir()
    (tmp_path / "system.md").write_text("I am {name}. {guidance}")
    (tmp_path / "guidance" / "default.md").write_text("Be kind.")
    msgs = PromptBook(tmp_path, persona_name="Kai").render([], "hi", EmotionState.unavailable())
    assert msgs[0]["content"] == "I am Kai. Be kind."


def test_broken_prompt_folders_fail_clearly(tmp_path):
    with pytest.raises(PromptError, match="no system.md"):
        PromptBook(tmp_path)
    (tmp_path / "system.md").write_text("Hello {nme}")
    with pytest.raises(PromptError, match="unknown variable"):
        PromptBook(tmp_path).render([], "hi", EmotionState.unavailable())


def test_real_chat_template_renders_every_message():
    """The rendered messages go through the base model's own chat template."""
    from transformers import AutoTokenizer

    from bot.resolve import resolve_base_model

    r = resolve_base_model(None)
    tok = AutoTokenizer.from_pretrained(r.location, gguf_file=r.gguf_file)
    msgs = PromptBook().render([{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}],
                               "three", EmotionState.unavailable())
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text.count("<|im_start|>") == 5  # 4 messages + the generation prompt
    assert text.index("one") < text.index("two") < text.index("three")
    assert text.rstrip().endswith("<|im_start|>assistant")
    assert "You are Sol" in text and "SmolLM" not in text  # our system prompt replaces the default
