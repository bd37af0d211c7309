"""Prompt templates as data.

``system.md`` is the persona and system template (langchain-core f-string syntax: ``{name}``,
``{guidance}``, ``{emotion}``; write literal braces as ``{{`` and ``}}``). ``guidance/<key>.md`` holds
what to do for one emotion: the bot looks for the top emotion's own file first (``grief.md``), then
its Ekman group (``sadness.md``), then ``default.md``. ``unavailable.md`` is used when emotion
tracking is off. Copy this folder, edit it and pass it as ``--prompts-dir`` to change the bot's voice.
"""
