"""ASGI entry point for uvicorn: `uvicorn booking.asgi:app`."""

from booking.app import create_app

app = create_app()
