"""The dashboard's pages: each module has ``PAGE_ID``, ``PATH``, ``TITLE``, ``layout(marts, query)`` and
``register(app, marts)`` (its callbacks; most pages have none)."""
