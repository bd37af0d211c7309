"""The Gradio UI: one exchange through gradio_client, one in a real headless Chromium."""

import socket

import pytest

from bot import BotConfig, EmpatheticBot
from bot.ui import build_app, trajectory_frame
from conftest import chromium_path
from fakes import FakeReplyModel, KeywordClassifier


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(bot=None, config=None):
    demo = build_app(config, bot=bot)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


def texts(chat):
    out = []
    for m in chat:
        content = m["content"]
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        out.append((m["role"], content))
    return out


@pytest.fixture
def fake_app():
    bot = EmpatheticBot(BotConfig(), reply_model=FakeReplyModel(), emotion_classifier=KeywordClassifier())
    demo, url = launch(bot)
    yield bot, url
    demo.close()


def test_emotion_panel_and_trajectory_update(fake_app):
    from gradio_client import Client

    bot, url = fake_app
    client = Client(url, verbose=False)
    box, chat, md, label, plot, banner, runners = client.predict("I am so sad today", api_name="/respond")
    assert box == "" and texts(chat)[0] == ("user", "I am so sad today")
    assert "sadness" in md and "Valence: **negative**" in md
    assert label["label"] == "sadness"
    box, chat, md, label, plot, banner, runners = client.predict("and now I am angry", api_name="/respond")
    assert plot and plot.get("type") == "matplotlib" and plot.get("plot")  # a rendered figure came back
    assert len(texts(chat)) == 4
    frame = trajectory_frame(bot.trajectory(bot.sessions()[0]))
    assert set(frame["turn"]) == {1, 2} and "anger" in set(frame["emotion"])  # one point per turn


def test_the_crisis_banner_shows_the_resources_and_the_candidates_panel_explains_the_choice(fake_app):
    from gradio_client import Client

    bot, url = fake_app
    client = Client(url, verbose=False)
    def shown(update):  # a hidden component comes back as an update dict
        return update.get("value", "") if isinstance(update, dict) and update.get("visible", True) else (
            "" if isinstance(update, dict) else update or "")

    *_, banner, runners = client.predict("I am so sad about my exam", api_name="/respond")
    assert shown(banner) == "" and "Shown:" in runners
    *_, banner, runners = client.predict("I want to kill myself", api_name="/respond")
    assert "988" in shown(banner) and "written crisis opening" in runners


def test_why_this_reading_names_the_words(fake_app):
    from gradio_client import Client

    bot, url = fake_app
    client = Client(url, verbose=False)
    assert "no message to explain" in client.predict(api_name="/explain")
    client.predict("Today I feel so sad", api_name="/respond")
    md = client.predict(api_name="/explain")
    assert "**sadness**" in md and "“sad”" in md


def test_bad_input_in_the_ui_keeps_the_conversation(fake_app):
    from gradio_client import Client

    bot, url = fake_app
    client = Client(url, verbose=False)
    client.predict("hello", api_name="/respond")
    box, chat, *_ = client.predict("   ", api_name="/respond")
    assert len(texts(chat)) == 2
    box, chat, *_ = client.predict("x" * 20_000, api_name="/respond")
    assert len(texts(chat)) == 2 and len(box) == 20_000  # the text is handed back to edit, not lost


def test_each_browser_session_is_its_own_conversation(fake_app):
    from gradio_client import Client

    bot, url = fake_app
    a, b = Client(url, verbose=False), Client(url, verbose=False)
    a.predict("message from a", api_name="/respond")
    _, chat_b, *_ = b.predict("message from b", api_name="/respond")
    assert [t for _, t in texts(chat_b)][0] == "message from b" and len(texts(chat_b)) == 2
    _, chat_a, *_ = a.predict("/reset-free second", api_name="/respond")
    assert len(texts(chat_a)) == 4
    _, chat_a, *_ = a.predict(api_name="/reset")
    assert chat_a == []


def test_stop_button_keeps_the_partial_reply():
    import time

    from gradio_client import Client

    words = " ".join(f"w{i}" for i in range(200))
    # the rules alone read crisis language here: the learned detector asks about "tell me everything"
    bot = EmpatheticBot(BotConfig.from_dict({"model": {"emotion_classifier": None, "crisis_detector": None}}),
                        reply_model=FakeReplyModel([words], delay=0.02))
    demo, url = launch(bot)
    try:
        client = Client(url, verbose=False)
        job = client.submit("tell me everything", api_name="/respond")
        deadline = time.time() + 30
        while not bot.reply_model.prompts and time.time() < deadline:  # generation has started
            time.sleep(0.05)
        time.sleep(0.3)
        client.predict(api_name="/stop")
        job.result(timeout=60)
        stored = bot.history(bot.sessions()[0])
        assert len(stored) == 2
        kept = stored[1]["content"].split()
        assert 0 < len(kept) < 200 and kept == words.split()[: len(kept)]
    finally:
        demo.close()


def test_missing_model_shows_a_message_not_a_traceback(tmp_path):
    import urllib.request

    config = BotConfig()
    config.model.base_model = str(tmp_path / "missing-model")
    demo, url = launch(config=config)
    try:
        html = urllib.request.urlopen(url + "config").read().decode()
        assert "could not start" in html and "not found" in html and "Traceback" not in html
    finally:
        demo.close()


@pytest.mark.slow
def test_real_bot_one_exchange_with_gradio_client(real_bot):
    from gradio_client import Client

    demo, url = launch(real_bot)
    try:
        box, chat, md, label, plot, banner, runners = Client(url, verbose=False).predict(
            "I just moved to a new city and I don't know anyone.", api_name="/respond")
        roles = texts(chat)
        assert [r for r, _ in roles] == ["user", "assistant"] and roles[1][1].strip()
        assert "Valence: **" in md and label and label.get("label")
    finally:
        demo.close()


def _browser(tmp_path):
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = shutil.which("chromedriver")
    if chromium_path() is None or driver_path is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium_path()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=opts)


BOT_BUBBLES = "#chatbot .message.bot, #chatbot [data-testid='bot']"


def _send_and_wait(driver, bot, text, n_turns):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 120)
    box = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#message textarea")))
    box.send_keys(text)
    box.send_keys(Keys.ENTER)
    # the turn is complete in the bot, and the page shows the streamed reply with the input cleared
    wait.until(lambda d: any(len(bot.history(s)) == 2 * n_turns for s in bot.sessions()))
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#message textarea").get_attribute("value") == ""
               and len(d.find_elements(By.CSS_SELECTOR, BOT_BUBBLES)) >= n_turns
               and d.find_elements(By.CSS_SELECTOR, BOT_BUBBLES)[-1].text.strip())
    return driver.find_elements(By.CSS_SELECTOR, BOT_BUBBLES)[-1].text


@pytest.mark.slow
@pytest.mark.browser
def test_real_browser_exchange_with_screenshot(real_bot, artifacts_dir, tmp_path):
    from selenium.webdriver.common.by import By

    driver = _browser(tmp_path)
    demo, url = launch(real_bot)
    try:
        driver.get(url)
        reply = _send_and_wait(driver, real_bot, "I have been feeling really lonely since my sister moved abroad.", 1)
        assert reply.strip()
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(driver, 30).until(lambda d: "Valence" in d.find_element(By.ID, "emotion-state").text)
        driver.save_screenshot(str(artifacts_dir / "ui-chat.png"))
        assert (artifacts_dir / "ui-chat.png").stat().st_size > 10_000
    finally:
        driver.quit()
        demo.close()


@pytest.mark.browser
def test_browser_shows_the_emotion_panel_and_trajectory(artifacts_dir, tmp_path):
    """With a (stand-in) classifier, the panel and the plot change as the conversation goes on."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    bot = EmpatheticBot(BotConfig(), reply_model=FakeReplyModel(), emotion_classifier=KeywordClassifier())
    driver = _browser(tmp_path)
    demo, url = launch(bot)
    try:
        driver.get(url)
        _send_and_wait(driver, bot, "I am so sad, I lost my job", 1)
        panel = driver.find_element(By.ID, "emotion-state")
        WebDriverWait(driver, 30).until(lambda d: "sadness" in panel.text)
        _send_and_wait(driver, bot, "and now I am furious and angry", 2)
        WebDriverWait(driver, 30).until(lambda d: "anger" in panel.text and "rising" in panel.text)
        plot = driver.find_element(By.ID, "trajectory")
        driver.execute_script("arguments[0].scrollIntoView();", plot)
        WebDriverWait(driver, 30).until(lambda d: plot.find_elements(By.CSS_SELECTOR, "img"))
        driver.save_screenshot(str(artifacts_dir / "ui-emotion-panel.png"))
    finally:
        driver.quit()
        demo.close()
