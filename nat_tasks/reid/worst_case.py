"""The worst case per query over clean and the attacks of one budget: a column of the table.

Per query, every version (the clean image and each attacked one, the gallery clean) is ranked; the
worst case keeps the lowest AP and the latest first correct match, so a query is a Rank-k hit
only if it is one under every version. Worst-case mAP is the mean of the per-query minima: at or
below every single column's mAP, and re-sampled per query like the other columns.
"""
import numpy as np

from .ranking import Ranking

KIND = "worst"  # the results' key


class WorstCase:
    """The column over clean and ``attacks`` (the same budget)."""
    kind = KIND

    def __init__(self, attacks):
        self.attacks = tuple(attacks)
        self.budget = self.attacks[0].budget

    def describe(self):
        return f"Worst case {self.budget}"

    def _key(self):
        return self.budget, self.attacks

    def __eq__(self, other):
        return isinstance(other, WorstCase) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())


def worst_case_columns(attacks):
    """One ``WorstCase`` per budget of ``attacks``, in their order."""
    by_budget = {}
    for attack in attacks:
        by_budget.setdefault(attack.budget, []).append(attack)
    return [WorstCase(group) for group in by_budget.values()]


def worst_ranking(rankings):
    """The per-query worst case of ``Ranking``s of the same queries."""
    first = rankings[0]
    if any(not np.array_equal(r.query_index, first.query_index) for r in rankings):
        raise ValueError("a worst case needs the same ranked queries in every version")
    ap = np.min([r.ap for r in rankings], axis=0)
    first_hit = np.max([r.first_hit for r in rankings], axis=0)
    return Ranking.of_queries(first.query_index, ap, first_hit, len(first.cmc))
