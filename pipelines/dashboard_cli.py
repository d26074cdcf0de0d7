"""`qst dashboard`: serve the 全视通 decision dashboard over the marts file of a home folder.

Thin: it resolves the home folder, builds the app (:func:`dashboard.app.create_app`) and serves it.
The server is uvicorn (already installed with the Dagster webserver) running the Flask app through its WSGI
interface with worker threads, so several duty officers can use it at once; when uvicorn is missing, Flask's
own threaded server (fine for one user, not a production server). ``--debug`` uses Flask's server with Dash's
dev tools and hot reload. The marts file is opened read-only and reopened when the nightly build replaces it:
no restart is needed after a night.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import click


@click.command("dashboard")
@click.option(
    "--home",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Home folder holding marts.duckdb (default: $QST_HOME or ./data).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 to serve the city network).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8050, show_default=True)
@click.option("--debug", is_flag=True, help="Dash dev tools and hot reload (Flask's development server).")
def dashboard(home: Path | None, host: str, port: int, debug: bool) -> None:
    """Serve the 全视通 decision dashboard (read-only on HOME/marts.duckdb) and print its URL."""
    from dashboard.app import create_app
    from dashboard.data import MARTS_FILE
    from pipelines.home import quanshitong_home

    home = (home or quanshitong_home()).resolve()
    if not (home / MARTS_FILE).is_file():
        click.echo(
            f"注意 / note: {home / MARTS_FILE} does not exist yet; the pages will say so until the marts "
            "are built.",
            err=True,
        )
    app = create_app(home)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/"
    click.echo(f"全视通 dashboard: open {url} in a browser (marts: {home / MARTS_FILE}); Ctrl+C to stop.")
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    try:
        import uvicorn
    except ImportError:
        click.echo("uvicorn is not installed: serving with Flask's development server.", err=True)
        app.run(host=host, port=port, debug=False, threaded=True)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # uvicorn's WSGI interface is marked deprecated
        uvicorn.run(app.server, host=host, port=port, interface="wsgi", log_level="warning")


main = dashboard

if __name__ == "__main__":
    dashboard()
