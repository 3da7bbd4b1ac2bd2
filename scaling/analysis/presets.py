"""Published batch-size laws, shipped as small registered objects.

Each preset names its source, which batch size it predicts (``quantity``: the Definition-1 CBS,
McCandlish's B_crit, or the loss-optimal B_opt), its input variable, its output unit and the
range of the data it was fitted on (its domain); ``scaling predict --law NAME`` reports how far
a query lies outside it. None of them was published with an interval, so predictions from
presets carry none. A published law whose constants could not be checked against the paper
itself is not shipped: ``NOT_SHIPPED`` names it and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from scaling.errors import ScalingError

FLOPS_PER_PARAM_TOKEN = 6.0  # C = 6 N D (Kaplan et al. 2020, eq. 2.1): forward + backward


@dataclass(frozen=True)
class Preset:
    name: str
    source: str
    formula: str
    variable: str            # "params", "loss" or "compute"
    variable_unit: str
    output_unit: str         # "sequences" or "tokens"
    seq_len: Optional[int]   # tokens per sequence the law's batch is counted in (sequence laws)
    domain: tuple            # (lo, hi) of ``variable`` over the data the law was fitted on
    domain_note: str
    definition: str          # which batch size the law predicts
    fn: Callable[[float], float]
    quantity: str = "cbs"    # "cbs" (Definition 1), "b_crit" (McCandlish's B_noise) or "b_opt" (loss-optimal)

    def describe(self) -> dict:
        return {k: getattr(self, k) for k in ("name", "source", "formula", "quantity", "variable", "variable_unit",
                                              "output_unit", "seq_len", "domain", "domain_note", "definition")}


ZHANG_C, ZHANG_A, ZHANG_SCALE, ZHANG_SEQ = 93.20, 0.47, 1e6, 512
KAPLAN_B_STAR, KAPLAN_ALPHA_B = 2.1e8, 0.21
DEEPSEEK_C, DEEPSEEK_A = 0.2920, 0.3271

PRESETS = {p.name: p for p in (
    Preset(
        name="zhang2024-chinchilla",
        source="Zhang et al. 2024, How Does Critical Batch Size Scale in Pre-training? (arXiv:2410.21676), "
               "Chinchilla-optimal setting",
        formula="B* = 93.20 * (N / 1e6)^0.47 sequences of 512 tokens",
        variable="params", variable_unit="parameters", output_unit="sequences", seq_len=ZHANG_SEQ,
        domain=(85e6, 1.2e9), domain_note="OLMo-style models 85M-1.2B on C4, ~20 tokens per parameter",
        definition="Zhang et al. 2024 Definition 1 (20% overhead over linear scaling)",
        fn=lambda n: ZHANG_C * (n / ZHANG_SCALE) ** ZHANG_A),
    Preset(
        name="kaplan2020",
        source="Kaplan et al. 2020, Scaling Laws for Neural Language Models (arXiv:2001.08361), eq. 5.1",
        formula="B_crit(L) = 2.1e8 / L^(1/0.21) tokens, L in nats",
        variable="loss", variable_unit="nats", output_unit="tokens", seq_len=None,
        domain=(2.0, 6.0), domain_note="approximate range of WebText2 losses in Kaplan et al. Fig. 10 "
                                       "(models up to 1.5B parameters)",
        definition="McCandlish et al. 2018 B_crit = B_noise (twice S_min), not Definition 1",
        fn=lambda loss: KAPLAN_B_STAR / loss ** (1.0 / KAPLAN_ALPHA_B), quantity="b_crit"),
    Preset(
        name="deepseek2024",
        source="DeepSeek-AI 2024, DeepSeek LLM: Scaling Open-Source Language Models with Longtermism "
               "(arXiv:2401.02954), Sec. 3.1",
        formula="B_opt = 0.2920 * C^0.3271 tokens, C in FLOPs",
        variable="compute", variable_unit="FLOPs", output_unit="tokens", seq_len=None,
        domain=(1e17, 3e20), domain_note="their small-scale compute budgets (approximate); the paper "
                                         "counts C = M D with M non-embedding FLOPs per token, which "
                                         "6 N D only approximates",
        definition="loss-optimal batch size (near-optimal region), not Definition 1",
        fn=lambda c: DEEPSEEK_C * c ** DEEPSEEK_A, quantity="b_opt"),
)}

# Laws asked for but not shipped: their constants could not be read in the primary paper itself
# (only in secondary summaries), so no number of theirs is in this package.
NOT_SHIPPED = {
    "deepseek2024-lr": "DeepSeek-AI 2024 (arXiv:2401.02954), optimal learning rate against compute",
    "steplaw2025": "Li et al. 2025, Predictable Scale: Part I, Step Law (arXiv:2503.04715), optimal "
                   "learning rate against N and D and optimal batch size against D",
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        if name in NOT_SHIPPED:
            raise ScalingError(f"law {name} ({NOT_SHIPPED[name]}) is not shipped: its constants could not be "
                               f"checked against the paper itself; fit your own B_opt and lr_opt laws with "
                               f"`scaling optimum LOSSES.csv --against params,tokens -o FIT.json`") from None
        raise ScalingError(f"unknown law {name!r}; presets: {', '.join(PRESETS)}") from None
