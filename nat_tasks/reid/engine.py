"""torchreid's triplet engine with AMD (metric adversarial training) and the nasty term of NAT.

One step on an identity-sampled batch X (P identities x K images):

    vanilla:  L = w_x * CE_ls(X) + w_t * Triplet(X)
    AMD:      X' = metric attack on X (guides: the batch's images of each identity, weighted as
              at evaluation: the push sums over the K images of the identity, FNA's pull
              counts once; see ``attacks``), L = w_x * CE_ls(X u X') + w_t * Triplet(X u X')
    AMD&NAT:  L_AMD + NastyLoss(logits(X u X'), adversary_logits(X u X'))
              = L_AMD - w * tau^2 * mean KL(softmax(z_t / tau) || softmax(z_a / tau))

``CE_ls`` is torchreid's label-smoothed cross entropy, ``Triplet`` its batch-hard triplet loss;
the sums run over the clean batch *and* its adversarial copy (eq. 5 of the paper), the copy keeping
the identities, so the triplet loss also pulls each adversarial image to its identity.
The attack is crafted with the model in eval mode (BN statistics are not moved by attack steps;
torchreid models return their embedding there) and only touches the input's gradient.

``amp_dtype`` (``train.amp``, ``--amp``): the attack's and the training forward passes run under
``torch.autocast`` (the adversarial images, the weights and the optimizer stay float32); the losses
are computed in float32 from the upcast logits and embeddings (batch-hard triplet distances are
differences of large squared norms); float16 scales the loss (``GradScaler``), bfloat16 needs no
scaling.

Under a launcher (``distributed``) ``model`` is the DDP-wrapped network: the training forward goes
through DDP, attacks and evaluation use the network itself (``net``). The triplet loss and the
attack's guides see the global batch; rank 0 alone evaluates and writes checkpoints and logs.
"""
import os.path as osp

import torch
from mmengine.dist import get_dist_info, is_main_process
from torchreid.reid import metrics
from torchreid.reid.engine import ImageTripletEngine

from nat_tasks.core.checkpoint import atomic_save
from nat_tasks.core.errors import NatError, check_finite
from nat_tasks.runtime.preemption import (Preempted, Replayed, StopRequest, announce_stop, capture_rng,
                                          gather_per_process, own_share, restore_rng)

from .distributed import NoWriter, gather_batch
from .ranking import clean_ranking

LATEST = "latest.pth"


class AdversarialTripletEngine(ImageTripletEngine):
    """``ImageTripletEngine`` whose ``forward_backward`` adds AMD and NAT.

    - ``train_attack``: a ``MetricAttack`` of ``attacks.REGISTRY`` (AMD) or ``None`` (vanilla).
    - ``nasty`` / ``adversary``: core ``NastyLoss`` and a ``FrozenAdversary`` answering ID logits
      (NAT), or both ``None``.
    - ``model``: the ``ReidNet``, or it in DDP (``distributed.wrap_model``) under a launcher.
    - ``device``: where the batch, model and adversary live (torchreid itself only knows cuda:0).
    - ``meta``: written into every checkpoint (model name, identities, method, data).
    Checkpoints (ours, atomic, rank 0): ``latest.pth`` after every epoch (resumable: model,
    optimizer, scheduler, every process's RNG states) and ``epoch_N.pth`` whenever torchreid saves
    a model. SIGTERM / SIGINT (``runtime.preemption``, agreed across processes) end the run after
    the current iteration with ``latest.pth`` of that point (its position in the epoch and the
    epoch's starting random streams too, so ``resume`` replays the epoch's batches exactly).
    """

    def __init__(self, datamanager, model, optimizer, *, device, scheduler=None, margin=0.3,
                 weight_t=1.0, weight_x=1.0, label_smooth=True, train_attack=None, nasty=None,
                 adversary=None, save_dir=None, meta=None, amp_dtype=None):
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is not None:
            torch.cuda.set_device(self.device)  # torchreid's CE moves its targets with .cuda()
        super().__init__(datamanager, model, optimizer, margin=margin, weight_t=weight_t,
                         weight_x=weight_x, scheduler=scheduler,
                         use_gpu=self.device.type == "cuda", label_smooth=label_smooth)
        if (nasty is None) != (adversary is None):
            raise ValueError("NAT needs both the nasty loss and the adversary")
        self.train_attack, self.nasty, self.adversary = train_attack, nasty, adversary
        self.save_dir, self.meta = save_dir, dict(meta or {})
        self.amp_dtype = amp_dtype  # None: float32
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp_dtype == torch.float16)
        self.meta["processes"] = get_dist_info()[1]
        self.stop, self.position, self.epoch_start_rng, self.resume_state = None, 0, None, None
        if not is_main_process():
            self.writer = NoWriter()

    @property
    def net(self):
        """The ``ReidNet`` itself (``model`` may be it in DDP)."""
        return getattr(self.model, "module", self.model)

    # ---- training ------------------------------------------------------------------------------

    def forward_backward(self, data):
        imgs, pids = self.parse_data_for_train(data)
        imgs, pids = imgs.to(self.device), pids.to(self.device)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            if self.train_attack is not None:
                imgs = torch.cat([imgs, self.adversarial_examples(imgs, pids)])
                pids = pids.repeat(2)
            loss, summary = self.loss_terms(imgs, pids)
        check_finite(loss)
        self.optimizer.zero_grad()
        self.scaler.scale(loss).backward()  # without float16: loss.backward(), optimizer.step()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.position += 1
        self._stop_if_requested()
        return {name: float(value) for name, value in summary.items()}

    def loss_terms(self, imgs, pids):
        """Total loss and its logged terms (``loss_t``, ``loss_x`` unweighted as in torchreid;
        ``loss_nasty`` the term added, ``<= 0``). The batch-hard triplet loss mines the global
        batch (``distributed.gather_batch``)."""
        outputs, features = self.model(imgs)
        adversary_logits = self.adversary(imgs) if self.nasty is not None else None
        with torch.autocast(self.device.type, enabled=False):  # float32 losses under --amp
            outputs, features = outputs.float(), features.float()
            loss_t = self.compute_loss(self.criterion_t, gather_batch(features), gather_batch(pids))
            loss_x = self.compute_loss(self.criterion_x, outputs, pids)
            loss = self.weight_t * loss_t + self.weight_x * loss_x
            summary = {"loss_t": loss_t.detach(), "loss_x": loss_x.detach(),
                       "acc": metrics.accuracy(outputs, pids)[0]}
            if self.nasty is not None:
                loss_nasty = self.nasty(outputs, adversary_logits)
                loss = loss + loss_nasty
                summary["loss_nasty"] = loss_nasty.detach()
        summary["loss"] = loss.detach()
        return loss, summary

    def adversarial_examples(self, imgs, pids):
        """The AMD inner maximisation: the metric attack guided by the (global) batch's
        identities."""
        net = self.net
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad():
                clean = net.embed(imgs)
            first = get_dist_info()[0] * len(imgs)  # this process's rows in the global batch
            self_index = torch.arange(first, first + len(imgs), device=imgs.device)
            target = self.train_attack.target(clean, pids, gather_batch(clean), gather_batch(pids),
                                              self_index)
            return self.train_attack(net.embed, imgs, target)
        finally:
            net.train(was_training)

    def run(self, *args, **kwargs):
        with StopRequest() as self.stop:
            super().run(*args, **kwargs)

    def train(self, *args, **kwargs):
        self._stop_if_requested()  # a signal during the last evaluation: latest.pth is of this point
        state, self.resume_state = self.resume_state, None
        if state:
            restore_rng(state["epoch_start"])  # the sampler draws the epoch's order again
        self.epoch_start_rng, self.position = capture_rng(), 0
        sampler = self.train_loader.sampler
        if hasattr(sampler, "set_epoch"):  # distributed.IdentityBatchShards
            sampler.set_epoch(self.epoch)
        loader = self.train_loader
        if state:
            self.position = state["position"]
            self.train_loader = Replayed(loader, state["position"], state["now"])
        try:
            super().train(*args, **kwargs)
        finally:
            self.train_loader = loader
        self.position = 0
        if self.save_dir:
            self._save(self.epoch + 1, osp.join(self.save_dir, LATEST))

    def _stop_if_requested(self):
        if self.stop is None or not self.stop.should_stop():
            return
        latest = osp.join(self.save_dir, LATEST)
        where = f"after epoch {self.epoch}"
        if self.position:  # mid-epoch: save this point (else latest.pth already is)
            self._save(self.epoch, latest)
            where = f"in epoch {self.epoch + 1} after iteration {self.position} of {len(self.train_loader)}"
        announce_stop(self.stop.name, where, latest)
        raise Preempted()

    def test(self, *args, **kwargs):
        """torchreid's clean test, on rank 0 only (the others go on to the next collective)."""
        return super().test(*args, **kwargs) if is_main_process() else None

    def checkpoint(self, epochs_done):
        """What ``latest.pth`` holds; collective under a launcher (every process's RNG states)."""
        streams = dict(now=capture_rng(), epoch_start=self.epoch_start_rng if self.position else None)
        return {"state_dict": self.net.state_dict(), "epoch": epochs_done, "position": self.position,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "scaler": self.scaler.state_dict(), "rng_per_process": gather_per_process(streams),
                # BatchNorm statistics differ per process (the attack reads them outside DDP, which
                # only syncs them in its forward): each process takes its own back
                "buffers_per_process": gather_per_process({k: v.cpu() for k, v in self.net.named_buffers()}),
                "meta": self.meta}

    def _save(self, epochs_done, path):
        checkpoint = self.checkpoint(epochs_done)
        if is_main_process():
            atomic_save(checkpoint, path)

    def resume(self, checkpoint):
        """Continue from ``checkpoint()``: same weights, optimizer, schedule, random streams and
        position in the epoch (with as many processes as the run had: each takes its own streams
        back)."""
        processes = get_dist_info()[1]
        if checkpoint["meta"].get("processes", 1) != processes:
            raise NatError(f"this run was trained by {checkpoint['meta'].get('processes', 1)} "
                           f"process(es): resume it with as many (now {processes}), the global "
                           "batch and the random streams depend on it")
        self.net.load_state_dict(checkpoint["state_dict"])
        self.net.load_state_dict(own_share(checkpoint["buffers_per_process"]), strict=False)
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and checkpoint.get("scheduler"):
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        if checkpoint.get("scaler"):  # float16's loss scale; empty otherwise
            self.scaler.load_state_dict(checkpoint["scaler"])
        streams = own_share(checkpoint["rng_per_process"])
        if checkpoint["position"]:  # stopped mid-epoch: ``train`` replays the epoch up to there
            self.resume_state = dict(streams, position=checkpoint["position"])
        else:
            restore_rng(streams["now"])
        return checkpoint["epoch"]

    def save_model(self, epoch, rank1, save_dir, is_best=False):
        self._save(epoch + 1, osp.join(save_dir, f"epoch_{epoch + 1}.pth"))

    # ---- evaluation: ``ranking`` (torchreid's numbers, chunked) instead of its full matrix ------

    def _evaluate(self, dataset_name="", query_loader=None, gallery_loader=None,
                  ranks=(1, 5, 10), normalize_feature=False, **unused):
        cmc, mAP = clean_ranking(self.net.embed, query_loader, gallery_loader, self.device,
                                 ranks, normalize_feature)
        print(f"** Results ({dataset_name}) ** mAP: {mAP:.1%}  "
              + "  ".join(f"Rank-{r}: {cmc[r - 1]:.1%}" for r in ranks if r <= len(cmc)))
        return cmc[0], mAP
