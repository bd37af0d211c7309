import argparse

import pytest

from bot import BotConfig
from bot.cli import build_parser, config_from_args


def test_defaults_are_valid_and_offline():
    c = BotConfig()
    c.validate()
    assert c.model.base_model == "smollm2-135m"
    assert c.model.adapter == "empathy-lora" and c.model.emotion_classifier == "goemotions-minilm"


def test_from_dict_sets_nested_fields_and_rejects_unknown_keys():
    c = BotConfig.from_dict({"generation": {"max_new_tokens": 12, "seed": 7}, "conversation": {"persona_name": "Ada"}})
    assert (c.generation.max_new_tokens, c.generation.seed, c.conversation.persona_name) == (12, 7, "Ada")
    with pytest.raises(ValueError, match="unknown option generation.max_tokens"):
        BotConfig.from_dict({"generation": {"max_tokens": 3}})
    with pytest.raises(ValueError, match="unknown config section"):
        BotConfig.from_dict({"sampling": {}})


@pytest.mark.parametrize("section,key,value,message", [
    ("generation", "max_new_tokens", 0, "max_new_tokens"),
    ("generation", "temperature", -1.0, "temperature"),
    ("generation", "top_p", 0.0, "top_p"),
    ("generation", "openers", 1.5, "openers"),
    ("generation", "openers", -0.1, "openers"),
    ("conversation", "context_tokens", 10, "context_tokens"),
    ("conversation", "max_input_chars", 0, "max_input_chars"),
    ("conversation", "max_stored_turns", 0, "max_stored_turns"),
    ("conversation", "crisis_reply", "maybe", "crisis_reply"),
    ("conversation", "turn_timeout_s", -1, "turn_timeout_s"),
])
def test_invalid_values_are_refused(section, key, value, message):
    with pytest.raises(ValueError, match=message):
        BotConfig.from_dict({section: {key: value}})


def test_copy_is_deep():
    a = BotConfig()
    b = a.copy()
    b.generation.temperature = 0.1
    assert a.generation.temperature != 0.1


def test_every_config_field_is_reachable_from_the_cli():
    args = build_parser().parse_args([
        "chat", "--base-model", "org/model", "--adapter", "ad", "--emotion-classifier", "clf", "--encoder", "enc",
        "--device", "cpu", "--dtype", "bfloat16", "--cache-dir", "", "--ranker", "rk", "--crisis-detector", "cd", "--risk-turns", "4", "--candidates", "3", "--max-new-tokens", "9", "--temperature", "0",
        "--top-p", "0.5", "--repetition-penalty", "1.3", "--guidance", "1.5", "--sympathy-bonus", "3", "--question-bonus", "0.5", "--pool-bonus", "1.5", "--openers", "0.25", "--seed", "3", "--context-tokens", "512",
        "--max-input-chars", "100", "--prompts-dir", "p", "--persona-name", "Kai", "--log-conversations",
        "--max-stored-turns", "7", "--crisis-reply", "model", "--backend", "openai", "--gguf-type", "f16", "--threads", "1",
        "--base-url", "http://localhost:8000/v1", "--model", "served", "--store", "memory", "--no-redact",
        "--session-idle-expiry", "60", "--max-live-sessions", "5", "--turn-timeout", "30",
        "--reply-pool", "none", "--retrieved", "2", "--no-cross-ranker",
    ])
    c = config_from_args(args)
    flat = {f"{s}.{k}": v for s, d in c.to_dict().items() for k, v in d.items()}
    assert flat == {
        "model.base_model": "org/model", "model.adapter": "ad", "model.emotion_classifier": "clf",
        "model.encoder": "enc", "model.ranker": "rk", "model.cross_ranker": False, "model.crisis_detector": "cd",
        "model.reply_pool": "none", "generation.retrieved": 2, "conversation.risk_turns": 4, "generation.candidates": 3, "model.device": "cpu", "model.dtype": "bfloat16", "model.cache_dir": "",
        "model.backend": "openai", "model.gguf_type": "f16", "model.threads": 1, "model.base_url": "http://localhost:8000/v1",
        "model.served_model": "served", "conversation.store": "memory", "conversation.redact": False,
        "conversation.session_idle_expiry_s": 60.0, "conversation.max_live_sessions": 5,
        "conversation.turn_timeout_s": 30.0, "generation.max_new_tokens": 9, "generation.temperature": 0.0, "generation.top_p": 0.5,
        "generation.repetition_penalty": 1.3, "generation.guidance": 1.5, "generation.sympathy_bonus": 3.0, "generation.question_bonus": 0.5, "generation.pool_bonus": 1.5, "generation.openers": 0.25, "generation.seed": 3, "conversation.context_tokens": 512,
        "conversation.max_input_chars": 100, "conversation.prompts_dir": "p", "conversation.persona_name": "Kai",
        "conversation.log_conversations": True, "conversation.max_stored_turns": 7,
        "conversation.crisis_reply": "model",
    }


def test_every_option_of_every_command_shows_the_configs_real_default_in_its_help():
    import re

    from bot.cli import build_parser, config_from_args

    fields = {f"{section}.{name}" for section in ("model", "generation", "conversation")
              for name in vars(getattr(BotConfig(), section))}
    commands = build_parser()._subparsers._group_actions[0].choices
    for command in ("chat", "ui", "serve", "info", "bench"):
        p = commands[command]
        assert config_from_args(p.parse_args([])) == BotConfig(), command  # the options' defaults are the config's
        full = "".join(p.format_help().split())  # without spaces: lines wrap at other places in the whole
        for a in p._actions:
            if not a.option_strings or a.dest in ("help", "verbose") or a.help == argparse.SUPPRESS:
                continue
            formatter = p._get_formatter()
            formatter.add_argument(a)
            shown = " ".join(formatter.format_help().split())  # this option's lines of --help
            assert "".join(shown.split()) in full and "default" in shown, (command, a.dest, shown)
            section = next((s for s in ("model", "generation", "conversation") if f"{s}.{a.dest}" in fields), None)
            m = re.search(r"\(default: ([^()]*?)\)", shown)
            if section is None or m is None or any(c in m.group(1) for c in ", ") or m.group(1).startswith("--"):
                continue  # not a config field, or a default told in words ("on, when the ranker has one", "--base-model")
            value = getattr(getattr(BotConfig(), section), a.dest)
            expected = ("on" if value else "off") if isinstance(value, bool) else \
                "none" if value in (None, "") else str(value)
            assert m.group(1) == expected, (command, a.dest, m.group(1), expected)
