"""Serving the engine on Ray (engine.backend: ray); see docs/SCALING.md.

- `wire`: what travels between front end and replicas (plain data; no Ray import);
- `cluster`: joining the Ray cluster, deploying the engine application, finding its replicas;
- `replica`: the Serve deployment class (today's engine, whole, inside each replica).
The client with the engine's interface is `hub.remote.RemoteEngine`. Only `get_engine` imports these
modules, and only for `backend: ray`: with the local backend Ray is never imported.
"""
