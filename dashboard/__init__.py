"""The 全视通 decision dashboard: a Dash app over the marts file (``HOME/marts.duckdb``), read-only.

Where things live, so a change lands in one place:

- :mod:`dashboard.queries` -- every SQL the dashboard runs, by name (the marts contract's first);
- :mod:`dashboard.data` -- :class:`~dashboard.data.Marts`, the read-only connection that follows the nightly
  file swap and runs a named query, and :class:`~dashboard.data.ScopedMarts`, the same bound to one user's
  scope (what the pages get); the only module that touches DuckDB;
- :mod:`dashboard.pages` -- one module per page: layout and callbacks, asking ``Marts`` for named queries;
- :mod:`dashboard.ui` -- the shared look (cards, tables, figures, Chinese labels and number formats);
- :mod:`dashboard.app` -- :func:`~dashboard.app.create_app`, the shell and the router;
- :mod:`dashboard.security` -- sign-in, sessions, CSRF and the security headers of every request;
- :mod:`dashboard.auth` -- users, roles and districts granted (the users file), password hashing, lock-out;
- :mod:`dashboard.audit` -- the append-only, hash-chained audit log of views, searches and exports;
- :mod:`dashboard.exports` -- 导出 Excel of a page's table, run again under the user's scope;
- :mod:`dashboard.browser` -- headless Chromium against a served app, for the tests and the benchmark.

The command that serves it is ``qst dashboard`` (pipelines/dashboard_cli.py), a separate package because
``pipelines/`` holds the Dagster wiring and the CLI, not the app.
"""
