"""``clearpos.console`` — the web console for the provider's staff.

Server-rendered pages (Starlette + Jinja2, served by uvicorn) over the same
store the host writes: dashboard, transactions with their diagnosis,
merchants / terminals / cards with their lifecycles, maintenance, tickets and
users. Every mutation goes through :mod:`clearpos.ops`, so the audit trail is
the same as the command line's.

Entry points: :func:`clearpos.console.app.start_console` (inside a running
event loop, used by ``clearpos host --console``), ``clearpos console`` (stand
alone) and :func:`clearpos.console.app.create_app` (tests).
"""
