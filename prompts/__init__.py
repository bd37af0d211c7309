"""Prompt templates as data.

``system.md`` is the persona and system template (langchain-core f-string syntax: ``{name}``,
``{guidance}``, ``{emotion}``; write literal braces as ``{{`` and ``}}``). ``guidance/<key>.md`` holds
what to do for one emotion: the bot looks for the top emotion's own file first (``grief.md``), then
its Ekman group (``sadness.md``), then ``default.md``. ``unavailable.md`` is used when emotion
tracking is off. ``user.md`` (optional; default ``{input}``) is how each new message is shown to
the model: ``{state_tag} {input}`` puts the compact emotion state before it ("[feels: grief 60%;
intensity high; rising] My dog died"), and ``{state_tag}`` may be used in ``system.md`` too. Copy this folder, edit it and pass it as ``--prompts-dir`` to change the bot's voice.
"""
