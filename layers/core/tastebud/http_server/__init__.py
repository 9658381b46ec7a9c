"""The local HTTP server: gunicorn master + uvicorn workers around the Lambda handler (see prefork.py)."""
