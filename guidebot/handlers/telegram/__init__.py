"""The Telegram channel: python-telegram-bot 22, by long polling (`guidebot telegram`) or by webhook
(`guidebot serve`).

- `config.py` — the token, Bot API server, staff ids and webhook settings, checked at start; log masking;
- `bot.py` — the handlers, `build_application` and the one handler registration list;
- `render.py` — a dialog `Reply` as HTML text and inline buttons, split at 4,096 characters;
- `webhook.py` — the starlette route and lifespan `guidebot serve` mounts;
- `sender.py` — `TelegramSender`, the outbox's sender within Telegram's rate limits;
- `ratings.py` — 好差评 buttons under a case's final notice, and what a press of one does;
- `shared.py` — update ids and /broadcast drafts kept in the store, shared by every process of the bot;
- `cli.py` — the `guidebot telegram` command.
"""
