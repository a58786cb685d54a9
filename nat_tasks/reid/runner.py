"""Training and evaluation runs behind ``tools/train_reid.py`` (options: see ``cli.py``).

A run lives in a work dir: ``latest.pth`` (resumable, every epoch), ``epoch_N.pth`` (final
weights), torchreid's TensorBoard scalars (``loss_x``, ``loss_t``, ``loss_nasty``, ``acc``).
NAT without ``--adversary`` trains the vanilla counterpart in ``<work-dir>/adversary_vanilla``
first, or reuses it when it is complete.
"""
import copy
import os
import os.path as osp
import random

import numpy as np
import torch

from nat_tasks.core.checkpoint import safe_load
from nat_tasks.core.errors import NatError
from nat_tasks.core.nasty import NastyLoss

from .attacks import ATTACKS, MetricAttack
from .checklist import checklist_attacks, run_checks
from .data import INPUT_SIZE, build_datamanager
from .engine import LATEST, AdversarialTripletEngine
from .evaluate import chance_scores
from .model import build_reid_model, load_adversary, load_checkpoint_model, read_checkpoint
from .robustness import evaluate_robustness, write_report

METHODS = {"vanilla": "None", "amd": "AMD", "amd_nat": "AMD&NAT"}  # Table 12's row names


def method_of(opts):
    return "vanilla" if opts.no_amd else ("amd_nat" if opts.nat else "amd")


def default_work_dir(opts, method):
    return osp.join("work_dirs", "reid", f"{opts.dataset}_{opts.model}_{method}")


def _seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _datamanager(opts):
    return build_datamanager(opts.root, opts.dataset, height=opts.height, width=opts.width,
                             batch_size=opts.batch_size, num_instances=opts.num_instances,
                             workers=opts.workers, use_gpu=torch.device(opts.device).type == "cuda")


def train(opts, log=print):
    """Train one model (vanilla, AMD or AMD&NAT per ``opts``); return its final checkpoint path."""
    if opts.nat and opts.no_amd:
        raise NatError("--nat adds the nasty term to AMD; it cannot be combined with --no-amd")
    method = method_of(opts)
    work_dir = opts.work_dir or default_work_dir(opts, method)
    latest = osp.join(work_dir, LATEST)
    if osp.isfile(latest) and not opts.resume:
        raise NatError(f"{work_dir} already holds a run (latest.pth at epoch "
                       f"{safe_load(latest)['epoch']}): pass --resume to continue it or choose another "
                       "--work-dir")
    if opts.resume and not osp.isfile(latest):
        raise NatError(f"nothing to resume: {latest} does not exist")
    adversary_path = _adversary_checkpoint(opts, work_dir, log) if method == "amd_nat" else None

    _seed_everything(opts.seed)
    engine = _build_engine(opts, method, work_dir, adversary_path)
    start = 0
    if opts.resume:
        checkpoint = safe_load(latest)
        same_run = ("model", "method", "dataset")
        if any(checkpoint["meta"].get(k) != engine.meta[k] for k in same_run):
            raise NatError(f"{latest} is a {checkpoint['meta']['method']} run of "
                           f"{checkpoint['meta']['model']} on {checkpoint['meta']['dataset']}; "
                           "resume it with the same --model/--dataset/method options")
        start = engine.resume(checkpoint)
        log(f"resuming {work_dir} after epoch {start}")
    final = osp.join(work_dir, f"epoch_{opts.epochs}.pth")
    if start >= opts.epochs:
        log(f"{work_dir} already finished {start} epochs")
        return final if osp.isfile(final) else latest
    log(f"training {METHODS[method]} ({opts.model}, {engine.meta['num_classes']} identities) "
        f"in {work_dir}")
    engine.run(save_dir=work_dir, max_epoch=opts.epochs, start_epoch=start,
               print_freq=opts.print_freq, eval_freq=opts.eval_freq, ranks=[1, 5, 10])
    return final


def _build_engine(opts, method, work_dir, adversary_path):
    from torchreid.reid import optim

    datamanager = _datamanager(opts)
    num_classes = datamanager.num_train_pids
    device = torch.device(opts.device)
    model = build_reid_model(opts.model, num_classes, opts.pretrained).to(device)
    optimizer = optim.build_optimizer(model, optim="adam", lr=opts.lr)
    scheduler = optim.build_lr_scheduler(optimizer, lr_scheduler="single_step",
                                         stepsize=opts.stepsize)
    train_attack = None if method == "vanilla" else MetricAttack(
        opts.train_attack, opts.train_eps, opts.train_step, opts.train_steps)
    nasty = adversary = None
    if method == "amd_nat":
        nasty = NastyLoss(opts.nasty_weight, opts.nasty_tau)
        adversary = load_adversary(adversary_path, opts.adversary_model or opts.model,
                                   num_classes, opts.adversary_precision).to(device)
    meta = {"model": opts.model, "num_classes": num_classes, "method": method,
            "dataset": opts.dataset, "height": opts.height, "width": opts.width,
            "train_attack": vars(train_attack) if train_attack else None,
            "nasty": {"weight": nasty.weight, "tau": nasty.tau, "scale_by_tau2": nasty.scale_by_tau2,
                      "adversary": adversary_path, "adversary_precision": adversary.precision}
            if nasty else None}
    return AdversarialTripletEngine(datamanager, model, optimizer, device=device,
                                    scheduler=scheduler, margin=opts.margin,
                                    train_attack=train_attack, nasty=nasty, adversary=adversary,
                                    save_dir=work_dir, meta=meta)


def _adversary_checkpoint(opts, work_dir, log):
    if opts.adversary:
        if not osp.isfile(opts.adversary):
            raise NatError(f"adversary checkpoint not found: {opts.adversary}")
        return opts.adversary
    vanilla = copy.copy(opts)
    vanilla.nat, vanilla.no_amd, vanilla.adversary = False, True, None
    vanilla.work_dir = osp.join(work_dir, "adversary_vanilla")
    latest = osp.join(vanilla.work_dir, LATEST)
    done = osp.isfile(latest) and safe_load(latest)["epoch"] >= opts.epochs
    vanilla.resume = osp.isfile(latest)
    final = osp.join(vanilla.work_dir, f"epoch_{opts.epochs}.pth")
    if done and osp.isfile(final):
        log(f"no --adversary given: reusing the vanilla counterpart {final}")
        return final
    log(f"no --adversary given: training the vanilla counterpart in {vanilla.work_dir} first")
    return train(vanilla, log)


def _attacks(opts):
    kinds = list(ATTACKS) if "all" in opts.attack else [k for k in opts.attack if k != "none"]
    return [MetricAttack(kind, eps, opts.attack_step, opts.attack_steps)
            for kind in kinds for eps in opts.attack_eps]


def evaluate(opts, log=print):
    """Clean and attacked mAP / Rank-1 of every ``--weights`` checkpoint with n and 95 %
    intervals, paired differences of consecutive rows and, with ``--checklist``, the
    gradient-masking checks: JSON + Markdown."""
    if not opts.weights:
        raise NatError("--eval-only needs --weights CKPT [CKPT ...]")
    attacks = _attacks(opts)
    kinds = list(dict.fromkeys(a.kind for a in attacks))
    if opts.checklist and not kinds:
        raise NatError("--checklist checks attacks: pass --attack all (or fna / sma / ifgsm)")
    extra = checklist_attacks(kinds, opts.attack_eps[0], opts.attack_step, opts.attack_steps) \
        if opts.checklist else []
    run = list(dict.fromkeys(attacks + extra))  # the table's attacks, then the checks' others
    if opts.height is None or opts.width is None:  # evaluate at the size the model was trained
        meta = read_checkpoint(opts.weights[0])[1]
        opts = copy.copy(opts)
        opts.height = opts.height or meta.get("height", INPUT_SIZE[0])
        opts.width = opts.width or meta.get("width", INPUT_SIZE[1])
    _seed_everything(opts.seed)
    datamanager = _datamanager(opts)
    device = torch.device(opts.device)
    test = datamanager.test_loader[opts.dataset]
    (q_pids, q_camids), (g_pids, g_camids) = _labels(test["query"]), _labels(test["gallery"])
    chance_map, chance_rank1 = chance_scores(q_pids, g_pids, q_camids, g_camids)
    rows, checks = [], []
    for path in opts.weights:
        net, meta = load_checkpoint_model(path, opts.model)
        net = net.to(device)
        name = METHODS.get(meta.get("method"), osp.splitext(osp.basename(path))[0])
        log(f"evaluating {name}: {path}")
        results, rankings = evaluate_robustness(net, test["query"], test["gallery"], run, device, log)
        rows.append((name, results, rankings))
        checks.append(run_checks(results, run, chance_map, kinds, opts.attack_steps)
                      if opts.checklist else None)
    out = opts.out or osp.join(opts.work_dir or osp.dirname(osp.abspath(opts.weights[0])),
                               "robustness")
    settings = {"dataset": opts.dataset, "root": opts.root, "weights": list(opts.weights),
                "attacks": [vars(a) | {"budget": a.budget} for a in attacks],
                "checklist_attacks": [vars(a) | {"budget": a.budget} for a in extra],
                "step": f"{opts.attack_step * 255:g}/255", "guides": "query set",
                "protocol": "Market-1501 (same-identity same-camera gallery removed), faiss",
                "chance": {"mAP": chance_map, "rank1": chance_rank1}}
    table = write_report(rows, attacks, out + ".json", out + ".md", settings, checks)
    log(table + f"written: {out}.json, {out}.md")
    return rows


def _labels(loader):
    """``(pids, camids)`` of a torchreid test loader, in loader order."""
    data = loader.dataset.data
    return [item[1] for item in data], [item[2] for item in data]


def demo(opts, log=print):
    """The embedded flow: vanilla, AMD and AMD&NAT on the generated Market tree, then Table 12."""
    base = opts.work_dir or osp.join("work_dirs", "reid", "demo")
    paths = {}
    for method in ("vanilla", "amd", "amd_nat"):
        run = copy.copy(opts)
        run.no_amd, run.nat = method == "vanilla", method == "amd_nat"
        run.adversary = paths.get("vanilla")
        run.work_dir = osp.join(base, method)
        run.resume = osp.isfile(osp.join(run.work_dir, LATEST))
        paths[method] = train(run, log)
    run = copy.copy(opts)
    run.weights, run.out = list(paths.values()), osp.join(base, "robustness")
    os.makedirs(base, exist_ok=True)
    return evaluate(run, log)
