"""Controller: shapes, scoring agrees with sampling, paper initialisation, save/load."""

import numpy as np
import pytest
import tensorflow as tf

from tuner.controller import WEIGHT_NAMES, Controller

SIZES = [2, 2, 13, 13, 2, 3, 3, 13, 13, 1]  # includes a one-option decision


@pytest.fixture(scope="module")
def controller():
    return Controller(SIZES, units=16, seed=0)


def test_sample_shapes_and_ranges(controller):
    decisions, log_probs = controller.sample(7)
    assert decisions.shape == (7, len(SIZES)) and decisions.dtype == np.int32
    assert log_probs.shape == (7,) and np.all(log_probs < 0)
    assert np.all(decisions >= 0) and np.all(decisions < np.array(SIZES))
    assert np.all(decisions[:, -1] == 0)


def test_log_prob_of_samples_equals_sampled_log_probs(controller):
    decisions, log_probs = controller.sample(20, rng=np.random.default_rng(3))
    np.testing.assert_allclose(controller.log_prob(decisions).numpy(), log_probs, atol=1e-4)
    np.testing.assert_allclose(controller.log_prob(decisions[0]).numpy(), log_probs[:1], atol=1e-4)


def test_sampling_is_reproducible_from_the_generator(controller):
    a = controller.sample(5, rng=np.random.default_rng([1, 2]))
    b = controller.sample(5, rng=np.random.default_rng([1, 2]))
    np.testing.assert_array_equal(a[0], b[0])


def test_samples_follow_the_policy():
    """Gumbel-max sampling: empirical frequencies match the softmax of the first head."""
    controller = Controller([3, 2], units=4, seed=1)
    decisions, _ = controller.sample(6000, rng=np.random.default_rng(0))
    probs = [controller.probabilities([[k, 0]])[0] + controller.probabilities([[k, 1]])[0] for k in range(3)]
    frequencies = np.bincount(decisions[:, 0], minlength=3) / len(decisions)
    np.testing.assert_allclose(frequencies, probs, atol=0.03)
    # All sequences' probabilities sum to one.
    everything = [[i, j] for i in range(3) for j in range(2)]
    assert controller.probabilities(everything).sum() == pytest.approx(1.0, abs=1e-5)


def test_weights_initialised_uniform_in_plus_minus_0_1():
    controller = Controller([13] * 50, seed=0)
    weights = dict(zip(WEIGHT_NAMES, controller.get_weights()))
    assert weights["lstm_recurrent_kernel"].shape == (100, 400)  # one layer, 100 units
    for name, w in weights.items():
        assert w.min() >= -0.1 and w.max() <= 0.1, name
    big = weights["lstm_input_kernel"]
    assert big.min() < -0.09 and big.max() > 0.09 and abs(big.mean()) < 0.01


def test_log_prob_is_differentiable_and_entropy_positive(controller):
    decisions, _ = controller.sample(4)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(controller.log_prob(decisions))
    grads = tape.gradient(total, controller.trainable_variables)
    assert all(g is not None for g in grads)
    assert all(np.all(np.isfinite(tf.convert_to_tensor(g).numpy())) for g in grads)
    entropy = controller.entropy(decisions).numpy()
    # Near-uniform at init: close to the sum of log(sizes).
    assert entropy.shape == (4,) and np.all(entropy > 0.9 * np.log(SIZES).sum())


def test_get_set_weights_and_save_load(tmp_path, controller):
    other = Controller(SIZES, units=16, seed=5)
    decisions, _ = controller.sample(3)
    assert not np.allclose(other.log_prob(decisions), controller.log_prob(decisions))
    path = str(tmp_path / "controller.npz")
    controller.save(path)
    other.load(path)
    np.testing.assert_allclose(other.log_prob(decisions), controller.log_prob(decisions), atol=1e-6)
    assert Controller.from_file(path).get_config() == controller.get_config()
    with pytest.raises(ValueError, match="config"):
        Controller(SIZES, units=8).load(path)
    with pytest.raises(ValueError, match="lstm_bias.*shape"):
        other.set_weights([w if i != 4 else w[:3] for i, w in enumerate(other.get_weights())])


@pytest.mark.parametrize(
    "sizes, message", [([], "non-empty"), ([2, 0], "Decision 1.*Received: options=0"), ("abc", "non-empty")]
)
def test_invalid_sizes_raise(sizes, message):
    with pytest.raises(ValueError, match=message):
        Controller(sizes)


def test_invalid_decisions_raise(controller):
    with pytest.raises(ValueError, match=r"shape \[n, 10\]"):
        controller.log_prob(np.zeros((2, 9), int))
    bad = np.zeros((1, 10), int)
    bad[0, 2] = 13
    with pytest.raises(ValueError, match=r"Decision 2 must be in 0..12. Received: 13"):
        controller.log_prob(bad)


def test_scoring_equals_the_step_by_step_lstm_with_its_gradients():
    """The fused LSTM kernel of `evaluate` is the sampling cell: same log-probabilities,
    entropies and gradients as `_lstm` applied step by step (a plain Python loop)."""
    controller = Controller([3, 5, 2, 4, 13, 1, 7], units=6, embedding_dim=5, seed=3)
    decisions, _ = controller.sample(9, rng=np.random.default_rng(0))
    graphs, weights = controller._graphs, tuple(controller.trainable_variables)

    def step_by_step(weights):
        start, embeddings, input_kernel, recurrent_kernel, bias, head_kernel, head_bias = weights
        kernels, biases = graphs._heads(head_kernel, head_bias)
        h = c = tf.zeros([len(decisions), controller.units])
        x = tf.tile(start, [len(decisions), 1])
        log_prob, entropy = 0.0, 0.0
        for d in range(controller.num_decisions):
            h, c = graphs._lstm(recurrent_kernel, tf.matmul(x, input_kernel) + bias, h, c)
            logits = tf.where(graphs.valid[d], tf.matmul(h, kernels[:, d]) + biases[d], -1e9)
            log_probs = tf.nn.log_softmax(logits)
            log_prob += tf.gather(log_probs, decisions[:, d], batch_dims=1)
            entropy -= tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=1)
            x = tf.gather(embeddings, decisions[:, d] + graphs.offsets[d])
        return log_prob, entropy

    results = []
    for score in (step_by_step, lambda w: graphs.evaluate_graph(w, decisions)):
        with tf.GradientTape() as tape:
            log_prob, entropy = score(weights)
            loss = tf.reduce_sum(log_prob * np.linspace(-1, 1, len(decisions))) + 0.3 * tf.reduce_sum(entropy)
        results.append((log_prob.numpy(), entropy.numpy(),
                        [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, weights)]))
    (lp_ref, ent_ref, grads_ref), (lp, ent, grads) = results
    np.testing.assert_allclose(lp, lp_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ent, ent_ref, rtol=1e-5, atol=1e-6)
    for name, g, g_ref in zip(WEIGHT_NAMES, grads, grads_ref):
        assert np.abs(g_ref).max() > 0, name
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-6, err_msg=name)
