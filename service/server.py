"""``mirrorline serve``: run the API under uvicorn (one process; analyses in worker processes)."""

from __future__ import annotations

from service.settings import get_settings


def run(*, host: str | None = None, port: int | None = None) -> None:
    """Serve ``service.app:app``; host and port default to MIRRORLINE_HOST / MIRRORLINE_PORT."""
    import uvicorn

    from service import logs

    settings = get_settings()
    # One server per data directory, checked before anything else happens (recovery, or
    # binding a port that may turn out to be taken): raises DataDirInUse.
    from service import datadir

    datadir.acquire(settings.data_dir)
    logs.configure(settings.log_level)
    from service.app import app

    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=30,
        server_header=False,
    )
