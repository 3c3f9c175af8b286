"""ASGI entry point for uvicorn workers: `casemgr.web.asgi:app`."""

from casemgr.web.app import create_app

app = create_app()
