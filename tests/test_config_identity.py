"""Run ids hash only non-default fields, so adding a field with a default keeps recorded ids."""

import dataclasses

from scaling.identity import run_id
from scaling.lm.config import TrainConfig
from scaling.config_io import identity_dict

SPEC = {"model": {"d_model": 32, "n_layers": 2, "n_heads": 2}, "batch_size": 8, "max_tokens": 4096}


def test_explicit_default_has_the_same_id():
    plain = TrainConfig.from_dict(SPEC)
    explicit = TrainConfig.from_dict({**SPEC, "seed": 0,
                                      "optim": {"beta1": plain.optim.beta1}})
    assert run_id("lm", plain) == run_id("lm", explicit)


def test_changed_value_changes_the_id():
    a = TrainConfig.from_dict(SPEC)
    b = TrainConfig.from_dict({**SPEC, "optim": {"lr": a.optim.lr * 2}})
    assert run_id("lm", a) != run_id("lm", b)
    assert identity_dict(b)["optim"] == {"lr": a.optim.lr * 2}


def test_new_field_with_default_keeps_identity():
    @dataclasses.dataclass(frozen=True)
    class Old:
        width: int
        lr: float = 0.01

    @dataclasses.dataclass(frozen=True)
    class New:
        width: int
        lr: float = 0.01
        attention: str = "xla"  # a field a later version adds

    assert identity_dict(Old(width=4, lr=0.1)) == identity_dict(New(width=4, lr=0.1)) == {"width": 4, "lr": 0.1}
    assert identity_dict(New(width=4, attention="cudnn")) == {"width": 4, "attention": "cudnn"}
