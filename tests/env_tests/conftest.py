"""Shared fixtures for the environment tests."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Train on one CPU thread (the test machine has two cores), restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
