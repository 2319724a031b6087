"""The demo: the whole loop on one machine (training, serving, the report), run by `make demo`."""
