"""PPO: updates raise the probability of rewarded decisions; baseline, buffer and state."""

import json

import numpy as np
import pytest

from tuner.controller import Controller
from tuner.ppo import PPO

SIZES = [3, 4, 5, 2, 6]


def test_update_increases_probability_of_high_reward_decisions():
    controller = Controller(SIZES, units=8, seed=0)
    ppo = PPO(controller, learning_rate=0.01, batch_size=20)
    good = np.array([2, 3, 4, 1, 5])
    p_before = controller.probabilities(good[None])[0]
    rng = np.random.default_rng(0)
    updates = 0
    for _ in range(6):
        decisions, log_probs = controller.sample(20, rng=rng)
        for d, lp in zip(decisions, log_probs):
            updates += ppo.observe(d, lp, float(np.mean(d == good)))
    assert updates == 6 and ppo.num_updates == 6 and ppo.num_rewards == 120
    assert controller.probabilities(good[None])[0] > 3 * p_before
    stats = ppo.last_stats
    assert np.isfinite(stats["loss"]) and stats["entropy"] < stats["entropy_before"] + 1e-3


def test_one_update_moves_toward_positive_advantages_only():
    """A single batch where only one architecture beats the baseline."""
    controller = Controller(SIZES, units=8, seed=1)
    ppo = PPO(controller, learning_rate=0.003, batch_size=4, epochs=3)
    decisions, log_probs = controller.sample(4, rng=np.random.default_rng(1))
    before = controller.log_prob(decisions).numpy()
    for i, (d, lp) in enumerate(zip(decisions, log_probs)):
        ppo.observe(d, lp, 1.0 if i == 3 else 0.0)  # advantages 0, 0, 0, +1 (baseline 0)
    after = controller.log_prob(decisions).numpy()
    assert after[3] > before[3]


def test_baseline_is_an_ema_of_previous_rewards():
    ppo = PPO(Controller([2], units=4, seed=0), baseline_decay=0.95, batch_size=100)
    ppo.observe([0], -0.7, 0.5)
    ppo.observe([1], -0.7, 1.0)
    entries = ppo.buffer
    assert entries[0]["advantage"] == 0.0  # baseline starts at the first reward
    assert entries[1]["advantage"] == pytest.approx(0.5)  # against the baseline before this reward
    assert ppo.baseline == pytest.approx(0.95 * 0.5 + 0.05 * 1.0)


def test_state_is_json_and_resumes_the_buffer():
    controller = Controller(SIZES, units=8, seed=0)
    ppo = PPO(controller, batch_size=5)
    decisions, log_probs = controller.sample(7, rng=np.random.default_rng(0))
    for d, lp in zip(decisions, log_probs):
        ppo.observe(d, lp, 0.3)
    state = json.loads(json.dumps(ppo.get_state()))
    assert state["num_updates"] == 1 and len(state["buffer"]) == 2
    other = PPO(Controller(SIZES, units=8, seed=0), batch_size=5)
    other.set_state(state)
    assert other.get_state() == ppo.get_state()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"learning_rate": 0}, "learning_rate=0"),
        ({"clip": -0.1}, "clip=-0.1"),
        ({"epochs": 2.5}, "epochs=2.5"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"baseline_decay": 1.0}, r"baseline_decay=1.0"),
    ],
)
def test_invalid_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PPO(Controller([2], units=4), **kwargs)


def test_invalid_observations_raise():
    ppo = PPO(Controller([2, 3], units=4))
    with pytest.raises(ValueError, match="reward=nan"):
        ppo.observe([0, 1], -1.0, float("nan"))
    with pytest.raises(ValueError, match=r"option counts \[2, 3\]. Received: \[0, 3\]"):
        ppo.observe([0, 3], -1.0, 0.5)
    assert ppo.num_rewards == 0 and ppo.baseline is None
