"""Offline evaluation of the chat: `manage.py evaluate DATASET.yaml` (format: ../shared/DATASET.md).

- `dataset`: load and validate a dataset file into plain data (errors name the field);
- `environment`: the isolated evaluation database and the platform API served on a real HTTP port;
- `world`: empty the tables and build a dataset's world, exactly as written, before each case;
- `play`: play one case through the same path a chat message takes;
- `scoring`: score a played case against its expectations, and summarise a run.
"""
