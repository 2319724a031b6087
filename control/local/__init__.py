"""The embedded platform: the same control plane on one machine, no cloud, no cluster."""
