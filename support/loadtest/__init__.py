"""`manage.py loadtest`: many chat WebSockets against a whole Alfred (ASGI server(s), Celery workers,
PostgreSQL, Redis) whose model is the scripted OpenAI-compatible server. See docs/performance.md.

- `model`: the scripted model, and the ledger of what it did for each turn (calls, scripted delays);
- `stack`: the isolated database and Redis database, the load-test users and sessions, the processes;
- `clients`: the WebSocket clients, the open-loop schedule, and the figures.
"""
