"""The ML platform control plane: domain rules, use cases, adapters and the local runtime."""
