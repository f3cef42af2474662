"""Atonix Gateway: the object engine (gateway.engine) and process assembly (server, cli)."""
