"""`sam local invoke` / `sam local start-api` on this machine, offline (issue 25; docs/DEPLOY.md "Run the functions
locally"): a Docker engine started without touching the host's network settings, a Lambda Python 3.12 base image
built from Debian and this machine's CPython, and stand-ins for the functions' AWS dependencies."""
