"""A training run from a config (torchreid's ``scripts/main.py`` shape): data manager, model,
optimizer, scheduler, engine, ``engine.run``.

A run lives in ``cfg.work_dir``: ``latest.pth`` (resumable, every epoch), ``epoch_N.pth`` (final
weights), torchreid's TensorBoard scalars (``loss_x``, ``loss_t``, ``loss_nasty``, ``acc``).
An AMD&NAT config whose adversary has no checkpoint trains the vanilla counterpart first
(``adversary.counterpart_config``), or reuses it when it is complete.
``launcher='pytorch'`` (under torchrun): every process trains in DDP on its share of the global
batch (``distributed``); rank 0 writes the files and prints.
"""
import os.path as osp

import torch

from mmengine.dist import is_main_process

from nat_tasks.core.checkpoint import remove_temporaries, safe_load
from nat_tasks.core.errors import NatError
from nat_tasks.runtime import console, seed_everything
from nat_tasks.runtime.amp import amp_dtype
from nat_tasks.runtime.distributed import check_launch, process_group
from nat_tasks.runtime.faults import training_faults

from .adversary import build_nat_adversary, counterpart_config, nasty_spec, needs_counterpart
from .attacks import REGISTRY
from .config import METHODS, method_of
from .data import build_datamanager, check_dataset
from .distributed import process_device, quiet_unless_main, shard_train_loader, wrap_model
from .engine import LATEST, AdversarialTripletEngine
from .model import build_reid_model


def train(cfg):
    """Train the config's model (vanilla, AMD or AMD&NAT), in one process or under
    ``cfg.launcher``; return its final checkpoint path."""
    launcher = cfg.get("launcher", "none")
    check_launch(launcher, cfg.device)
    with process_group(launcher), quiet_unless_main(), training_faults(cfg.work_dir):  # a full disk, a dead peer
        return _train(cfg)


def _train(cfg):
    method = method_of(cfg)
    work_dir, epochs = cfg.work_dir, cfg.train.max_epoch
    if epochs < 1:
        raise NatError(f"--epochs must be at least 1, got {epochs}")
    latest = osp.join(work_dir, LATEST)
    if osp.isfile(latest) and not cfg.resume:
        raise NatError(f"{work_dir} already holds a run (latest.pth at epoch "
                       f"{safe_load(latest)['epoch']}): pass --resume to continue it or choose another "
                       "--work-dir")
    if cfg.resume and not osp.isfile(latest):
        raise NatError(f"nothing to resume: {latest} does not exist")
    spec = None
    if method == "amd_nat":
        spec = nasty_spec(cfg, _counterpart(cfg) if needs_counterpart(cfg) else None)

    check_dataset(cfg.data.root, cfg.data.sources)  # a wrong tree is one line before the work dir exists
    if is_main_process():
        remove_temporaries(work_dir)  # unfinished writes of a killed run
    seed_everything(cfg.seed)
    log = osp.join(work_dir, "train.log")  # torchreid's prints: its data summary, a line per print_freq iterations
    with console.library_output(log):
        engine = build_engine(cfg, method, spec)
    start = 0
    if cfg.resume:
        checkpoint = safe_load(latest)
        same_run = ("model", "method", "dataset")
        if any(checkpoint["meta"].get(k) != engine.meta[k] for k in same_run):
            raise NatError(f"{latest} is a {checkpoint['meta']['method']} run of "
                           f"{checkpoint['meta']['model']} on {checkpoint['meta']['dataset']}; "
                           "resume it with the same --model/--dataset/method options")
        start = engine.resume(checkpoint)
        within = f" and {checkpoint['position']} iterations of the next" if checkpoint["position"] else ""
        print(f"resuming {work_dir} after epoch {start}{within}")
    final = final_checkpoint(cfg)
    if start >= epochs:
        print(f"{work_dir} already finished {start} epochs")
        return final if osp.isfile(final) else latest
    print(f"training {METHODS[method]} ({cfg.model.name}, {engine.meta['num_classes']} identities)\n"
          f"  device: {engine.device} | work dir: {work_dir} | log: {log}")
    with console.library_output(log):
        engine.run(save_dir=work_dir, max_epoch=epochs, start_epoch=start,
                   print_freq=cfg.train.print_freq, eval_freq=cfg.test.eval_freq,
                   ranks=list(cfg.test.ranks))
    return final


def final_checkpoint(cfg):
    return osp.join(cfg.work_dir, f"epoch_{cfg.train.max_epoch}.pth")


def build_engine(cfg, method, spec=None):
    """The ``AdversarialTripletEngine`` of a config; ``spec``: the ``NastySpec`` of AMD&NAT."""
    from torchreid.reid import optim

    device = process_device(cfg)
    launched = cfg.get("launcher", "none") != "none"
    amp = amp_dtype(device.type, cfg.train.get("amp_dtype")) if cfg.train.get("amp") else None
    datamanager = build_datamanager(cfg, use_gpu=device.type == "cuda")
    num_classes = datamanager.num_train_pids
    model = build_reid_model(cfg.model.name, num_classes, cfg.model.pretrained).to(device)
    optimizer = optim.build_optimizer(model, **cfg.optimizer)
    if launched:
        datamanager.train_loader = shard_train_loader(datamanager.train_loader, cfg)
        model = wrap_model(model, cfg, device)
    scheduler = optim.build_lr_scheduler(optimizer, **cfg.lr_scheduler)
    train_attack = None
    if method != "vanilla":
        settings = dict(cfg.model.train_attack)
        train_attack = REGISTRY.build(settings.pop("type"), **settings)
        if train_attack.adaptive:
            raise NatError(f"model.train_attack: AMD's inner attack is a metric attack, not "
                           f"{train_attack.kind}")
    # After the target: building the adversary draws from torch's random stream too.
    adversary = build_nat_adversary(spec, num_classes).to(device) if spec else None
    meta = {"model": cfg.model.name, "num_classes": num_classes, "method": method,
            "dataset": cfg.data.sources, "height": cfg.data.height, "width": cfg.data.width,
            "train_attack": train_attack.settings() if train_attack else None,
            "nasty": spec.describe() if spec else None}
    loss = cfg.loss
    return AdversarialTripletEngine(
        datamanager, model, optimizer, device=device, scheduler=scheduler,
        margin=loss.triplet.margin, weight_t=loss.triplet.weight_t, weight_x=loss.triplet.weight_x,
        label_smooth=loss.softmax.label_smooth, train_attack=train_attack,
        nasty=spec.loss() if spec else None, adversary=adversary, save_dir=cfg.work_dir, meta=meta,
        amp_dtype=getattr(torch, amp) if amp else None)


def _counterpart(cfg):
    """The vanilla counterpart's final checkpoint: reused when complete, else trained now."""
    vanilla = counterpart_config(cfg)
    latest, final = osp.join(vanilla.work_dir, LATEST), final_checkpoint(vanilla)
    if osp.isfile(latest) and safe_load(latest)["epoch"] >= vanilla.train.max_epoch \
            and osp.isfile(final):
        print(f"no adversary checkpoint given: reusing the vanilla counterpart {final}")
        return final
    print(f"no adversary checkpoint given: training the vanilla counterpart in {vanilla.work_dir} "
          "first")
    return _train(vanilla)
