"""Pure domain rules: no AWS, no Kubernetes, no I/O. Time is passed in."""
