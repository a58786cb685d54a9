"""mAP / Rank-1 of re-ID models, clean and under metric attacks on the query images.

Protocol (Table 12 of the paper): the model in eval mode; every query image is attacked (Linf,
[0, 1] pixels) with guides from the query set (the other query images of its identity; FNA also
pulls toward the mean query feature of the other identity furthest from it); the gallery stays
clean; retrieval and metrics by ``evaluate.rank`` (faiss, Market-1501 protocol).
"""
import json

import torch

from nat_tasks.core.checkpoint import atomic_write_text

from .attacks import attack_centres
from .evaluate import rank

ATTACK_NAMES = {"fna": "FNA", "sma": "SMA", "ifgsm": "IFGSM"}


@torch.no_grad()
def extract_features(embed, loader, device):
    """``(features on CPU, pids, camids)`` of a torchreid test loader, in loader order."""
    feats, pids, camids = [], [], []
    for data in loader:
        feats.append(embed(data["img"].to(device)).float().cpu())
        pids.append(data["pid"].reshape(-1))
        camids.append(data["camid"].reshape(-1))
    return torch.cat(feats), torch.cat(pids).numpy(), torch.cat(camids).numpy()


def attacked_query_features(net, query_loader, attack, guide_feats, guide_pids, device):
    """Features of every query image after ``attack`` (guides: the clean query features)."""
    guide_feats, guide_pids = guide_feats.to(device), torch.as_tensor(guide_pids, device=device)
    feats, start = [], 0
    for data in query_loader:
        x = data["img"].to(device)
        index = torch.arange(start, start + len(x), device=device)
        start += len(x)
        push, pull = attack_centres(attack.kind, guide_feats[index], guide_pids[index],
                                    guide_feats, guide_pids, self_index=index)
        x_adv = attack(net.embed, x, push, pull)
        with torch.no_grad():
            feats.append(net.embed(x_adv).float().cpu())
    return torch.cat(feats)


def _scores(cmc, mAP):
    return {"mAP": float(mAP), "rank1": float(cmc[0]),
            "cmc": {str(r): float(cmc[r - 1]) for r in (1, 5, 10) if r <= len(cmc)}}


def evaluate_robustness(net, query_loader, gallery_loader, attacks, device, log=print):
    """``{'clean': scores, '<kind>': {'<budget>': scores}}``; scores: mAP, rank1, cmc."""
    net.eval()
    qf, q_pids, q_camids = extract_features(net.embed, query_loader, device)
    gf, g_pids, g_camids = extract_features(net.embed, gallery_loader, device)
    results = {"clean": _scores(*rank(qf, gf, q_pids, g_pids, q_camids, g_camids))}
    log(f"clean: mAP {results['clean']['mAP']:.2%}  Rank-1 {results['clean']['rank1']:.2%}")
    for attack in attacks:
        adv = attacked_query_features(net, query_loader, attack, qf, q_pids, device)
        scores = _scores(*rank(adv, gf, q_pids, g_pids, q_camids, g_camids))
        results.setdefault(attack.kind, {})[attack.budget] = scores
        log(f"{ATTACK_NAMES[attack.kind]} {attack.budget}: mAP {scores['mAP']:.2%}  "
            f"Rank-1 {scores['rank1']:.2%}")
    return results


def markdown_table(rows, attacks):
    """Table 12's layout: one row per model, ``mAP/Rank-1`` in % per column."""
    columns = [("Clean", None)] + [(f"{ATTACK_NAMES[a.kind]} {a.budget}", a) for a in attacks]
    lines = ["| Defense | " + " | ".join(name for name, _ in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, results in rows:
        cells = []
        for _, attack in columns:
            s = results["clean"] if attack is None else results[attack.kind][attack.budget]
            cells.append(f"{100 * s['mAP']:.2f}/{100 * s['rank1']:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(rows, attacks, json_path, markdown_path, settings):
    """JSON (every number and the settings) and the Markdown table, both written atomically."""
    payload = {"settings": settings,
               "models": [{"name": name, "results": results} for name, results in rows]}
    atomic_write_text(json.dumps(payload, indent=2) + "\n", json_path)
    table = markdown_table(rows, attacks)
    atomic_write_text("mAP / Rank-1 (%), metric attacks on the query images "
                      f"(Linf, [0, 1] pixels, step {settings['step']}).\n\n" + table, markdown_path)
    return table

