"""`horovodrun`, without its build pre-check: how the local cluster launches a job's ranks.

`horovodrun --gloo` first checks that Horovod was built with Gloo by importing each framework's
extension in a forked process (`horovod.common.util.gloo_built`): for PyTorch that imports torch,
2 to 4 s on this host, before any rank starts, and every rank then imports torch again. The
Horovod the local cluster runs is built here with Gloo and without MPI (scripts/install_horovod.sh:
HOROVOD_WITH_GLOO=1, HOROVOD_CPU_OPERATIONS=gloo), so the check can only pass; a Horovod that
lacked Gloo would still fail, in `hvd.init()` of every rank, with Horovod's own message.
Everything else is horovodrun's own code (`horovod.runner.launch.run_commandline`).

    python -m control.local.horovod_launch -np 2 -H localhost:2 --gloo python train.py ...
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from horovod.runner import launch

    def built_with_gloo(verbose: bool = False) -> bool:
        return True

    launch.gloo_built = built_with_gloo
    sys.argv = ["horovodrun", *argv]
    launch.run_commandline()


if __name__ == "__main__":
    main(sys.argv[1:])
