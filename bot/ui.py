"""The Gradio web UI: streamed replies, the emotion state beside the chat, its trajectory as a plot.

Each browser tab is its own bot session (keyed by Gradio's session hash), so two people using
the same server never see each other's turns. Errors show as a message on the page, never as a
traceback; a turn that fails leaves the conversation as it was.
"""

import logging
import threading
from typing import Any

from .config import BotConfig
from .emotion import GOEMOTIONS_LABELS, EmotionState
from .errors import BotError, InvalidInputError

log = logging.getLogger(__name__)

TITLE = "Empathetic Bot"
PLOT_COLUMNS = ["turn", "emotion", "confidence"]
# One fixed colour per GoEmotions label, so an emotion keeps its colour as the plot grows.
_PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
            "#469990", "#800000", "#808000", "#000075", "#a9a9a9", "#bfef45")
COLOR_MAP = {label: _PALETTE[i % len(_PALETTE)] for i, label in enumerate(GOEMOTIONS_LABELS)}


def state_markdown(state: EmotionState) -> str:
    if not state.available:
        return f"**Emotion state**\n\n_{state.reason}_"
    if not state.top:
        return "**Emotion state**\n\n_No messages yet._"
    now = ", ".join(f"{label} {p:.0%}" for label, p in state.message_top())
    lines = ["**Emotion state**", "", f"This message: **{now}**" if now else "", "",
             "Over the conversation:", "", "| emotion | confidence | trend |", "|---|---|---|"]
    lines += [f"| {s.label} | {s.confidence:.0%} | {s.trend} |" for s in state.top]
    lines += ["", f"Valence: **{state.valence}** · intensity: **{state.intensity:.2f}** · turn {state.turn}"]
    return "\n".join(lines)


def state_label(state: EmotionState) -> dict[str, float] | None:
    if not state.available or not state.probabilities:
        return None
    return dict(list(state.probabilities.items())[:5])


def trajectory_frame(states: list[EmotionState], top_n: int = 4):
    """Long-format frame (turn, emotion, confidence) of the labels that were ever in the top ``top_n``."""
    import pandas as pd

    labels: list[str] = []
    for s in states:
        for score in s.top[:top_n]:
            if score.label not in labels:
                labels.append(score.label)
    rows = [(s.turn, label, s.probabilities.get(label, 0.0)) for s in states if s.available for label in labels]
    # explicit dtypes: an empty frame would otherwise be "object" and the plot's axes categorical
    return pd.DataFrame(rows, columns=PLOT_COLUMNS).astype({"turn": "int64", "emotion": "str", "confidence": "float64"})


def explanation_markdown(explanation: dict[str, list[tuple[str, float]]]) -> str:
    if not explanation:
        return "_No emotion to explain._"
    lines = ["**Why this reading** (words that moved each emotion most; removing the word changes the "
             "confidence by the amount shown)", ""]
    for label, words in explanation.items():
        shown = ", ".join(f"“{w}” {v:+.0%}" for w, v in words) or "no single word stands out"
        lines.append(f"- **{label}**: {shown}")
    return "\n".join(lines)


def trajectory_figure(states: list[EmotionState], top_n: int = 4):
    """A line per emotion (those ever in the top ``top_n``): running confidence against turn."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state shared between sessions

    frame = trajectory_frame(states, top_n)
    fig = Figure(figsize=(5, 2.8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for label, rows in frame.groupby("emotion", sort=False):
        ax.plot(rows["turn"], rows["confidence"], marker="o", label=label, color=COLOR_MAP.get(label))
    ax.set(xlabel="turn", ylabel="confidence", ylim=(0, 1), title="Emotion trajectory")
    if len(frame):
        turns = sorted(frame["turn"].unique())
        ax.set_xticks(turns)
        ax.legend(loc="upper left", fontsize="small", ncols=2, frameon=False)
    else:
        ax.text(0.5, 0.5, "no emotion readings yet", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.set_xticks([])
    ax.grid(alpha=0.3)
    return fig


def banner_update(bot, sid: str):
    """The crisis banner: visible with the category's resources while the session is at risk."""
    import gradio as gr

    risk = bot.risk(sid)
    if not risk or risk.get("level") != "alarm":  # a check-in asks first; the banner is for a crisis
        return gr.update(value="", visible=False)
    urgent = "**If you are in immediate danger, call your local emergency number now.**\n\n" \
        if risk.get("degree") == "imminent" else ""
    return gr.update(value=f"### You don't have to go through this alone\n\n{urgent}{bot.prompts.resources(risk['category'])}",
                     visible=True)


def candidates_markdown(reply) -> str:
    """The candidate replies of the last turn, the one shown first, with scores and problems found."""
    if reply is None:
        return "_No reply yet._"
    if not reply.candidates:
        return f"_{reply.reason or 'a written reply'}: no candidates were generated._"
    lines = [f"Shown: {reply.reason}", "", "| | candidate | from | fit | problems |", "|---|---|---|---|---|"]
    order = sorted(range(len(reply.candidates)), key=lambda i: (i != reply.chosen, i))
    for i in order:
        c = reply.candidates[i]
        text = c["text"].replace("|", "\\|").replace("\n", " ")
        fit = "" if c["score"] is None else f"{c['score']:.2f}"
        source = {"retrieved": "human reply (pool)", "opener": "written opener"}.get(c.get("source", "model"),
                                                                                  c.get("source", "model"))
        if c.get("opener") and c.get("source") != "opener":
            source += " after a written opener"
        lines.append(f"| {'shown' if i == reply.chosen else ''} | {text} | {source} | {fit} | "
                     f"{', '.join(c['problems']) or '-'} |")
    return "\n".join(lines)


def build_app(config: BotConfig | None = None, bot=None):
    """Build the Blocks app. ``bot`` may be passed in (tests, embedding); else it is loaded from ``config``."""
    import gradio as gr

    from .core import Reply

    load_error = None
    stops: dict[str, threading.Event] = {}  # per browser session: set by the Stop button
    last_replies: dict[str, Any] = {}  # per browser session: the last Reply, for the candidates panel
    if bot is None:
        try:
            from .core import EmpatheticBot

            bot = EmpatheticBot(config or BotConfig())
        except BotError as exc:
            load_error = str(exc)
            log.error("the bot could not start: %s", exc)

    def session_id(request: gr.Request) -> str:
        # Gradio fills ``request`` for every event because of the annotation; its session hash is
        # unique per browser tab, so each tab is its own conversation.
        if request is None or not getattr(request, "session_hash", None):
            raise BotError("this request has no browser session; reload the page")
        return request.session_hash

    def panel(sid: str):
        state = bot.emotion_state(sid)
        return (state_markdown(state), state_label(state), trajectory_figure(bot.trajectory(sid)),
                banner_update(bot, sid), candidates_markdown(last_replies.get(sid)))

    skips = (gr.skip(),) * 5

    def respond(message: str, request: gr.Request):
        sid = session_id(request)
        shown = bot.history(sid) + [{"role": "user", "content": message}, {"role": "assistant", "content": ""}]
        yield "", shown, *skips
        try:
            stop = stops[sid] = threading.Event()
            for item in bot.stream(message, session_id=sid, cancel=stop):
                if isinstance(item, Reply):
                    last_replies[sid] = item
                    yield ("", bot.history(sid), *panel(sid))
                else:
                    shown[-1]["content"] += item
                    yield "", shown, *skips
        except InvalidInputError as exc:
            gr.Warning(str(exc))
            yield message, bot.history(sid), *skips
        except BotError as exc:
            gr.Warning(f"Sorry, that turn failed: {exc}. Your conversation is unchanged; please try again.")
            yield message, bot.history(sid), *skips
        except Exception:  # noqa: BLE001 - the page gets a message, the log gets the details
            log.exception("unexpected failure in a UI turn")
            gr.Warning("Sorry, something went wrong with that turn. Your conversation is unchanged; please try again.")
            yield message, bot.history(sid), *skips

    def why(request: gr.Request):
        try:
            return explanation_markdown(bot.explain(session_id=session_id(request)))
        except BotError as exc:
            return f"_{exc}_"

    def stop(request: gr.Request):
        """Stop the reply being written; what was written so far is kept as the reply."""
        event = stops.get(session_id(request))
        if event is not None:
            event.set()

    def reset(request: gr.Request):
        sid = session_id(request)
        bot.reset(sid)
        last_replies.pop(sid, None)
        return ("", [], *panel(sid))

    def forget(request: gr.Request):
        sid = session_id(request)
        stops.pop(sid, None)
        last_replies.pop(sid, None)
        bot.reset(sid)

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\nTell me how you are doing. I notice how you feel and answer with care. "
                    "I am a small AI model, not a therapist; in an emergency contact local emergency services.")
        if load_error:
            gr.Markdown(f"### The bot could not start\n\n{load_error}", elem_id="load-error")
            return demo
        banner = gr.Markdown("", visible=False, elem_id="crisis-banner")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Conversation", elem_id="chatbot", height=460)
                box = gr.Textbox(placeholder="Type a message and press Enter", show_label=False, elem_id="message",
                                 max_length=bot.config.conversation.max_input_chars * 4)
                with gr.Row():
                    send = gr.Button("Send", variant="primary", elem_id="send")
                    halt = gr.Button("Stop", elem_id="stop")
                    clear = gr.Button("Delete my conversation", elem_id="reset")
            with gr.Column(scale=2):
                md = gr.Markdown(state_markdown(bot.emotion_state("")), elem_id="emotion-state")
                label = gr.Label(label="Top emotions", num_top_classes=5, elem_id="emotion-label")
                with gr.Accordion("Why this reading?", open=False):
                    explain_btn = gr.Button("Explain the last message", elem_id="explain", size="sm",
                                            interactive=bot.emotion_classifier is not None)
                    explanation = gr.Markdown(elem_id="explanation")
                plot = gr.Plot(trajectory_figure([]), label="Emotion trajectory", elem_id="trajectory", format="png")
                with gr.Accordion("Candidate replies", open=False):
                    runners = gr.Markdown(candidates_markdown(None), elem_id="candidates")
        outputs = [box, chatbot, md, label, plot, banner, runners]
        box.submit(respond, [box], outputs, api_name="respond")
        send.click(respond, [box], outputs, api_name=False)
        halt.click(stop, None, None, api_name="stop", queue=False)
        explain_btn.click(why, None, explanation, api_name="explain")
        clear.click(reset, None, outputs, api_name="reset")
        chatbot.clear(reset, None, outputs, api_name=False)  # the chat box's own trash button
        demo.unload(forget)
    return demo


def launch(config: BotConfig, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
           **kwargs: Any) -> None:
    demo = build_app(config)
    demo.queue(default_concurrency_limit=4).launch(server_name=host, server_port=port, share=share, **kwargs)
