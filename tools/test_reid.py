"""Evaluate re-ID checkpoints clean, under metric attacks and the NAT-adaptive attack, and in the
worst case per query (the paper's Table 12 layout).

    python tools/test_reid.py CONFIG CKPT [CKPT ...] [--attack all] [--attack-eps 8/255 10/255]
        [--attack-steps 16] [--attack-step 1/255] [--checklist [--transfer-from CKPT]] [--out PATH]
        [--resume]
    torchrun --nproc_per_node N tools/test_reid.py CONFIG CKPT ... --launcher pytorch   # shared

Computed features go to <out>.state/ as the run goes; SIGTERM / Ctrl-C stop it after the current
query batch (exit status 75), and --resume continues it with the numbers of one run. Under torchrun the processes share the
query batches and process 0 writes the report: again the numbers of one run.

See ``python tools/test_reid.py --help`` and nat_tasks/reid/cli.py.
"""
from nat_tasks.runtime.tool import quiet_warnings, require_stage

require_stage("reid")  # one line naming the set-up command, before torchreid is imported

from nat_tasks.runtime import tool_main  # noqa: E402


def build_parser():
    """The command line (nat_tasks/reid/cli.py's ``test_parser``)."""
    quiet_warnings()  # torchreid's notice at import
    from nat_tasks.reid.cli import test_parser  # imports torchreid: only when asked

    return test_parser()


@tool_main
def main(argv=None):
    from nat_tasks.reid.cli import test_main  # after tool_main's set-up, which quiets torchreid

    return test_main(argv)


if __name__ == "__main__":
    main()
