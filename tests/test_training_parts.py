"""Parts of the training loop: the optimiser and the validation split."""

import numpy as np
import torch

from skavae._network import AffinityVAENetwork


def test_optimizer_is_adam():
    """make_optimizer's (fused) Adam takes torch's reference Adam's steps."""
    from skavae._training import make_optimizer

    torch.manual_seed(0)
    a = AffinityVAENetwork((16, 16), 2, 1, (4, 8))
    b = AffinityVAENetwork((16, 16), 2, 1, (4, 8))
    b.load_state_dict(a.state_dict())
    opt_a = make_optimizer(a.parameters(), 1e-2)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2, foreach=False)
    assert opt_a.defaults["fused"] is True
    x = torch.randn(6, 1, 16, 16)
    for _ in range(3):
        for net, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            net(x, sample=False)[0].square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_split_validation_holds_out_a_fraction_or_nothing():
    from skavae._training import split_validation

    train, val = split_validation(100, 0.1, torch.Generator().manual_seed(0))
    assert len(val) == 10 and len(train) == 90
    assert sorted(np.r_[train, val].tolist()) == list(range(100))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    again = split_validation(100, 0.1, torch.Generator().manual_seed(0))
    assert np.array_equal(again[1], val)
    # too few for a validation part of two (or a training part of two): none
    for n, fraction in ((10, 0.1), (3, 0.9)):
        train, val = split_validation(n, fraction, torch.Generator().manual_seed(0))
        assert len(val) == 0 and len(train) == n
    # the generator's stream moves on by one permutation whatever the fraction
    a, b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    split_validation(50, 0.0, a), split_validation(50, 0.2, b)
    assert torch.equal(torch.randperm(5, generator=a), torch.randperm(5, generator=b))
