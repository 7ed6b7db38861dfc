"""The clinic service: the HTTP API over `pathway.Clinic` (`pathway serve`).

`create_app(clinic)` gives the ASGI application (see `app.py`); `server.serve` runs it
under uvicorn. Layered on top of the Clinic facade: nothing below imports it.
"""
