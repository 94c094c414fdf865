import matplotlib
import pytest
import torch

matplotlib.use("Agg")


@pytest.fixture(autouse=True, scope="session")
def _limit_threads():
    # The test machine has 2 cores; tiny models run fastest on one thread and
    # results are reproducible independently of the machine's core count.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
