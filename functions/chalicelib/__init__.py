"""Blueprints of the Chalice app: parse, call one use case, serialize."""
